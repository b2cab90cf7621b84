package runs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/billing"
	"github.com/nofxhq/nofx/internal/db"
)

// Claim is a step taken by a worker for one attempt. Only the holder of
// its lease can record the attempt's result.
type Claim struct {
	Run    Run
	Step   Step
	Lease  string
	Prompt string // the prompt rendered from inputs and earlier outputs
}

// ErrTeamBusy is returned by ClaimWithin when the run's team already has as
// many steps running as it may: the step stays queued.
var ErrTeamBusy = errors.New("runs: the team has as many steps running as it may")

// Claim takes step stepID of run runID for one attempt, on behalf of job
// jobID, and holds it for lease. A step that is
// finished, cancelled, waiting or held by a live worker is ErrNotClaimable.
func (s *Service) Claim(ctx context.Context, runID, stepID, jobID int64, lease time.Duration) (Claim, error) {
	return s.ClaimWithin(ctx, runID, stepID, jobID, lease, 0)
}

// teamRunningSteps counts a team's steps that a live worker holds, in every
// process (a step whose lease expired belongs to a lost worker).
//
// It starts from the team's running runs (runs_team_status_idx; a step
// runs only in a running run, see settle) and looks up each one's
// steps: the work grows with the team's runs in flight, not with every
// team's running steps (counting from those, every claim read all of them:
// with 16 teams busy it was most of PostgreSQL's time), nor with all of
// the team's runs. CROSS JOIN keeps SQLite to that order.
const teamRunningSteps = `SELECT COUNT(*) FROM runs r CROSS JOIN steps s
	WHERE s.run_id = r.id AND r.status = 'running' AND s.status = 'running' AND s.lease_expires_at >= ? AND r.team_id = `

// TeamAtLimit reports whether run runID's team already runs as many steps
// as it may (see TeamLimit), which team that is, and its limit (0: none);
// it reads without locking, so a claim checks again (ClaimWithin).
func (s *Service) TeamAtLimit(ctx context.Context, runID int64, instanceLimit int) (teamID int64, limit int, busy bool, err error) {
	var row struct {
		TeamID    int64 `db:"team_id"`
		PlanLimit int   `db:"plan_limit"`
		Running   int   `db:"running"`
	}
	running := `(` + teamRunningSteps + `t.team_id)`
	if instanceLimit <= 0 {
		// Only the plan may limit: a team whose plan does not is not
		// counted (CASE leaves the count unread on both databases).
		running = `CASE WHEN COALESCE(p.concurrency, -1) > 0 THEN ` + running + ` ELSE 0 END`
	}
	err = db.Get(ctx, s.DB.Reader(), &row, `SELECT t.team_id, COALESCE(p.concurrency, -1) AS plan_limit, `+running+` AS running
		FROM runs t JOIN teams tm ON tm.id = t.team_id LEFT JOIN plans p ON p.id = tm.plan WHERE t.id = ?`, db.Now(), runID)
	if errors.Is(err, db.ErrNotFound) {
		return 0, 0, false, nil // deleted with its team: the claim says so
	}
	if err != nil {
		return 0, 0, false, fmt.Errorf("runs: count running steps of the team of run %d: %w", runID, err)
	}
	limit = billing.Concurrency(row.PlanLimit, instanceLimit)
	return row.TeamID, limit, limit > 0 && row.Running >= limit, nil
}

// TeamLimit returns how many steps the actor's team may run at once: its
// plan's concurrency, and at most instanceLimit (NOFX_TEAM_CONCURRENCY)
// when that is set; 0 is no limit.
func (s *Service) TeamLimit(ctx context.Context, actor access.Actor, instanceLimit int) (int, error) {
	p, err := billing.TeamPlan(ctx, s.DB.Reader(), actor.TeamID)
	if errors.Is(err, db.ErrNotFound) {
		return instanceLimit, nil
	}
	if err != nil {
		return 0, err
	}
	return billing.Concurrency(p.Concurrency, instanceLimit), nil
}

// TeamRunning returns how many steps the actor's team is running now, for
// pages that say why a queued step waits for a slot.
func (s *Service) TeamRunning(ctx context.Context, actor access.Actor) (int, error) {
	var n int
	if err := db.Get(ctx, s.DB.Reader(), &n, teamRunningSteps+`?`, db.Now(), actor.TeamID); err != nil {
		return 0, fmt.Errorf("runs: count running steps of team %d: %w", actor.TeamID, err)
	}
	return n, nil
}

// teamHasRoom reports, inside t, whether teamID may start one more step
// under teamLimit. On PostgreSQL it first takes the team's claim lock, so
// that claims of one team in any process count one after another (SQLite
// writes one transaction at a time anyway).
func (s *Service) teamHasRoom(ctx context.Context, t *txn, teamID int64, teamLimit int) (bool, error) {
	if s.DB.Dialect == db.Postgres {
		if _, err := db.Exec(ctx, t.tx, `SELECT pg_advisory_xact_lock(hashtext('nofx.team_steps'), mod(?::bigint, 2147483647)::int)`, teamID); err != nil {
			return false, fmt.Errorf("runs: lock the step claims of team %d: %w", teamID, err)
		}
	}
	var n int
	if err := db.Get(ctx, t.tx, &n, teamRunningSteps+`?`, t.now, teamID); err != nil {
		return false, fmt.Errorf("runs: count running steps of team %d: %w", teamID, err)
	}
	return n < teamLimit, nil
}

// ClaimWithin is Claim for a team that may run at most teamLimit steps at
// once (zero: no limit), counted in the database across processes; a team at
// its limit gets ErrTeamBusy and the step stays as it was.
func (s *Service) ClaimWithin(ctx context.Context, runID, stepID, jobID int64, lease time.Duration, teamLimit int) (Claim, error) {
	var c Claim
	var renderErr error
	err := s.transact(ctx, func(t *txn) error {
		st, err := loadState(ctx, s.DB, t.tx, runID, t.now, true)
		if errors.Is(err, db.ErrNotFound) {
			return ErrNotClaimable // the run was deleted with its team
		}
		if err != nil {
			return err
		}
		step := st.stepByID(stepID)
		if step == nil || (step.JobID.Valid && step.JobID.Int64 != jobID) {
			return ErrNotClaimable // a job the step no longer waits for
		}
		expired := step.Status == StepRunning && step.LeaseExpiresAt != nil && step.LeaseExpiresAt.Before(t.now)
		if st.run.Status == RunCancelled || step.Kind == KindApproval || !(step.Status == StepQueued || expired) {
			return ErrNotClaimable
		}
		if teamLimit > 0 {
			room, err := s.teamHasRoom(ctx, t, st.run.TeamID, teamLimit)
			if err != nil {
				return err
			}
			if !room {
				return ErrTeamBusy
			}
		}
		t.runID, t.state = runID, st

		inputs, err := st.run.Inputs()
		if err != nil {
			return fmt.Errorf("runs: inputs of run %d: %w", runID, err)
		}
		prompt, err := st.prompt(step, inputs)
		if err != nil {
			// Validation makes this rare (an input removed by hand, say);
			// retrying cannot help.
			renderErr = err
			if err := st.setStep(ctx, t.tx, step, stepUpdate{status: StepFailed, error: err.Error(), finish: true, clearLease: true}); err != nil {
				return err
			}
			st.event(step.Name, "step.failed", "Cannot render the prompt: "+err.Error(), nil)
			return nil
		}
		note := ""
		if expired {
			note = " (the previous worker stopped responding)"
		}
		c, err = st.start(step, prompt, lease, note)
		return err
	})
	if err != nil {
		return Claim{}, err
	}
	if renderErr != nil {
		return Claim{}, ErrNotClaimable
	}
	return c, nil
}

// prompt is the prompt step runs with: rendered from the run's inputs and
// earlier outputs, or as written in a replay (rendered for its original).
func (st *state) prompt(step *Step, inputs map[string]any) (string, error) {
	if st.run.Replay {
		return step.Prompt, nil
	}
	return Render(step.Prompt, inputs, st.outputs())
}

// start gives step, about to run with prompt, to a new holder of a lease,
// with the run's other writes; note ends the timeline's entry.
func (st *state) start(step *Step, prompt string, lease time.Duration, note string) (Claim, error) {
	token, _, err := auth.NewToken()
	if err != nil {
		return Claim{}, err
	}
	expires := st.now.Add(lease)
	st.later(`UPDATE steps SET status = ?, enqueued = ?, attempt = attempt + 1, lease_token = ?, lease_expires_at = ?,
		rendered_prompt = ?, started_at = COALESCE(started_at, ?), updated_at = ? WHERE id = ?`,
		StepRunning, true, token, expires, prompt, st.now, st.now, step.ID)
	step.Status, step.Enqueued, step.Attempt, step.LeaseToken, step.LeaseExpiresAt, step.RenderedPrompt = StepRunning, true, step.Attempt+1, token, &expires, prompt
	if step.StartedAt == nil {
		step.StartedAt = &st.now
	}
	st.event(step.Name, "step.started", fmt.Sprintf("Attempt %d of %d started", step.Attempt, step.MaxAttempts)+note, nil)
	return Claim{Run: st.run, Step: *step, Lease: token, Prompt: prompt}, nil
}

// Heartbeat extends a claim's lease. It returns ErrLeaseLost when the step
// was cancelled or taken over: the worker must stop.
func (s *Service) Heartbeat(ctx context.Context, c Claim, lease time.Duration) error {
	now := db.Now()
	err := db.ExecOne(ctx, s.DB, `UPDATE steps SET lease_expires_at = ? WHERE id = ? AND lease_token = ? AND status = ?`,
		now.Add(lease), c.Step.ID, c.Lease, StepRunning)
	if errors.Is(err, db.ErrNotFound) {
		return ErrLeaseLost
	}
	return err
}

// holdsLease reports whether c still holds its step's lease inside t.
func (s *Service) lockClaim(ctx context.Context, t *txn, c Claim) (*state, *Step, error) {
	st, err := loadState(ctx, s.DB, t.tx, c.Run.ID, t.now, true)
	if err != nil {
		return nil, nil, err
	}
	step := st.byName[c.Step.Name]
	if step == nil || step.Status != StepRunning || step.LeaseToken != c.Lease {
		return nil, nil, ErrLeaseLost
	}
	t.runID, t.state = c.Run.ID, st
	return st, step, nil
}

// Usage is what a step's successful attempt consumed, and who served it.
type Usage struct {
	InputTokens  int64
	OutputTokens int64
	CostMicros   int64
	ServedBy     string // "provider/model" when a fallback answered
	// OwnKey says the call was made with the team's own key, whose spend no
	// plan limit counts.
	OwnKey bool
}

// Complete records a claim's successful attempt and readies the steps that
// were waiting for it. A claim that lost its lease is ErrLeaseLost and
// records nothing: a step never succeeds twice.
func (s *Service) Complete(ctx context.Context, c Claim, output string, u Usage) error {
	_, _, err := s.complete(ctx, c, output, u, 0)
	return err
}

// CompleteAndTake is Complete for a worker that goes on at once: when the
// success readies steps of the same run, it takes the first of them in the
// same transaction, under a new lease, instead of giving it a job, and
// returns its claim (ok true). The step starts without waiting for a
// worker to fetch it; a worker that dies meanwhile loses it to the rescue
// of expired leases, as any claim. The team's running steps do not grow:
// the finished step leaves as the taken one starts.
func (s *Service) CompleteAndTake(ctx context.Context, c Claim, output string, u Usage, lease time.Duration) (next Claim, ok bool, err error) {
	return s.complete(ctx, c, output, u, lease)
}

// complete records a success; with a lease, it takes a readied step (see
// CompleteAndTake).
func (s *Service) complete(ctx context.Context, c Claim, output string, u Usage, lease time.Duration) (next Claim, took bool, err error) {
	err = s.transact(ctx, func(t *txn) error {
		st, step, err := s.lockClaim(ctx, t, c)
		if err != nil {
			return err
		}
		if lease > 0 {
			t.take = func(jobs []StepJob) ([]StepJob, error) {
				if len(jobs) == 0 {
					return jobs, nil
				}
				taken := st.stepByID(jobs[0].StepID)
				inputs, err := st.run.Inputs()
				if taken == nil || err != nil {
					return jobs, nil // the job's worker will say why
				}
				prompt, err := st.prompt(taken, inputs)
				if err != nil {
					return jobs, nil // the job's claim fails the step with the reason
				}
				if next, err = st.start(taken, prompt, lease, ""); err != nil {
					return nil, err
				}
				took = true
				return jobs[1:], nil
			}
		}
		w := st.stepWrite(step, stepUpdate{status: StepSucceeded, output: output, finish: true, clearLease: true, usage: &u})
		st.later(w.query, w.args...)
		// The step's cost counts toward the team's plan exactly once: here.
		if err := billing.AddSpend(ctx, t.tx, st.run.TeamID, t.now, u.CostMicros, u.OwnKey); err != nil {
			return err
		}
		msg := fmt.Sprintf("Succeeded on attempt %d", step.Attempt)
		if u.ServedBy != "" {
			msg += " with fallback " + u.ServedBy
		}
		if u.InputTokens+u.OutputTokens > 0 {
			msg += fmt.Sprintf(" (%d tokens in, %d out)", u.InputTokens, u.OutputTokens)
		}
		st.event(step.Name, "step.succeeded", msg, nil)
		return nil
	})
	if err != nil {
		return Claim{}, false, err
	}
	return next, took, nil
}

// Failure describes a failed attempt.
type Failure struct {
	Err        error
	Retryable  bool          // another attempt may succeed
	TimedOut   bool          // the attempt ran out of time
	RetryAfter time.Duration // the provider asked to wait this long
	Immediate  bool          // retry without backoff (the worker was lost, not the provider)
}

// maxRetryAfter caps how long a provider may ask a step to wait.
const maxRetryAfter = 5 * time.Minute

// Fail records a claim's failed attempt. While attempts remain and the
// failure is retryable the step is tried again after a backoff: when that
// backoff is at most hold, the worker keeps the step (and its lease) and
// waits, and Fail returns the delay with kept true; otherwise the step is
// queued with a job for later. Else the step fails for good, which skips its
// dependents and may fail the run.
func (s *Service) Fail(ctx context.Context, c Claim, f Failure, hold time.Duration) (delay time.Duration, kept bool, err error) {
	err = s.transact(ctx, func(t *txn) error {
		st, step, err := s.lockClaim(ctx, t, c)
		if err != nil {
			return err
		}
		delay, kept, err = s.failAttempt(ctx, t, st, step, f, hold)
		return err
	})
	return delay, kept, err
}

func (s *Service) failAttempt(ctx context.Context, t *txn, st *state, step *Step, f Failure, hold time.Duration) (time.Duration, bool, error) {
	msg := f.Err.Error()
	if f.TimedOut {
		msg = fmt.Sprintf("timed out after %s", step.Timeout())
	}
	if f.Retryable && step.Attempt < step.MaxAttempts {
		delay := max(s.backoff(step.Attempt), min(f.RetryAfter, maxRetryAfter))
		if f.Immediate {
			delay = 0
		}
		kept := hold > 0 && delay <= hold
		event := fmt.Sprintf("Attempt %d of %d failed: %s. Retrying in %s.", step.Attempt, step.MaxAttempts, msg, delay.Round(time.Millisecond))
		if kept {
			if _, err := db.Exec(ctx, t.tx, `UPDATE steps SET error = ?, updated_at = ? WHERE id = ?`, msg, t.now, step.ID); err != nil {
				return 0, false, fmt.Errorf("runs: record failed attempt of %s: %w", step.Name, err)
			}
		} else {
			_, err := db.Exec(ctx, t.tx, `UPDATE steps SET status = ?, error = ?, lease_token = '', lease_expires_at = NULL,
				updated_at = ? WHERE id = ?`, StepQueued, msg, t.now, step.ID)
			if err != nil {
				return 0, false, fmt.Errorf("runs: requeue step %s: %w", step.Name, err)
			}
			step.Status, step.Enqueued, step.LeaseToken, step.LeaseExpiresAt = StepQueued, true, "", nil
			t.jobs = append(t.jobs, StepJob{RunID: st.run.ID, StepID: step.ID, At: t.now.Add(delay)})
		}
		st.event(step.Name, "step.retrying", event, nil)
		return delay, kept, nil
	}
	status, kind := StepFailed, "step.failed"
	if f.TimedOut {
		status, kind = StepTimedOut, "step.timed_out"
	}
	if err := st.setStep(ctx, t.tx, step, stepUpdate{status: status, error: msg, finish: true, clearLease: true}); err != nil {
		return 0, false, err
	}
	event := fmt.Sprintf("Attempt %d of %d failed: %s", step.Attempt, step.MaxAttempts, msg)
	if !f.Retryable {
		event += " (not retryable)"
	}
	st.event(step.Name, kind, event, nil)
	return 0, false, nil
}

// Restart begins the next attempt of a step its worker kept through a
// short backoff (see Fail).
func (s *Service) Restart(ctx context.Context, c Claim, lease time.Duration) (Claim, error) {
	err := s.transact(ctx, func(t *txn) error {
		st, step, err := s.lockClaim(ctx, t, c)
		if err != nil {
			return err
		}
		expires := t.now.Add(lease)
		_, err = db.Exec(ctx, t.tx, `UPDATE steps SET attempt = attempt + 1, lease_expires_at = ?, updated_at = ? WHERE id = ?`,
			expires, t.now, step.ID)
		if err != nil {
			return fmt.Errorf("runs: restart step %s: %w", step.Name, err)
		}
		step.Attempt++
		step.LeaseExpiresAt = &expires
		c.Step = *step
		st.event(step.Name, "step.started", fmt.Sprintf("Attempt %d of %d started", step.Attempt, step.MaxAttempts), nil)
		return nil
	})
	return c, err
}

// Release gives a claim back when the worker is stopping: the step runs
// again at once, here or in another process. An attempt that was under way
// (midAttempt) does not count.
func (s *Service) Release(ctx context.Context, c Claim, midAttempt bool) error {
	return s.transact(ctx, func(t *txn) error {
		st, step, err := s.lockClaim(ctx, t, c)
		if err != nil {
			return err
		}
		uncount := 0
		if midAttempt {
			uncount = 1
		}
		_, err = db.Exec(ctx, t.tx, `UPDATE steps SET status = ?, attempt = attempt - ?, lease_token = '',
			lease_expires_at = NULL, updated_at = ? WHERE id = ?`, StepQueued, uncount, t.now, step.ID)
		if err != nil {
			return fmt.Errorf("runs: release step %s: %w", step.Name, err)
		}
		step.Status, step.Enqueued, step.Attempt, step.LeaseToken, step.LeaseExpiresAt = StepQueued, true, step.Attempt-uncount, "", nil
		t.jobs = append(t.jobs, StepJob{RunID: c.Run.ID, StepID: step.ID})
		st.event(step.Name, "step.interrupted", "The worker stopped; the step will start again", nil)
		return nil
	})
}

// RescueExpired finds steps whose worker stopped renewing its lease (a
// crashed or killed process) and counts that as a failed, retryable
// attempt. It returns how many steps it rescued.
func (s *Service) RescueExpired(ctx context.Context) (int, error) {
	type expired struct {
		ID    int64 `db:"id"`
		RunID int64 `db:"run_id"`
	}
	var found []expired
	err := db.Select(ctx, s.DB, &found, `SELECT id, run_id FROM steps WHERE status = ? AND lease_expires_at < ? ORDER BY id LIMIT 500`,
		StepRunning, db.Now())
	if err != nil {
		return 0, fmt.Errorf("runs: find expired leases: %w", err)
	}
	rescued := 0
	for _, e := range found {
		err := s.transact(ctx, func(t *txn) error {
			st, err := loadState(ctx, s.DB, t.tx, e.RunID, t.now, true)
			if err != nil {
				return err
			}
			for _, step := range st.steps {
				if step.ID != e.ID || step.Status != StepRunning || step.LeaseExpiresAt == nil || !step.LeaseExpiresAt.Before(t.now) {
					continue
				}
				t.runID, t.state = e.RunID, st
				rescued++
				_, _, err := s.failAttempt(ctx, t, st, step, Failure{Err: errors.New("the worker stopped responding"), Retryable: true, Immediate: true}, 0)
				return err
			}
			return nil
		})
		if err != nil {
			return rescued, err
		}
	}
	return rescued, nil
}

// Requeue gives a queued step a new job when its current one, jobID, was
// taken by a worker that stopped before claiming the step (a process killed
// at that moment). It does nothing when the step has moved on.
func (s *Service) Requeue(ctx context.Context, runID, stepID, jobID int64) error {
	return s.transact(ctx, func(t *txn) error {
		st, err := loadState(ctx, s.DB, t.tx, runID, t.now, true)
		if err != nil {
			return err
		}
		for _, step := range st.steps {
			if step.ID != stepID || step.Status != StepQueued || !step.JobID.Valid || step.JobID.Int64 != jobID {
				continue
			}
			t.runID, t.state = runID, st
			t.jobs = append(t.jobs, StepJob{RunID: runID, StepID: stepID})
			st.event(step.Name, "step.requeued", "The worker stopped before starting this step; it was queued again", nil)
		}
		return nil
	})
}

// Wait is why a claimed step cannot run now: the open circuit it waits on.
type Wait struct {
	Circuit   string    // the circuit's key; waiting on another circuit starts the patience afresh
	Provider  string    // the provider, for the reason a step gives up
	Until     time.Time // when the circuit is worth trying again
	Reason    string    // for the timeline and the run page
	LastError string    // the provider's last error, for the reason a step gives up
}

// Snooze gives a claim back without using up its attempt because its
// provider is unavailable (its circuit is open): the step waits until then,
// or until its patience runs out, and the timeline says why. A step that has
// waited on the same circuit for its patience (counted from its first wait,
// across restarts) fails instead, with the provider's last error.
func (s *Service) Snooze(ctx context.Context, c Claim, w Wait) error {
	return s.transact(ctx, func(t *txn) error {
		st, step, err := s.lockClaim(ctx, t, c)
		if err != nil {
			return err
		}
		since := t.now
		if step.WaitingCircuit == w.Circuit && step.currentWait() {
			since = *step.WaitingSince
		}
		patience := step.Patience()
		giveUp := since.Add(patience)
		if !t.now.Before(giveUp) {
			return s.giveUp(ctx, t, st, step, w, patience)
		}
		retryAt := w.Until
		if retryAt.IsZero() || retryAt.After(giveUp) {
			retryAt = giveUp
		}
		_, err = db.Exec(ctx, t.tx, `UPDATE steps SET status = ?, attempt = attempt - 1, error = ?, lease_token = '',
			lease_expires_at = NULL, waiting_circuit = ?, waiting_since = ?, waiting_until = ?, updated_at = ? WHERE id = ?`,
			StepQueued, w.Reason, w.Circuit, since, retryAt, t.now, step.ID)
		if err != nil {
			return fmt.Errorf("runs: snooze step %s: %w", step.Name, err)
		}
		step.Status, step.Enqueued, step.Attempt, step.Error, step.LeaseToken, step.LeaseExpiresAt = StepQueued, true, step.Attempt-1, w.Reason, "", nil
		step.WaitingCircuit, step.WaitingSince, step.WaitingUntil = w.Circuit, &since, &retryAt
		t.jobs = append(t.jobs, StepJob{RunID: c.Run.ID, StepID: step.ID, At: retryAt})
		st.event(step.Name, "step.snoozed", fmt.Sprintf("%s; trying again at %s, giving up at %s", w.Reason,
			retryAt.UTC().Format("15:04:05 UTC"), giveUp.UTC().Format("15:04:05 UTC")), nil)
		return nil
	})
}

// giveUp fails a step that waited on an open circuit for its patience.
func (s *Service) giveUp(ctx context.Context, t *txn, st *state, step *Step, w Wait, patience time.Duration) error {
	last := w.LastError
	if last == "" {
		last = w.Reason
	}
	reason := fmt.Sprintf("%s unavailable for %s: %s", w.Provider, patience, last)
	if _, err := db.Exec(ctx, t.tx, `UPDATE steps SET attempt = attempt - 1, waiting_until = NULL WHERE id = ?`, step.ID); err != nil {
		return fmt.Errorf("runs: give up on step %s: %w", step.Name, err)
	}
	step.Attempt--
	step.WaitingUntil = nil
	if err := st.setStep(ctx, t.tx, step, stepUpdate{status: StepFailed, error: reason, finish: true, clearLease: true}); err != nil {
		return err
	}
	st.event(step.Name, "step.failed", "Gave up waiting: "+reason, nil)
	return nil
}
