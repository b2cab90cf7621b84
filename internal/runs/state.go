package runs

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/plan"
)

// txn is one change to runs: the transaction, the run it touched (to settle
// and announce), and extra jobs to enqueue with it.
type txn struct {
	tx    *sqlx.Tx
	now   time.Time
	runID int64
	jobs  []StepJob
	// state is the run as fn left it, when fn loaded it and kept it up to
	// date; otherwise it is read again before settling.
	state *state
	// after, when set, runs last in the transaction, once the run is settled
	// and its jobs enqueued: to read what is about to be committed.
	after func() error
}

// transact runs fn in a transaction, then settles the run fn touched:
// readies the steps whose needs are met, enqueues their jobs and updates the
// run's status and totals, all before commit. After commit the run's
// watchers are told.
func (s *Service) transact(ctx context.Context, fn func(t *txn) error) error {
	var changed []*state // the run fn touched, as settled
	err := db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		t := &txn{tx: tx, now: db.Now()}
		if err := fn(t); err != nil {
			return err
		}
		if t.runID == 0 {
			return t.runAfter()
		}
		st := t.state
		if st == nil {
			var err error
			if st, err = loadState(ctx, s.DB, t.tx, t.runID, t.now, false); err != nil {
				return err
			}
		}
		jobs, err := s.settle(ctx, t.tx, st)
		if err != nil {
			return err
		}
		if err := s.schedule(ctx, t.tx, append(jobs, t.jobs...), func(int64) *state { return st }); err != nil {
			return err
		}
		if err := st.flush(ctx, t.tx, s.DB.Dialect == db.Postgres); err != nil {
			return err
		}
		changed = []*state{st}
		return t.runAfter()
	})
	if err != nil {
		return err
	}
	s.published(ctx, changed)
	return nil
}

// runAfter runs t.after, when set.
func (t *txn) runAfter() error {
	if t.after == nil {
		return nil
	}
	return t.after()
}

// stepJobSQL records a step's current job.
var stepJobSQL = updateByID("steps", "", column{name: "enqueued", typ: "boolean"}, column{name: "job_id", typ: "bigint"})

// schedule enqueues jobs, of one run or many, and records each as its
// step's current job with its run's other writes (see later); stateOf is
// the state of a job's run.
func (s *Service) schedule(ctx context.Context, tx *sqlx.Tx, jobs []StepJob, stateOf func(runID int64) *state) error {
	if len(jobs) == 0 {
		return nil
	}
	if s.Scheduler == nil {
		return errors.New("runs: no scheduler to enqueue step jobs")
	}
	ids, err := s.Scheduler.Schedule(ctx, tx, jobs)
	if err != nil {
		return err
	}
	for i, job := range jobs {
		stateOf(job.RunID).laterRow(stepJobSQL, true, ids[i], job.StepID)
	}
	return nil
}

// changeRun locks a run of the actor's team and lets fn change it; see
// transact.
func (s *Service) changeRun(ctx context.Context, actor access.Actor, runID int64, fn func(q db.Queryer, st *state) error) error {
	return s.transact(ctx, func(t *txn) error {
		st, err := loadState(ctx, s.DB, t.tx, runID, t.now, true)
		if err != nil {
			return err
		}
		if st.run.TeamID != actor.TeamID {
			return fmt.Errorf("runs: get %d: %w", runID, db.ErrNotFound)
		}
		t.runID, t.state = runID, st
		return fn(t.tx, st)
	})
}

// state is a run and its steps as read inside a transaction, with the
// timeline events the transaction adds.
type state struct {
	run     Run
	steps   []*Step
	byName  map[string]*Step
	now     time.Time
	pending []pendingEvent
	writes  []write // see later
}

// pendingEvent is a timeline event written when the transaction settles.
type pendingEvent struct {
	step, kind, message string
	actor               *access.Actor
}

// loadState reads a run and its steps. With lock, the run is locked until
// the transaction ends, so that two steps finishing at once see each
// other's results (SQLite transactions are exclusive already).
func loadState(ctx context.Context, d *db.DB, q db.Queryer, runID int64, now time.Time, lock bool) (*state, error) {
	query := runStateSelect + ` WHERE r.id = ?`
	if lock && d.Dialect == db.Postgres {
		query += ` FOR UPDATE OF r`
	}
	var run Run
	if err := db.Get(ctx, q, &run, query, runID); err != nil {
		return nil, fmt.Errorf("runs: get %d: %w", runID, err)
	}
	steps, err := listSteps(ctx, q, runID)
	if err != nil {
		return nil, err
	}
	return newState(run, steps, now), nil
}

// loadStates is loadState, locking, for many runs in two statements: the
// runs are locked in the order of their ids, so that two transactions
// locking some of the same runs cannot deadlock; their steps are read once
// the locks are held. A run that does not exist is left out.
func loadStates(ctx context.Context, d *db.DB, q db.Queryer, runIDs []int64, now time.Time) (map[int64]*state, error) {
	in, arg := d.InIDs("r.id", runIDs)
	query := runStateSelect + ` WHERE ` + in + ` ORDER BY r.id`
	if d.Dialect == db.Postgres {
		query += ` FOR UPDATE OF r`
	}
	var list []Run
	if err := db.Select(ctx, q, &list, query, arg); err != nil {
		return nil, fmt.Errorf("runs: lock %d runs: %w", len(runIDs), err)
	}
	in, arg = d.InIDs("run_id", runIDs)
	var steps []Step
	if err := db.Select(ctx, q, &steps, `SELECT `+stepColumns+` FROM steps WHERE `+in+` ORDER BY run_id, position`, arg); err != nil {
		return nil, fmt.Errorf("runs: steps of %d runs: %w", len(runIDs), err)
	}
	states := make(map[int64]*state, len(list))
	for _, run := range list {
		lo, _ := slices.BinarySearchFunc(steps, run.ID, func(s Step, id int64) int { return cmp.Compare(s.RunID, id) })
		hi := lo
		for hi < len(steps) && steps[hi].RunID == run.ID {
			hi++
		}
		states[run.ID] = newState(run, steps[lo:hi:hi], now)
	}
	return states, nil
}

// newState is the state of run with its steps, in the order of their
// positions.
func newState(run Run, steps []Step, now time.Time) *state {
	st := &state{run: run, byName: make(map[string]*Step, len(steps)), now: now}
	st.steps = make([]*Step, len(steps))
	for i := range steps {
		st.steps[i] = &steps[i]
		st.byName[steps[i].Name] = &steps[i]
	}
	return st
}

// event adds an entry to the run's timeline.
func (st *state) event(step, kind, message string, actor *access.Actor) {
	st.pending = append(st.pending, pendingEvent{step: step, kind: kind, message: message, actor: actor})
}

// stepUpdate is a change of a step's status.
type stepUpdate struct {
	status     string
	output     string
	error      string
	finish     bool // set finished_at
	clearLease bool
	usage      *Usage // tokens and cost, when known
}

// setStep changes a step's status now.
func (st *state) setStep(ctx context.Context, q db.Queryer, step *Step, u stepUpdate) error {
	w := st.stepWrite(step, u)
	if _, err := db.Exec(ctx, q, w.query, w.args...); err != nil {
		return fmt.Errorf("runs: set step %s %s: %w", step.Name, u.status, err)
	}
	return nil
}

// stepSetSQL changes a step's status. A usage's values are NULL without
// one, and then leave the step's as they are, as does an empty served_by.
var stepSetSQL = updateByID("steps", "waiting_on = ''",
	column{name: "status", typ: "text"}, column{name: "output", typ: "text"}, column{name: "error", typ: "text"},
	column{name: "finished_at", typ: "timestamptz"}, column{name: "updated_at", typ: "timestamptz"},
	column{name: "lease_token", typ: "boolean", expr: "CASE WHEN ? THEN '' ELSE lease_token END"},
	column{name: "lease_expires_at", typ: "boolean", expr: "CASE WHEN ? THEN NULL ELSE lease_expires_at END"},
	column{name: "input_tokens", typ: "bigint", expr: "COALESCE(?, input_tokens)"},
	column{name: "output_tokens", typ: "bigint", expr: "COALESCE(?, output_tokens)"},
	column{name: "cost_micros", typ: "bigint", expr: "COALESCE(?, cost_micros)"},
	column{name: "own_key", typ: "boolean", expr: "COALESCE(?, own_key)"},
	column{name: "served_by", typ: "text", expr: "COALESCE(NULLIF(?, ''), served_by)"})

// stepWrite applies u to step and returns the write of stepSetSQL that
// records it.
func (st *state) stepWrite(step *Step, u stepUpdate) write {
	var finished *time.Time
	if u.finish {
		finished = &st.now
	}
	var inTokens, outTokens, cost sql.NullInt64
	var ownKey sql.NullBool
	var servedBy string
	step.WaitingOn = ""
	if u.clearLease {
		step.LeaseToken, step.LeaseExpiresAt = "", nil
	}
	if u := u.usage; u != nil {
		inTokens, outTokens, cost = sql.NullInt64{Int64: u.InputTokens, Valid: true}, sql.NullInt64{Int64: u.OutputTokens, Valid: true}, sql.NullInt64{Int64: u.CostMicros, Valid: true}
		ownKey = sql.NullBool{Bool: u.OwnKey, Valid: true}
		step.InputTokens, step.OutputTokens, step.CostMicros = u.InputTokens, u.OutputTokens, u.CostMicros
		if u.ServedBy != "" {
			servedBy = u.ServedBy
			step.ServedBy = u.ServedBy
		}
	}
	step.Status, step.Output, step.Error, step.FinishedAt = u.status, u.output, u.error, finished
	return write{query: stepSetSQL.plain, rows: stepSetSQL, args: []any{u.status, u.output, u.error, finished, st.now,
		u.clearLease, u.clearLease, inTokens, outTokens, cost, ownKey, servedBy, step.ID}}
}

// stepByID returns the run's step id, or nil.
func (st *state) stepByID(id int64) *Step {
	for _, step := range st.steps {
		if step.ID == id {
			return step
		}
	}
	return nil
}

// outputs returns the outputs of the succeeded steps, by name.
func (st *state) outputs() map[string]string {
	out := map[string]string{}
	for _, step := range st.steps {
		if step.Status == StepSucceeded {
			out[step.Name] = step.Output
		}
	}
	return out
}

// runSettleSQL records a run's status and totals.
var runSettleSQL = updateByID("runs", "",
	column{name: "status", typ: "text"}, column{name: "steps_done", typ: "integer"},
	column{name: "steps_failed", typ: "integer"}, column{name: "steps_skipped", typ: "integer"}, column{name: "input_tokens", typ: "bigint"},
	column{name: "output_tokens", typ: "bigint"}, column{name: "cost_micros", typ: "bigint"}, column{name: "error", typ: "text"},
	column{name: "started_at", typ: "timestamptz"}, column{name: "finished_at", typ: "timestamptz"}, column{name: "updated_at", typ: "timestamptz"})

// settle brings a run up to date after a change: skips the steps that can
// no longer run, readies those whose needs all succeeded (approval steps
// start waiting, others get a job), and updates the run's status and totals.
// It returns the jobs to enqueue.
func (s *Service) settle(ctx context.Context, q db.Queryer, st *state) ([]StepJob, error) {
	run := &st.run
	var jobs []StepJob
	if run.Status != RunCancelled {
		if err := st.skipUnreachable(ctx, q); err != nil {
			return nil, err
		}
		var err error
		if jobs, err = st.readySteps(ctx, q); err != nil {
			return nil, err
		}
	}

	var running, active, waiting, failed, skipped, done int
	var inTokens, outTokens, cost int64
	var firstError string
	for _, step := range st.steps {
		inTokens += step.InputTokens
		outTokens += step.OutputTokens
		cost += step.CostMicros
		switch step.Status {
		case StepRunning:
			running++
		case StepQueued:
			if step.Enqueued {
				active++
			}
		case StepWaiting:
			waiting++
		case StepFailed, StepTimedOut:
			failed++
			done++
			if firstError == "" {
				firstError = fmt.Sprintf("Step %s %s: %s", step.Name, humanStatus(step.Status), step.Error)
			}
		case StepSkipped, StepCancelled:
			skipped++
			done++
		default:
			done++
		}
	}

	status := run.Status
	switch {
	case run.Status == RunCancelled:
	case running > 0 || (active > 0 && run.StartedAt != nil):
		status = RunRunning
	case active > 0:
		status = RunQueued
	case waiting > 0:
		status = RunWaiting
	case failed > 0:
		status = RunFailed
	default:
		status = RunSucceeded
	}
	runError := run.Error
	if status == RunFailed {
		runError = firstError
	}

	if status == run.Status && done == run.StepsDone && failed == run.StepsFailed && skipped == run.StepsSkipped && inTokens == run.InputTokens && outTokens == run.OutputTokens &&
		cost == run.CostMicros && runError == run.Error {
		return jobs, nil
	}
	startedAt, finishedAt := run.StartedAt, run.FinishedAt
	if status == RunRunning && startedAt == nil {
		startedAt = &st.now
	}
	if status == RunSucceeded || status == RunFailed {
		if startedAt == nil {
			startedAt = &st.now
		}
		finishedAt = &st.now
	}
	st.laterRow(runSettleSQL, status, done, failed, skipped, inTokens, outTokens, cost, runError, startedAt, finishedAt, st.now, run.ID)
	if status != run.Status {
		var msg string
		switch status {
		case RunRunning:
			if run.StartedAt == nil {
				msg = "Run started"
			}
		case RunWaiting:
			msg = "Run waiting for a decision" // the step's own event says which
			for _, step := range st.steps {
				if step.Status == StepWaiting && step.WaitingOn == WaitingOnSpend {
					msg = "Waiting: the team's spend limit is reached"
					break
				}
			}
		case RunSucceeded:
			msg = "Run succeeded"
		case RunFailed:
			msg = "Run failed: " + runError
		}
		if msg != "" {
			st.event("", "run."+status, msg, nil)
		}
	}
	run.StepsFailed, run.StepsSkipped = failed, skipped
	run.Status, run.StepsDone, run.StartedAt, run.FinishedAt, run.Error = status, done, startedAt, finishedAt, runError
	return jobs, nil
}

func humanStatus(status string) string {
	if status == StepTimedOut {
		return "timed out"
	}
	return status
}

// skipUnreachable skips the queued steps that need a step that failed, timed
// out, was cancelled or was skipped itself.
func (st *state) skipUnreachable(ctx context.Context, q db.Queryer) error {
	for changed := true; changed; {
		changed = false
		for _, step := range st.steps {
			if step.Status != StepQueued {
				continue
			}
			for _, need := range step.Needs() {
				dep := st.byName[need]
				if dep == nil || !dep.Finished() || dep.Status == StepSucceeded {
					continue
				}
				if err := st.setStep(ctx, q, step, stepUpdate{status: StepSkipped, error: "needs " + need + ", which " + humanStatus(dep.Status), finish: true}); err != nil {
					return err
				}
				st.event(step.Name, "step.skipped", "Skipped: "+need+" "+humanStatus(dep.Status), nil)
				changed = true
				break
			}
		}
	}
	return nil
}

// readySteps starts the queued steps whose needs all succeeded: approval
// steps wait for a person, the others get a job.
func (st *state) readySteps(ctx context.Context, q db.Queryer) ([]StepJob, error) {
	var jobs []StepJob
	for _, step := range st.steps {
		if step.Status != StepQueued || step.Enqueued || !st.needsMet(step) {
			continue
		}
		if step.Kind == plan.KindApproval {
			inputs, err := st.run.Inputs()
			if err != nil {
				return nil, fmt.Errorf("runs: inputs of run %d: %w", st.run.ID, err)
			}
			message, err := plan.Render(step.Prompt, inputs, st.outputs())
			if err != nil {
				message = step.Prompt
			}
			_, err = db.Exec(ctx, q, `UPDATE steps SET status = ?, rendered_prompt = ?, started_at = ?, updated_at = ? WHERE id = ?`,
				StepWaiting, message, st.now, st.now, step.ID)
			if err != nil {
				return nil, fmt.Errorf("runs: wait on step %s: %w", step.Name, err)
			}
			step.Status, step.RenderedPrompt, step.StartedAt = StepWaiting, message, &st.now
			st.event(step.Name, "step.waiting", "Waiting for approval", nil)
			continue
		}
		step.Enqueued = true // written with the job's id when it is scheduled
		jobs = append(jobs, StepJob{RunID: st.run.ID, StepID: step.ID})
	}
	return jobs, nil
}

func (st *state) needsMet(step *Step) bool {
	for _, need := range step.Needs() {
		if dep := st.byName[need]; dep == nil || dep.Status != StepSucceeded {
			return false
		}
	}
	return true
}

// backoff is the wait before attempt+1 of a step: RetryBase doubled per
// failed attempt, at most RetryMax, with jitter so that steps failing
// together do not retry together.
func (s *Service) backoff(attempt int) time.Duration {
	base, maxDelay := s.RetryBase, s.RetryMax
	if base <= 0 {
		base = time.Second
	}
	if maxDelay <= 0 {
		maxDelay = time.Minute
	}
	d := base
	for i := 1; i < attempt && d < maxDelay; i++ {
		d *= 2
	}
	d = min(d, maxDelay)
	return d/2 + rand.N(d/2+1)
}
