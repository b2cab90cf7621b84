package runs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/billing"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/live"
	"github.com/nofxhq/nofx/internal/plan"
)

// Claim is a step taken by a worker for one attempt. Only the holder of
// its lease can record the attempt's result.
type Claim struct {
	Run    Run
	Step   Step
	Lease  string
	Prompt string // the prompt rendered from inputs and earlier outputs
}

// ErrTeamBusy is returned by ClaimAll when the run's team already has as
// many steps running as it may: the step stays queued.
var ErrTeamBusy = errors.New("runs: the team has as many steps running as it may")

// Claim takes step stepID of run runID for one attempt, on behalf of job
// jobID, and holds it for lease, as ClaimAll does under no instance limit.
func (s *Service) Claim(ctx context.Context, runID, stepID, jobID int64, lease time.Duration) (Claim, error) {
	r := s.ClaimAll(ctx, []Take{{RunID: runID, StepID: stepID, JobID: jobID}}, lease, 0)[0]
	return r.Claim, r.Err
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

// Take asks to claim step StepID of run RunID on behalf of job JobID (see
// ClaimAll).
type Take struct {
	RunID, StepID, JobID int64
}

// Taken is what claiming a Take did: the claim, or why there is none.
type Taken struct {
	Claim Claim
	Err   error
}

// ClaimAll claims steps, of one run or many, each for one attempt held
// for lease, in one transaction: their runs are locked and read in two
// statements, each team's running steps are counted once, each run is
// settled once, and there is one commit (see CompleteAll, and the engine's
// batcher). A step that is finished, cancelled, waiting, held by a live
// worker, or whose job it no longer waits for is ErrNotClaimable. A team
// may run at most as many steps at once as its plan allows, and at most
// instanceLimit (NOFX_TEAM_CONCURRENCY) when that is set, counted in the
// database across processes: a step of a team at its limit is
// ErrTeamBusy and stays as it was. When the transaction fails for anything
// but the database being unavailable, each take is tried again alone.
func (s *Service) ClaimAll(ctx context.Context, takes []Take, lease time.Duration, instanceLimit int) []Taken {
	out, err := s.claimAll(ctx, takes, lease, instanceLimit, len(takes) > 1)
	if err == nil {
		return out
	}
	return eachAlone(ctx, len(takes), err, func(i int, bounded bool) (Taken, error) {
		one, err := s.claimAll(ctx, takes[i:i+1], lease, instanceLimit, bounded)
		return one[0], err
	}, func(err error) Taken { return Taken{Err: err} })
}

// eachAlone answers the n requests of a batch whose transaction failed with
// err. When the database is away, or the time is up, each gets err; else
// each is tried alone (try), so that one that cannot be served holds back
// no other: first with the batch's bound on lock waits, so that those
// whose runs are free are served at once, then, without it, those whose
// runs were still held.
func eachAlone[T any](ctx context.Context, n int, err error, try func(i int, bounded bool) (T, error), failed func(error) T) []T {
	out := make([]T, n)
	if n == 1 || db.Unavailable(err) || ctx.Err() != nil {
		for i := range out {
			out[i] = failed(err)
		}
		return out
	}
	var held []int
	for i := range n {
		answer, err := try(i, true)
		switch {
		case db.IsLockTimeout(err):
			held = append(held, i)
		case err != nil:
			answer = failed(err)
		}
		out[i] = answer
	}
	for _, i := range held {
		answer, err := try(i, false)
		if err != nil {
			answer = failed(err)
		}
		out[i] = answer
	}
	return out
}

// claimAll is ClaimAll's one transaction.
func (s *Service) claimAll(ctx context.Context, takes []Take, lease time.Duration, instanceLimit int, bounded bool) ([]Taken, error) {
	out := make([]Taken, len(takes))
	var touched []*state // in the order of their run ids
	err := db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		now := db.Now()
		ids := make([]int64, 0, len(takes))
		for _, tk := range takes {
			ids = append(ids, tk.RunID)
		}
		ids, states, err := s.lockBatch(ctx, tx, bounded, ids, now)
		if err != nil {
			return err
		}
		// Which takes may start, before the teams' room is counted.
		steps := make([]*Step, len(takes))
		var teams []int64
		for i, tk := range takes {
			st := states[tk.RunID]
			var step *Step
			if st != nil {
				step = st.stepByID(tk.StepID)
			}
			if step == nil || !claimable(st, step, tk.JobID, now) {
				out[i].Err = ErrNotClaimable // deleted with its team, or a job the step no longer waits for
				continue
			}
			steps[i] = step
			teams = append(teams, st.run.TeamID)
		}
		slices.Sort(teams)
		room, err := s.teamsRoom(ctx, tx, slices.Compact(teams), instanceLimit, now)
		if err != nil {
			return err
		}
		changed := map[int64]bool{}
		for i, tk := range takes {
			step := steps[i]
			if step == nil {
				continue
			}
			st := states[tk.RunID]
			if !claimable(st, step, tk.JobID, now) {
				out[i].Err = ErrNotClaimable // taken by an earlier take of this batch
				continue
			}
			if left, limited := room[st.run.TeamID]; limited {
				if left <= 0 {
					out[i].Err = ErrTeamBusy
					continue
				}
				room[st.run.TeamID] = left - 1
			}
			changed[st.run.ID] = true
			if out[i].Claim, out[i].Err, err = st.claim(ctx, tx, step, lease); err != nil {
				return err
			}
		}
		var jobs []StepJob
		for _, id := range ids {
			if !changed[id] {
				continue
			}
			st := states[id]
			touched = append(touched, st)
			readied, err := s.settle(ctx, tx, st)
			if err != nil {
				return err
			}
			jobs = append(jobs, readied...)
		}
		if err := s.schedule(ctx, tx, jobs, func(runID int64) *state { return states[runID] }); err != nil {
			return err
		}
		return flushAll(ctx, tx, s.DB.Dialect == db.Postgres, touched)
	})
	if err != nil {
		return out, err
	}
	s.published(ctx, touched)
	return out, nil
}

// batchLockWait is the longest a batch of many requests waits for a lock
// on PostgreSQL (a run another transaction holds, a team's claim lock):
// past it the batch fails and each request is tried alone (see eachAlone),
// so that one run held up does not hold up the others, nor spend the
// batch's time on them all.
const batchLockWait = "5s"

// lockBatch starts a batch's transaction tx: it bounds its lock waits when
// bounded (PostgreSQL), then locks and reads the runs runIDs names, in any
// order and with repeats. It returns their ids in order without repeats,
// and their states (see loadStates).
func (s *Service) lockBatch(ctx context.Context, tx *sqlx.Tx, bounded bool, runIDs []int64, now time.Time) ([]int64, map[int64]*state, error) {
	if bounded && s.DB.Dialect == db.Postgres {
		if _, err := tx.ExecContext(ctx, `SET LOCAL lock_timeout = '`+batchLockWait+`'`); err != nil {
			return nil, nil, fmt.Errorf("runs: bound the batch's lock waits: %w", err)
		}
	}
	slices.Sort(runIDs)
	runIDs = slices.Compact(runIDs)
	states, err := loadStates(ctx, s.DB, tx, runIDs, now)
	return runIDs, states, err
}

// claimable reports whether step of st may start now for job jobID: it is
// queued for that job, or its last worker's lease ran out.
func claimable(st *state, step *Step, jobID int64, now time.Time) bool {
	if step.JobID.Valid && step.JobID.Int64 != jobID {
		return false
	}
	expired := step.Status == StepRunning && step.LeaseExpiresAt != nil && step.LeaseExpiresAt.Before(now)
	return st.run.Status != RunCancelled && step.Kind != plan.KindApproval && (step.Status == StepQueued || expired)
}

// claim starts step for one attempt under a new lease. A step whose prompt
// cannot be rendered fails instead, with the reason (ErrNotClaimable).
func (st *state) claim(ctx context.Context, q db.Queryer, step *Step, lease time.Duration) (Claim, error, error) {
	note := ""
	if step.Status == StepRunning {
		note = " (the previous worker stopped responding)"
	}
	inputs, err := st.run.Inputs()
	if err != nil {
		return Claim{}, nil, fmt.Errorf("runs: inputs of run %d: %w", st.run.ID, err)
	}
	prompt, err := st.prompt(step, inputs)
	if err != nil {
		// Validation makes this rare (an input removed by hand, say);
		// retrying cannot help.
		if err := st.setStep(ctx, q, step, stepUpdate{status: StepFailed, error: err.Error(), finish: true, clearLease: true}); err != nil {
			return Claim{}, nil, err
		}
		st.event(step.Name, "step.failed", "Cannot render the prompt: "+err.Error(), nil)
		return Claim{}, ErrNotClaimable, nil
	}
	c, err := st.start(step, prompt, lease, note)
	return c, nil, err
}

// teamsRoom is, for each of teams (in the order of their ids) that has a
// limit on its steps at once (see ClaimAll), how many more it may start
// now; a team without a limit is not in the map. On PostgreSQL each
// limited team's claim lock is taken first, so that claims of one team in
// any process count one after another (SQLite writes one transaction at a
// time anyway); taken in the order of the teams' ids, after the runs'
// locks, they cannot deadlock.
func (s *Service) teamsRoom(ctx context.Context, tx *sqlx.Tx, teams []int64, instanceLimit int, now time.Time) (map[int64]int, error) {
	room := map[int64]int{}
	if len(teams) == 0 {
		return room, nil
	}
	in, arg := s.DB.InIDs("tm.id", teams)
	var plans []struct {
		TeamID int64 `db:"team_id"`
		Limit  int   `db:"plan_limit"`
	}
	if err := db.Select(ctx, tx, &plans, `SELECT tm.id AS team_id, COALESCE(p.concurrency, -1) AS plan_limit
		FROM teams tm LEFT JOIN plans p ON p.id = tm.plan WHERE `+in+` ORDER BY tm.id`, arg); err != nil {
		return nil, fmt.Errorf("runs: read the plans of %d teams: %w", len(teams), err)
	}
	limits := map[int64]int{}
	var limited []int64 // in the order of their ids
	for _, p := range plans {
		if limit := billing.Concurrency(p.Limit, instanceLimit); limit > 0 {
			limits[p.TeamID] = limit
			limited = append(limited, p.TeamID)
		}
	}
	if len(limited) == 0 {
		return room, nil
	}
	if s.DB.Dialect == db.Postgres {
		// The locks are taken in the array's order, one after another.
		if _, err := db.Exec(ctx, tx, `SELECT pg_advisory_xact_lock(hashtext('nofx.team_steps'), mod(t.id, 2147483647)::int)
			FROM unnest(?::bigint[]) AS t(id)`, pq.Array(limited)); err != nil {
			return nil, fmt.Errorf("runs: lock the step claims of %d teams: %w", len(limited), err)
		}
	}
	// Counted once the locks are held (a statement of its own, so that on
	// PostgreSQL it sees every claim committed before they were granted).
	in, arg = s.DB.InIDs("r.team_id", limited)
	var counts []struct {
		TeamID  int64 `db:"team_id"`
		Running int   `db:"running"`
	}
	if err := db.Select(ctx, tx, &counts, `SELECT r.team_id, COUNT(*) AS running FROM runs r CROSS JOIN steps s
		WHERE s.run_id = r.id AND r.status = 'running' AND s.status = 'running' AND s.lease_expires_at >= ? AND `+in+`
		GROUP BY r.team_id`, now, arg); err != nil {
		return nil, fmt.Errorf("runs: count running steps of %d teams: %w", len(limited), err)
	}
	for _, team := range limited {
		room[team] = limits[team]
	}
	for _, c := range counts {
		room[c.TeamID] -= c.Running
	}
	return room, nil
}

// prompt is the prompt step runs with: rendered from the run's inputs and
// earlier outputs, or as written in a replay (rendered for its original).
func (st *state) prompt(step *Step, inputs map[string]any) (string, error) {
	if st.run.Replay {
		return step.Prompt, nil
	}
	return plan.Render(step.Prompt, inputs, st.outputs())
}

// stepStartSQL gives a step to a new holder of its lease.
var stepStartSQL = updateByID("steps", "attempt = attempt + 1",
	column{name: "status", typ: "text"}, column{name: "enqueued", typ: "boolean"}, column{name: "lease_token", typ: "text"},
	column{name: "lease_expires_at", typ: "timestamptz"}, column{name: "rendered_prompt", typ: "text"},
	column{name: "started_at", typ: "timestamptz", expr: "COALESCE(started_at, ?)"}, column{name: "updated_at", typ: "timestamptz"})

// start gives step, about to run with prompt, to a new holder of a lease,
// with the run's other writes; note ends the timeline's entry.
func (st *state) start(step *Step, prompt string, lease time.Duration, note string) (Claim, error) {
	token, _, err := auth.NewToken()
	if err != nil {
		return Claim{}, err
	}
	expires := st.now.Add(lease)
	st.laterRow(stepStartSQL, StepRunning, true, token, expires, prompt, st.now, st.now, step.ID)
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
	return s.CompleteAll(ctx, []Success{{Claim: c, Output: output, Usage: u}})[0].Err
}

// CompleteAndTake is Complete for a worker that goes on at once: when the
// success readies steps of the same run, it takes the first of them in the
// same transaction, under a new lease, instead of giving it a job, and
// returns its claim (ok true). The step starts without waiting for a
// worker to fetch it; a worker that dies meanwhile loses it to the rescue
// of expired leases, as any claim. The team's running steps do not grow:
// the finished step leaves as the taken one starts.
func (s *Service) CompleteAndTake(ctx context.Context, c Claim, output string, u Usage, lease time.Duration) (next Claim, ok bool, err error) {
	r := s.CompleteAll(ctx, []Success{{Claim: c, Output: output, Usage: u, Lease: lease}})[0]
	return r.Next, r.Took, r.Err
}

// Success is a claim's successful attempt, to record (see CompleteAll).
type Success struct {
	Claim  Claim
	Output string
	Usage  Usage
	// Lease, when set, takes a step the success readied, as
	// CompleteAndTake does.
	Lease time.Duration
}

// Recorded is what recording a Success did: the step it took, when it took
// one, or why it recorded nothing (ErrLeaseLost, or the transaction's error).
type Recorded struct {
	Next Claim
	Took bool
	Err  error
}

// CompleteAll records successes, of one run or many, as Complete and
// CompleteAndTake do, in one transaction: their runs are locked and read in
// two statements, each run is settled once, the jobs of the steps they
// ready are enqueued together, and there is one commit. A worker pool that
// records the successes that finish together this way (see the engine's
// batcher) spends a few statements on each instead of a transaction. Each
// success is recorded, or not, on its own terms: one whose claim lost its
// lease records nothing (ErrLeaseLost) and does not hold back the others.
// When the transaction fails for anything but the database being
// unavailable, each success is tried again alone, so that one that cannot
// be recorded holds back no other.
func (s *Service) CompleteAll(ctx context.Context, all []Success) []Recorded {
	out, err := s.completeAll(ctx, all, len(all) > 1)
	if err == nil {
		return out
	}
	return eachAlone(ctx, len(all), err, func(i int, bounded bool) (Recorded, error) {
		one, err := s.completeAll(ctx, all[i:i+1], bounded)
		return one[0], err
	}, func(err error) Recorded { return Recorded{Err: err} })
}

// completeAll is CompleteAll's one transaction.
func (s *Service) completeAll(ctx context.Context, all []Success, bounded bool) ([]Recorded, error) {
	out := make([]Recorded, len(all))
	var touched []*state // in the order of their run ids
	err := db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		now := db.Now()
		ids := make([]int64, 0, len(all))
		for _, sc := range all {
			ids = append(ids, sc.Claim.Run.ID)
		}
		ids, states, err := s.lockBatch(ctx, tx, bounded, ids, now)
		if err != nil {
			return err
		}
		spent := map[teamSpend]int64{}
		for i, sc := range all {
			st := states[sc.Claim.Run.ID]
			var step *Step
			if st != nil {
				step = st.byName[sc.Claim.Step.Name]
			}
			if step == nil || step.Status != StepRunning || step.LeaseToken != sc.Claim.Lease {
				out[i].Err = ErrLeaseLost
				continue
			}
			st.succeed(step, sc.Output, sc.Usage)
			if sc.Usage.CostMicros > 0 {
				spent[teamSpend{team: st.run.TeamID, ownKey: sc.Usage.OwnKey}] += sc.Usage.CostMicros
			}
		}
		// Each cost counts toward its team's plan exactly once: here. The
		// teams' usage rows are locked in one order, as the runs are.
		for _, k := range slices.SortedFunc(maps.Keys(spent), teamSpend.compare) {
			if err := billing.AddSpend(ctx, tx, k.team, now, spent[k], k.ownKey); err != nil {
				return err
			}
		}
		var jobs []StepJob
		for _, id := range ids {
			st := states[id]
			if st == nil || len(st.writes) == 0 {
				continue // nothing recorded on it
			}
			touched = append(touched, st)
			readied, err := s.settle(ctx, tx, st)
			if err != nil {
				return err
			}
			for i, sc := range all {
				if sc.Lease <= 0 || sc.Claim.Run.ID != id || out[i].Err != nil {
					continue
				}
				if out[i].Next, out[i].Took, readied, err = st.take(readied, sc.Lease); err != nil {
					return err
				}
			}
			jobs = append(jobs, readied...)
		}
		if err := s.schedule(ctx, tx, jobs, func(runID int64) *state { return states[runID] }); err != nil {
			return err
		}
		return flushAll(ctx, tx, s.DB.Dialect == db.Postgres, touched)
	})
	if err != nil {
		return out, err
	}
	s.published(ctx, touched)
	return out, nil
}

// published tells the watchers of each run that a committed transaction
// changed it; the run's team hears it too (live.TeamTopic), in the same
// message.
func (s *Service) published(ctx context.Context, changed []*state) {
	if s.Broker == nil {
		return
	}
	for _, st := range changed {
		s.Broker.Publish(context.WithoutCancel(ctx), live.Message{RunID: st.run.ID, TeamID: st.run.TeamID, Kind: live.KindChanged, Status: st.run.Status})
	}
}

// teamSpend is a team's spend on the instance's keys or on its own.
type teamSpend struct {
	team   int64
	ownKey bool
}

func (a teamSpend) compare(b teamSpend) int {
	if c := cmp.Compare(a.team, b.team); c != 0 {
		return c
	}
	switch {
	case a.ownKey == b.ownKey:
		return 0
	case b.ownKey:
		return -1
	}
	return 1
}

// succeed records step's successful attempt with its output and usage.
func (st *state) succeed(step *Step, output string, u Usage) {
	st.writes = append(st.writes, st.stepWrite(step, stepUpdate{status: StepSucceeded, output: output, finish: true, clearLease: true, usage: &u}))
	msg := fmt.Sprintf("Succeeded on attempt %d", step.Attempt)
	if u.ServedBy != "" {
		msg += " with fallback " + u.ServedBy
	}
	if u.InputTokens+u.OutputTokens > 0 {
		msg += fmt.Sprintf(" (%d tokens in, %d out)", u.InputTokens, u.OutputTokens)
	}
	st.event(step.Name, "step.succeeded", msg, nil)
}

// take starts the step of the first of the readied jobs under a new lease
// (see CompleteAndTake) and returns its claim and the jobs still to
// enqueue. A step it cannot start keeps its job, whose claim says why.
func (st *state) take(readied []StepJob, lease time.Duration) (Claim, bool, []StepJob, error) {
	if len(readied) == 0 {
		return Claim{}, false, readied, nil
	}
	step := st.stepByID(readied[0].StepID)
	inputs, err := st.run.Inputs()
	if step == nil || err != nil {
		return Claim{}, false, readied, nil
	}
	prompt, err := st.prompt(step, inputs)
	if err != nil {
		return Claim{}, false, readied, nil
	}
	next, err := st.start(step, prompt, lease, "")
	if err != nil {
		return Claim{}, false, nil, err
	}
	return next, true, readied[1:], nil
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
