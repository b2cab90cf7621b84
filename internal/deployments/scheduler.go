package deployments

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/validation"
)

// errTickTaken aborts a scheduled run whose tick another process claimed.
var errTickTaken = errors.New("deployments: schedule tick already taken")

// dueBatch is how many due deployments one pass starts at most.
const dueBatch = 100

// RunDue starts one run for every scheduled deployment whose next tick has
// come, and returns how many it started. Each run is created in the
// transaction that moves the deployment's next tick forward with a
// compare-and-set, so that of several processes running RunDue at once
// exactly one starts the run of a tick (the unique index on deployment and
// tick is the backstop).
//
// After downtime, a deployment whose ticks were missed runs once, for the
// latest missed tick, and then waits for its next tick after now: missed
// ticks are not replayed one by one.
//
// A tick whose run cannot be created (say the pinned version lost a
// default since the schedule was set) is skipped: the error is logged,
// and the schedule moves on. The first failing tick of a streak is
// audited as deployment.schedule_failed; the next ones, until a tick runs,
// are only logged.
func (s *Service) RunDue(ctx context.Context) (int, error) {
	now := s.now()
	list, err := dueAt(ctx, s.DB, now, dueBatch)
	if err != nil {
		return 0, err
	}
	started := 0
	var errs []error
	for _, d := range list {
		ok, err := s.runTick(ctx, d, now)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			started++
		}
	}
	return started, errors.Join(errs...)
}

// runTick starts the run of d's due tick, unless another process has.
func (s *Service) runTick(ctx context.Context, d due, now time.Time) (bool, error) {
	read := *d.NextRunAt
	_, sched, err := ParseSchedule(d.Schedule)
	if err != nil { // not written by SetSchedule: stop it rather than spin
		return false, s.skipTick(ctx, d, read, nil, err)
	}
	loc, err := teams.LoadLocation(d.TimeZone)
	if err != nil {
		loc = time.UTC
	}
	tick := latestTick(sched, loc, read, now)
	var next *time.Time
	if n := NextTick(sched, loc, now); !n.IsZero() {
		next = &n
	}

	v, err := pinned(ctx, s.DB, d.Deployment)
	if db.Unavailable(err) {
		return false, err // the tick stays due for the next pass
	}
	if err != nil {
		return false, s.skipTick(ctx, d, read, next, err)
	}
	in, err := runInput(d.Deployment, v, nil, runs.TriggerSchedule)
	if err != nil {
		return false, s.skipTick(ctx, d, read, next, err)
	}
	in.ScheduledFor = &tick
	in.Within = func(ctx context.Context, tx *sqlx.Tx) error {
		ok, err := claimTick(ctx, tx, d.ID, read, next)
		if err != nil {
			return err
		}
		if !ok {
			return errTickTaken
		}
		return nil
	}
	run, _, err := s.Runs.Create(ctx, systemActor(d.TeamID), in)
	switch {
	case errors.Is(err, errTickTaken):
		return false, nil
	case db.IsUniqueViolation(err): // this tick already has its run: only move on
		_, err := claimTick(ctx, s.DB, d.ID, read, next)
		return false, err
	case db.Unavailable(err):
		return false, err // not the tick's fault: it stays due for the next pass
	case err != nil:
		return false, s.skipTick(ctx, d, read, next, err)
	}
	s.failing.Delete(d.ID)
	s.log().Info("scheduled run started", "deployment_id", d.ID, "template", d.Template, "environment", d.Environment,
		"tick", tick, "run_id", run.ID)
	return true, nil
}

// skipTick moves d past a tick whose run could not be created, and records
// why, once (only the process that moves the tick does), in the audit log
// when the deployment's previous tick did not fail too. A pass cut short
// by shutdown skips nothing: the next start runs the tick.
func (s *Service) skipTick(ctx context.Context, d due, read time.Time, next *time.Time, cause error) error {
	if ctx.Err() != nil {
		return cause
	}
	claimed := false
	err := db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		ok, err := claimTick(ctx, tx, d.ID, read, next)
		if err != nil || !ok {
			return err
		}
		claimed = true
		s.log().Warn("scheduled run not started", "deployment_id", d.ID, "template", d.Template,
			"environment", d.Environment, "tick", read, "error", cause)
		if _, streak := s.failing.Load(d.ID); streak {
			return nil // the streak's first tick was audited
		}
		msg := cause.Error()
		var verrs validation.Errors
		if errors.As(cause, &verrs) {
			msg = verrs.Error()
		}
		if len(msg) > 500 {
			msg = msg[:500]
		}
		e := audit.For(access.Actor{TeamID: d.TeamID}, "deployment.schedule_failed", target(d.Template, d.Environment),
			fmt.Sprintf("tick %s: %s", read.Format(time.RFC3339), msg))
		e.Actor = "scheduler"
		return audit.Record(ctx, tx, e)
	})
	if err == nil && claimed {
		s.failing.Store(d.ID, true)
	}
	return err
}

// PruneDeliveries forgets webhook deliveries too old to be replayed.
func (s *Service) PruneDeliveries(ctx context.Context) (int64, error) {
	return pruneDeliveries(ctx, s.DB, s.now().Add(-deliveryMemory))
}

// Scheduler runs the deployments' schedules: every Every it starts the
// runs that are due and forgets old webhook deliveries, until stopped.
type Scheduler struct {
	Service *Service
	Every   time.Duration

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// Start starts the loop; it runs until Stop.
func (sc *Scheduler) Start(ctx context.Context) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.done != nil {
		return
	}
	ctx, sc.cancel = context.WithCancel(context.WithoutCancel(ctx))
	sc.done = make(chan struct{})
	go sc.loop(ctx, sc.done)
}

func (sc *Scheduler) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	every := sc.Every
	if every <= 0 {
		every = 5 * time.Second
	}
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	outage := &db.Outage{Log: sc.Service.log(), What: "scheduler"}
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		_, err := sc.Service.RunDue(ctx)
		if ctx.Err() != nil {
			return
		}
		if !outage.Observe(err) && err != nil {
			sc.Service.log().Error("scheduler: run due deployments", "error", err)
		}
		if outage.Down() {
			continue
		}
		if _, err := sc.Service.PruneDeliveries(ctx); err != nil && ctx.Err() == nil && !outage.Observe(err) {
			sc.Service.log().Warn("scheduler: prune webhook deliveries", "error", err)
		}
	}
}

// Stop ends the loop and waits for its pass in progress, or for ctx.
func (sc *Scheduler) Stop(ctx context.Context) error {
	sc.mu.Lock()
	cancel, done := sc.cancel, sc.done
	sc.mu.Unlock()
	if done == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("deployments: stop scheduler: %w", ctx.Err())
	}
}
