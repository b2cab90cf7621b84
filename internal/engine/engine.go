// Package engine executes the steps of runs durably: River workers in this
// process take step jobs, call providers or render text, and record each
// attempt through the runs service.
package engine

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cache "github.com/go-pkgz/expirable-cache/v3"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jmoiron/sqlx"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"

	"github.com/nofxhq/nofx/internal/ai"
	"github.com/nofxhq/nofx/internal/billing"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/live"
	"github.com/nofxhq/nofx/internal/plan"
	"github.com/nofxhq/nofx/internal/pricing"
	"github.com/nofxhq/nofx/internal/runs"
)

// stepsQueue is the River queue of step jobs.
const stepsQueue = "steps"

// Config is what an engine is built from. Zero durations take defaults.
type Config struct {
	DB        *db.DB
	Runs      *runs.Service
	Providers *ai.Registry
	Broker    live.Broker
	// Keys gives a team's own key for a provider ("" for the instance's).
	Keys KeyResolver
	Log  *slog.Logger
	// Workers is how many steps this process runs at once; 0 makes a node
	// that only enqueues.
	Workers int
	// Lease is how long a claimed step stays with its worker without a
	// heartbeat; a killed process's steps are retried after it expires.
	Lease time.Duration
	// RescueEvery is how often expired leases are looked for (the lease, at
	// most 10s).
	RescueEvery time.Duration
	// ShutdownGrace is how long running steps get to finish on Stop before
	// they are cancelled and released for the next start.
	ShutdownGrace time.Duration
	// PollInterval is how often idle workers look for new jobs.
	PollInterval time.Duration
	// PollOnly keeps a PostgreSQL engine from holding a LISTEN connection
	// (for PgBouncer in transaction mode): idle workers then find new steps
	// only by polling, every PollInterval.
	PollOnly bool
	// JobAttempts is how often a step job whose worker fails (not its
	// provider: a database error, corrupt data) is tried, with River's
	// backoff, before it becomes a dead letter; DefaultJobAttempts when 0.
	JobAttempts int
	// TeamConcurrency is how many steps of one team may run at once, counted
	// across every process; 0 is no limit. A team at its limit waits while
	// other teams' steps run.
	TeamConcurrency int
}

// quieter is River's log handler: its INFO lines (periodic job counts and
// the like) are debug lines here. Its warnings and errors stay as they are,
// but each message is logged at most once per repeatEvery: River repeats
// them on every poll while the database is away (ten lines a second), and
// the line after a quiet spell says how many were held back.
type quieter struct {
	slog.Handler
	seen *repeats
	// outage takes River's warnings and errors about a lost database
	// connection: one WARN when the outage starts; the rescue loop's next
	// pass that reaches the database ends it with one INFO.
	outage *db.Outage
}

// repeatEvery is how often one River warning or error is logged at most.
const repeatEvery = time.Minute

// repeats remembers when each River message was last logged.
type repeats struct {
	mu   sync.Mutex
	last map[string]repeat
}

type repeat struct {
	at   time.Time
	held int // lines of the message not logged since
}

func newRepeats() *repeats { return &repeats{last: map[string]repeat{}} }

func (q quieter) Enabled(ctx context.Context, level slog.Level) bool {
	if level == slog.LevelInfo {
		level = slog.LevelDebug
	}
	return q.Handler.Enabled(ctx, level)
}

func (q quieter) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelInfo {
		r.Level = slog.LevelDebug
	}
	if r.Level >= slog.LevelWarn && q.outage != nil {
		if text, lost := connectionLost(r); lost {
			q.outage.Observe(fmt.Errorf("%s: %s: %w", r.Message, text, driver.ErrBadConn))
			return nil
		}
	}
	if r.Level >= slog.LevelWarn && !strings.Contains(r.Message, "panic") { // a worker's panic is always told
		key := r.Level.String() + " " + r.Message
		q.seen.mu.Lock()
		last, ok := q.seen.last[key]
		if ok && r.Time.Sub(last.at) < repeatEvery {
			last.held++
			q.seen.last[key] = last
			q.seen.mu.Unlock()
			return nil
		}
		q.seen.last[key] = repeat{at: r.Time}
		q.seen.mu.Unlock()
		if last.held > 0 {
			r.AddAttrs(slog.Int("repeated", last.held))
		}
	}
	return q.Handler.Handle(ctx, r)
}

func (q quieter) WithAttrs(attrs []slog.Attr) slog.Handler {
	return quieter{q.Handler.WithAttrs(attrs), q.seen, q.outage}
}
func (q quieter) WithGroup(name string) slog.Handler {
	return quieter{q.Handler.WithGroup(name), q.seen, q.outage}
}

// lostConnection are the words of River's errors (as text: it logs
// err.Error()) that say the database connection was lost or refused.
var lostConnection = []string{"EOF", "connection refused", "connection reset", "broken pipe", "bad connection",
	"the database system is", "server closed the connection", "no connection to the server", "i/o timeout"}

// connectionLost reports whether River's record r says the database
// connection was lost, with River's error text.
func connectionLost(r slog.Record) (string, bool) {
	var text string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "err" || a.Key == "error" {
			text = a.Value.String()
			return false
		}
		return true
	})
	for _, words := range lostConnection {
		if text != "" && strings.Contains(text, words) {
			return text, true
		}
	}
	return "", false
}

// DefaultJobAttempts is how often a failing step job is tried before it is
// a dead letter: with River's backoff (attempt⁴ seconds), about 6 minutes.
const DefaultJobAttempts = 5

// JobErrors returns the last error of each of the step jobs ids that has
// one, for the dead letters page.
func (e *Engine) JobErrors(ctx context.Context, ids []int64) (map[int64]string, error) {
	out := map[int64]string{}
	if len(ids) == 0 {
		return out, nil
	}
	res, err := e.client.JobList(ctx, river.NewJobListParams().IDs(ids...).First(len(ids)))
	if err != nil {
		return nil, fmt.Errorf("engine: errors of jobs: %w", err)
	}
	for _, job := range res.Jobs {
		if n := len(job.Errors); n > 0 {
			out[job.ID] = job.Errors[n-1].Error
		}
	}
	return out, nil
}

// KeyResolver finds a team's own API key for a provider.
type KeyResolver interface {
	Resolve(ctx context.Context, teamID int64, provider string) (string, error)
}

// Engine runs step jobs.
type Engine struct {
	cfg         Config
	client      *river.Client[*sql.Tx]
	listenPool  *pgxpool.Pool // PostgreSQL's LISTEN connection; nil when polling only
	started     atomic.Bool
	stopping    atomic.Bool  // workers finish their step but take no next one
	active      atomic.Int64 // step jobs being worked in this process now
	stopRescue  context.CancelFunc
	rescueEnded chan struct{}

	// What the workers and the rescue loop see of database outages,
	// logged once each way.
	stepsOutage, rescueOutage, queueOutage *db.Outage

	// What every call would otherwise read again: model prices, and each
	// team's allowance on the instance's keys (see priceFor, allowanceFor).
	prices     *pricing.Cache
	allowances cache.Cache[int64, billing.Allowance]

	// The workers' claims and successes, each served together with those
	// that arrive at the same time.
	claims    *batcher[runs.Take, runs.Taken]
	successes *batcher[runs.Success, runs.Recorded]
}

// How many batches of claims, and of successes, a process writes at once.
// Claims take one writer: two batches of claims hold the same teams' claim
// locks (see runs.ClaimAll), so a second writer only waited for the first
// while it held its runs' locks.
const (
	claimWriters   = 1
	successWriters = 2
)

// priceFor is how long this process prices steps with a model price it
// read: a price changed under Admin in another process applies to steps
// finishing up to this long after.
const priceFor = 30 * time.Second

// allowanceFor is how long this process's calls reuse a team's allowance
// on the instance's keys (its plan, and whether its spend limit is
// reached): a team that reaches its limit has its next calls held within
// it. (The limit was never exact: calls under way when it is reached are
// counted as they finish.)
const allowanceFor = time.Second

// stepArgs is the job that asks for one attempt at a step.
type stepArgs struct {
	RunID  int64 `json:"run_id"`
	StepID int64 `json:"step_id"`
}

func (stepArgs) Kind() string { return "nofx_step" }

// New builds an engine on cfg.DB; Start starts its workers.
func New(cfg Config) (*Engine, error) {
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.RescueEvery <= 0 {
		cfg.RescueEvery = min(cfg.Lease, 10*time.Second)
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = 20 * time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 100 * time.Millisecond
	}
	if cfg.JobAttempts <= 0 {
		cfg.JobAttempts = DefaultJobAttempts
	}
	e := &Engine{cfg: cfg,
		stepsOutage:  &db.Outage{Log: cfg.Log, What: "step workers"},
		rescueOutage: &db.Outage{Log: cfg.Log, What: "rescue of lost steps"},
		queueOutage:  &db.Outage{Log: cfg.Log, What: "job queue"},
		prices:       &pricing.Cache{TTL: priceFor},
		allowances:   cache.NewCache[int64, billing.Allowance]().WithMaxKeys(100_000),
	}
	e.claims = &batcher[runs.Take, runs.Taken]{writers: claimWriters,
		write: func(ctx context.Context, all []runs.Take) []runs.Taken {
			return cfg.Runs.ClaimAll(ctx, all, cfg.Lease, cfg.TeamConcurrency)
		},
		failed: func(err error) runs.Taken { return runs.Taken{Err: err} }}
	e.successes = &batcher[runs.Success, runs.Recorded]{writers: successWriters, write: cfg.Runs.CompleteAll,
		failed: func(err error) runs.Recorded { return runs.Recorded{Err: err} }}

	rc := &river.Config{
		Logger:               slog.New(quieter{cfg.Log.Handler(), newRepeats(), e.queueOutage}).With("component", "river"),
		FetchPollInterval:    cfg.PollInterval,
		FetchCooldown:        min(cfg.PollInterval, 20*time.Millisecond),
		MaxAttempts:          cfg.JobAttempts,
		JobTimeout:           -1, // steps keep their own time
		RescueStuckJobsAfter: 24 * time.Hour,
	}
	if cfg.Workers > 0 {
		workers := river.NewWorkers()
		river.AddWorker(workers, &stepWorker{e: e})
		rc.Workers = workers
		rc.Queues = map[string]river.QueueConfig{stepsQueue: {MaxWorkers: cfg.Workers}}
	}
	var err error
	switch {
	case cfg.DB.Dialect != db.Postgres:
		e.client, err = river.NewClient(riversqlite.New(cfg.DB.DB.DB), rc)
	case cfg.PollOnly || cfg.Workers == 0:
		e.client, err = river.NewClient(riverdatabasesql.New(cfg.DB.DB.DB), rc)
	default:
		// A step made ready in a transaction is announced with NOTIFY as it
		// commits, and idle workers take it at once instead of at the next
		// poll: the hand-off between a run's steps is then a round trip, not
		// up to PollInterval.
		if e.listenPool, err = listenPool(cfg.DB.URL()); err != nil {
			return nil, err
		}
		e.client, err = river.NewClient(riverdatabasesql.NewWithPgxListener(cfg.DB.DB.DB, e.listenPool), rc)
	}
	if err != nil {
		e.closeListenPool()
		return nil, fmt.Errorf("engine: river client: %w", err)
	}
	return e, nil
}

// listenPool is the pool River takes its one LISTEN connection from; it
// connects lazily, on Start.
func listenPool(url string) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("engine: database URL for LISTEN: %w", err)
	}
	pc.MinConns, pc.MaxConns = 0, 1
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		return nil, fmt.Errorf("engine: LISTEN pool: %w", err)
	}
	return pool, nil
}

func (e *Engine) closeListenPool() {
	if e.listenPool != nil {
		e.listenPool.Close()
		e.listenPool = nil
	}
}

// Start starts the workers; it does nothing on a node without workers.
func (e *Engine) Start(ctx context.Context) error {
	if e.cfg.Workers == 0 {
		return nil
	}
	// River stops when its start context ends; only Stop should stop it.
	if err := e.client.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("engine: start: %w", err)
	}
	rescueCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	e.stopRescue, e.rescueEnded = stop, make(chan struct{})
	go e.rescueLoop(rescueCtx)
	e.started.Store(true)
	return nil
}

// rescueLoop retries, every RescueEvery, the steps whose worker stopped
// renewing its lease (a killed process). Every worker node runs it: the
// rescue re-checks each step under the run's lock, so they never collide,
// and recovery does not wait for a leader.
func (e *Engine) rescueLoop(ctx context.Context) {
	defer close(e.rescueEnded)
	tick := time.NewTicker(e.cfg.RescueEvery)
	defer tick.Stop()
	for {
		e.rescue(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// rescue is one pass of the rescue loop. While the database is away, the
// pass stops at its first try and the outage is logged once.
func (e *Engine) rescue(ctx context.Context) {
	failed := func(what string, err error) bool {
		if err == nil || ctx.Err() != nil {
			return false
		}
		if !e.rescueOutage.Observe(err) {
			e.cfg.Log.Warn(what, "error", err)
		}
		return true
	}
	n, err := e.cfg.Runs.RescueExpired(ctx)
	if failed("rescue steps of lost workers", err) && e.rescueOutage.Down() {
		return
	}
	if n > 0 {
		e.cfg.Log.Warn("retried steps whose worker stopped responding", "count", n)
	}
	if n, err := e.requeueStranded(ctx); !failed("requeue stranded steps", err) && n > 0 {
		e.cfg.Log.Warn("queued again steps whose job was taken by a worker that stopped", "count", n)
	}
	// A new period, or a plan changed in another process, frees steps
	// held back by a spend limit.
	n, err = e.cfg.Runs.WakeSpendLimited(ctx)
	if !failed("start steps no longer held back by a spend limit", err) {
		e.rescueOutage.Observe(nil)
		e.queueOutage.Observe(nil) // River says nothing when it reaches the database again
		if n > 0 {
			e.cfg.Log.Info("started steps no longer held back by a spend limit", "count", n)
		}
	}
}

// Stop stops taking jobs, gives running steps the grace period to finish,
// then cancels them; cancelled steps are released to run again. A stopped
// engine is not started again.
func (e *Engine) Stop(ctx context.Context) error {
	defer func() {
		if !e.started.Load() {
			e.closeListenPool() // River no longer listens
		}
	}()
	if !e.started.Load() {
		return nil
	}
	e.stopping.Store(true)
	defer e.stopping.Store(false)
	e.stopRescue()
	<-e.rescueEnded
	soft, cancel := context.WithTimeout(ctx, e.cfg.ShutdownGrace)
	defer cancel()
	err := e.client.Stop(soft)
	if err == nil {
		e.started.Store(false)
		return nil
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("engine: stop: %w", err)
	}
	e.cfg.Log.Warn("steps still running after the grace period; cancelling them")
	hard, cancelHard := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancelHard()
	if err := e.client.StopAndCancel(hard); err != nil {
		return fmt.Errorf("engine: stop and cancel: %w", err)
	}
	e.started.Store(false)
	return nil
}

// Running reports whether this process's workers are running.
func (e *Engine) Running() bool { return e.started.Load() }

// Workers is how many steps this process runs at once.
func (e *Engine) Workers() int { return e.cfg.Workers }

// Active is how many step jobs this process is working on now.
func (e *Engine) Active() int { return int(e.active.Load()) }

// Schedule inserts the step jobs in tx, so they exist exactly when the
// change that made the steps ready commits.
func (e *Engine) Schedule(ctx context.Context, tx *sqlx.Tx, jobs []runs.StepJob) ([]int64, error) {
	params := make([]river.InsertManyParams, len(jobs))
	for i, j := range jobs {
		opts := &river.InsertOpts{Queue: stepsQueue}
		if !j.At.IsZero() {
			opts.ScheduledAt = j.At
		}
		params[i] = river.InsertManyParams{Args: stepArgs{RunID: j.RunID, StepID: j.StepID}, InsertOpts: opts}
	}
	results, err := e.client.InsertManyTx(ctx, tx.Tx, params)
	if err != nil {
		return nil, fmt.Errorf("engine: enqueue %d steps: %w", len(jobs), err)
	}
	ids := make([]int64, len(results))
	for i, r := range results {
		ids[i] = r.Job.ID
	}
	return ids, nil
}

type stepWorker struct {
	river.WorkerDefaults[stepArgs]
	e *Engine
}

// Timeout is disabled: each step enforces its own timeout per attempt.
func (w *stepWorker) Timeout(*river.Job[stepArgs]) time.Duration { return -1 }

func (w *stepWorker) Work(ctx context.Context, job *river.Job[stepArgs]) error {
	w.e.active.Add(1)
	defer w.e.active.Add(-1)
	err := w.e.work(ctx, job.Args.RunID, job.Args.StepID, job.ID)
	if errors.Is(err, runs.ErrTeamBusy) {
		return river.JobSnooze(teamWait(job.Metadata))
	}
	return err
}

// teamWait is how long a step whose team is at its concurrency limit waits
// before it asks again: longer each time it is turned away (from 200ms to
// 3.2s, with jitter), so that a team's large backlog does not keep the
// database busy while a freed slot is still taken soon by one of its many
// waiting steps. It stays below River's scheduler interval (5s), so the job
// comes back by itself.
func teamWait(metadata []byte) time.Duration {
	var m struct {
		Snoozes int `json:"snoozes"`
	}
	_ = json.Unmarshal(metadata, &m)
	d := 200 * time.Millisecond << min(max(m.Snoozes, 0), 4)
	return d/2 + rand.N(d/2+1)
}

// requeueStranded finds queued steps whose job a worker took but never
// started (River shows it running since longer than a lease, yet the step
// was never claimed) and gives them a new job. River itself would only
// rescue such a job much later.
func (e *Engine) requeueStranded(ctx context.Context) (int, error) {
	query := `SELECT s.id AS step_id, s.run_id, s.job_id FROM steps s JOIN river_job j ON j.id = s.job_id
		WHERE s.status = 'queued' AND j.state = 'running' AND `
	var arg any
	if e.cfg.DB.Dialect == db.Postgres {
		query += `j.attempted_at < now() - make_interval(secs => ?)`
		arg = e.cfg.Lease.Seconds()
	} else {
		query += `datetime(j.attempted_at) < datetime('now', ?)`
		arg = fmt.Sprintf("-%d seconds", int(e.cfg.Lease.Seconds()))
	}
	var stranded []struct {
		StepID int64 `db:"step_id"`
		RunID  int64 `db:"run_id"`
		JobID  int64 `db:"job_id"`
	}
	if err := db.Select(ctx, e.cfg.DB, &stranded, query+` LIMIT 500`, arg); err != nil {
		return 0, fmt.Errorf("engine: find stranded steps: %w", err)
	}
	for _, s := range stranded {
		if err := e.cfg.Runs.Requeue(ctx, s.RunID, s.StepID, s.JobID); err != nil {
			return 0, err
		}
	}
	return len(stranded), nil
}

var (
	errSpendLimit  = errors.New("the team's spend limit is reached")
	errStepTimeout = errors.New("step timed out")
	errLeaseLost   = errors.New("step was cancelled or taken over")
)

// deltaEvery is how often streamed text is sent to watchers; streams
// shorter than that are seen whole when the step finishes.
const deltaEvery = 100 * time.Millisecond

// holdBackoff is the longest backoff a worker waits through itself,
// keeping the step; longer ones go back to the queue as scheduled jobs.
const holdBackoff = 5 * time.Second

// work runs a step's attempts and records each outcome.
func (e *Engine) work(ctx context.Context, runID, stepID, jobID int64) error {
	svc := e.cfg.Runs
	taken := e.claims.do(runs.Take{RunID: runID, StepID: stepID, JobID: jobID})
	claim, err := taken.Claim, taken.Err
	if errors.Is(err, runs.ErrNotClaimable) {
		return nil
	}
	if err != nil {
		return err
	}
	var held lease
	held.renew(e.cfg.Lease)
	beforeCallTries := 0 // attempts in a row that found the database away before their call
	for {
		result, execErr, cause := e.attempt(ctx, claim, &held)
		if _, before := errors.AsType[*errBeforeCall](execErr); before {
			// No call was made: wait for the database and try the attempt
			// again; never record this as the attempt's failure.
			again, err := e.afterOutageBeforeCall(ctx, claim, &held, &beforeCallTries)
			if again {
				continue
			}
			return err
		}
		beforeCallTries = 0
		o, err := e.recordThrough(ctx, claim, &held, result, execErr, cause)
		switch {
		case errors.Is(err, runs.ErrLeaseLost):
			return nil // cancelled or taken over: the other side recorded it
		case err != nil:
			return err
		case o.took:
			claim = o.next // a step this one readied, taken without a job
			held.renew(e.cfg.Lease)
			continue
		case !o.kept:
			return nil
		}
		if err := e.hold(ctx, claim, o.delay, &held); err != nil {
			if errors.Is(err, errLeaseLost) {
				return nil
			}
			release, stop := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer stop()
			return svc.Release(release, claim, false) // shutting down during the backoff
		}
		if claim, err = svc.Restart(ctx, claim, e.cfg.Lease); err != nil {
			if errors.Is(err, runs.ErrLeaseLost) {
				return nil
			}
			return err
		}
		held.renew(e.cfg.Lease)
	}
}

// lease is what a worker knows of its claim's lease: when it runs out, as
// last renewed. After that, the rescue of another process may have taken
// the step.
type lease struct{ until atomic.Int64 }

// renew notes that the lease was just renewed for d.
func (l *lease) renew(d time.Duration) { l.until.Store(time.Now().Add(d).UnixNano()) }

// left is how long the lease lasts from now.
func (l *lease) left() time.Duration { return time.Until(time.Unix(0, l.until.Load())) }

// Backoff of a worker that keeps an attempt's outcome while the database is
// unavailable.
const (
	recordRetryFirst = 50 * time.Millisecond
	recordRetryMax   = 2 * time.Second
)

// recordThrough records an attempt's outcome like record. While the
// database is unavailable it keeps the outcome in memory and tries again
// (see throughOutage): a step whose provider call finished during a
// database restart or a network blip is recorded once when the database
// answers, not executed again after its lease runs out. The recording
// transaction checks the lease, so a step that another process took over
// meanwhile discards this late outcome (ErrLeaseLost), and a commit that
// went through although its answer was lost is found already recorded the
// same way.
func (e *Engine) recordThrough(ctx context.Context, claim runs.Claim, held *lease, res result, execErr, cause error) (outcome, error) {
	var o outcome
	err := e.throughOutage(ctx, claim, held, func() (err error) {
		o, err = e.record(ctx, claim, res, execErr, cause)
		return err
	})
	return o, err
}

// throughOutage calls try until it does not fail for the database being
// unavailable, waiting between tries (backoff with jitter) and renewing the
// claim's lease, for as long as the lease lasts. It returns try's last
// error, or ErrLeaseLost when the step was taken over meanwhile. A worker
// that is stopping keeps trying through its grace period; only the hard
// stop after it gives up.
func (e *Engine) throughOutage(ctx context.Context, claim runs.Claim, held *lease, try func() error) error {
	wait := recordRetryFirst
	// Heartbeats that get through extend the lease; this keeps a try that
	// alone keeps failing from going on without end.
	giveUp := time.Now().Add(2 * e.cfg.Lease)
	for {
		err := try()
		if !e.stepsOutage.Observe(err) || held.left() <= wait || time.Now().After(giveUp) {
			return err
		}
		timer := time.NewTimer(wait/2 + rand.N(wait/2+1))
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop() // stopped for good: the step is retried once its lease runs out
			return err
		}
		wait = min(2*wait, recordRetryMax)
		beat, stop := context.WithTimeout(context.WithoutCancel(ctx), recordRetryMax)
		err = e.cfg.Runs.Heartbeat(beat, claim, e.cfg.Lease)
		stop()
		switch {
		case errors.Is(err, runs.ErrLeaseLost):
			return runs.ErrLeaseLost
		case err == nil:
			held.renew(e.cfg.Lease)
		}
	}
}

// maxBeforeCallTries is how many times in a row an attempt that found the
// database away before its call is tried again in place; after that the
// step goes back to the queue.
const maxBeforeCallTries = 10

// afterOutageBeforeCall is what a worker does after an attempt found the
// database away before its provider call: it waits (a backoff that grows
// with *tries, renewing the lease) until the database answers, and says to
// try again (true). When the lease runs low, tries run out or the worker is
// stopping, it gives the step back without counting the attempt, or, if the
// database does not answer even to that, returns the error: the lease then
// runs out and the step is retried.
func (e *Engine) afterOutageBeforeCall(ctx context.Context, claim runs.Claim, held *lease, tries *int) (bool, error) {
	*tries++
	beat := func() error {
		beatCtx, stop := context.WithTimeout(context.WithoutCancel(ctx), recordRetryMax)
		defer stop()
		return e.cfg.Runs.Heartbeat(beatCtx, claim, e.cfg.Lease)
	}
	if *tries <= maxBeforeCallTries && ctx.Err() == nil {
		wait := min(recordRetryFirst<<(*tries-1), recordRetryMax)
		timer := time.NewTimer(wait/2 + rand.N(wait/2+1))
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
		}
		if ctx.Err() == nil {
			err := e.throughOutage(ctx, claim, held, beat)
			switch {
			case err == nil:
				held.renew(e.cfg.Lease) // the heartbeat that got through
				return true, nil
			case errors.Is(err, runs.ErrLeaseLost):
				return false, nil // cancelled or taken over meanwhile
			}
		}
	}
	rec, stop := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer stop()
	err := e.throughOutage(ctx, claim, held, func() error { return e.cfg.Runs.Release(rec, claim, true) })
	if errors.Is(err, runs.ErrLeaseLost) {
		return false, nil
	}
	return false, err
}

// errBeforeCall is the database being unavailable to the checks before a
// provider call (the team's key, its plan and spend): no call was made, so
// the attempt is tried again once the database answers, without counting.
type errBeforeCall struct{ err error }

func (e *errBeforeCall) Error() string {
	return "the database was unavailable before the provider call: " + e.err.Error()
}
func (e *errBeforeCall) Unwrap() error { return e.err }

// outcome is what recording an attempt left the worker with: a backoff to
// hold the step through (kept), or a next step to run (took), or nothing.
type outcome struct {
	delay time.Duration
	kept  bool
	next  runs.Claim
	took  bool
}

// record records an attempt's outcome, even when the worker is stopping.
// A success goes on with a step it readied unless the worker is stopping.
func (e *Engine) record(ctx context.Context, claim runs.Claim, res result, execErr, cause error) (outcome, error) {
	svc := e.cfg.Runs
	rec, stop := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer stop()
	var (
		o   outcome
		err error
	)
	until, circuitOpen := ai.IsCircuitOpen(execErr)
	switch {
	case execErr == nil:
		var u runs.Usage
		if u, err = e.usage(rec, res); err != nil {
			return o, err
		}
		success := runs.Success{Claim: claim, Output: res.output, Usage: u}
		if ctx.Err() == nil && !e.stopping.Load() {
			success.Lease = e.cfg.Lease // go on with a step it readies
		}
		r := e.successes.do(success)
		o.next, o.took, err = r.Next, r.Took, r.Err
		if err == nil && u.CostMicros > 0 && !u.OwnKey {
			e.allowances.Invalidate(claim.Run.TeamID) // the team spent: its next call here reads its allowance again
		}
	case errors.Is(cause, errLeaseLost):
		return o, runs.ErrLeaseLost // cancelled: the canceller recorded it
	case ctx.Err() != nil:
		err = svc.Release(rec, claim, true) // shutting down
	case errors.Is(execErr, errSpendLimit):
		err = svc.WaitForSpend(rec, claim) // no call was made: wait for the limit to lift
	case circuitOpen:
		// Wait for the provider instead of burning attempts.
		if soon := time.Now().Add(time.Second); until.Before(soon) {
			until = soon
		}
		err = svc.Snooze(rec, claim, circuitWait(execErr, until))
	case errors.Is(cause, errStepTimeout):
		o.delay, o.kept, err = svc.Fail(rec, claim, runs.Failure{Err: errStepTimeout, Retryable: true, TimedOut: true}, holdBackoff)
	default:
		o.delay, o.kept, err = svc.Fail(rec, claim, runs.Failure{Err: execErr, Retryable: ai.Retryable(execErr), RetryAfter: ai.RetryAfter(execErr)}, holdBackoff)
	}
	return o, err
}

// result is what a successful attempt produced, and which model did.
type result struct {
	output   string
	usage    ai.Usage
	provider string // empty for text steps
	model    string
	fallback bool // a fallback answered, not the step's own provider
	ownKey   bool // on the team's own key
}

// usage prices an attempt's tokens with the price of the model that
// answered.
func (e *Engine) usage(ctx context.Context, r result) (runs.Usage, error) {
	out := runs.Usage{InputTokens: int64(r.usage.InputTokens), OutputTokens: int64(r.usage.OutputTokens), OwnKey: r.ownKey}
	if r.fallback {
		out.ServedBy = r.provider + "/" + r.model
	}
	if r.provider == "" {
		return out, nil
	}
	price, _, err := e.prices.Lookup(ctx, e.cfg.DB, r.provider, r.model)
	if err != nil {
		return out, err
	}
	out.CostMicros = price.Cost(out.InputTokens, out.OutputTokens)
	return out, nil
}

// circuitWait describes the open circuit that refused a step's call, for
// the run page and for the step's patience.
func circuitWait(err error, until time.Time) runs.Wait {
	w := runs.Wait{Until: until, Provider: "The provider", Reason: "The provider is unavailable"}
	var open *ai.CircuitOpenError
	if errors.As(err, &open) {
		w.Provider, w.Circuit, w.LastError = open.Provider, open.Key.Encode(), open.LastError
		w.Reason = fmt.Sprintf("The %s circuit is open until %s after repeated failures", open.Provider, until.UTC().Format("15:04:05 UTC"))
		if open.LastError != "" {
			w.Reason += " (last error: " + open.LastError + ")"
		}
	}
	return w
}

// attempt runs one attempt of a claimed step under its timeout, renewing
// the lease while it runs. cause says why the attempt's context ended.
func (e *Engine) attempt(ctx context.Context, claim runs.Claim, held *lease) (result, error, error) {
	attemptCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	attemptCtx, cancelTimeout := context.WithTimeoutCause(attemptCtx, claim.Step.Timeout(), errStepTimeout)
	defer cancelTimeout()
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		if claim.Step.Kind == plan.KindLLM { // text steps finish at once
			e.watch(attemptCtx, claim, cancel, held)
		}
	}()
	res, err := e.execute(attemptCtx, claim)
	cause := context.Cause(attemptCtx)
	cancel(nil)
	<-watchDone
	return res, err, cause
}

// hold waits out a short backoff while keeping the step's lease. It
// returns errLeaseLost when the step is cancelled meanwhile, and ctx's
// error when the worker is stopping.
func (e *Engine) hold(ctx context.Context, claim runs.Claim, delay time.Duration, held *lease) error {
	holdCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := time.NewTimer(delay)
	defer timer.Stop()
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		e.watch(holdCtx, claim, cancel, held)
	}()
	defer func() { cancel(nil); <-watchDone }()
	select {
	case <-timer.C:
		return nil
	case <-holdCtx.Done():
		if cause := context.Cause(holdCtx); errors.Is(cause, errLeaseLost) {
			return errLeaseLost
		}
		return ctx.Err()
	}
}

// watch renews the claim's lease while the attempt runs and stops the
// attempt as soon as the step is cancelled: on each heartbeat, and at once
// when the run announces a change. While the database is unavailable the
// attempt goes on; the lease is renewed at the next heartbeat that reaches
// it.
func (e *Engine) watch(ctx context.Context, claim runs.Claim, stop context.CancelCauseFunc, held *lease) {
	var changes <-chan live.Message
	if e.cfg.Broker != nil {
		ch, unsubscribe := e.cfg.Broker.Subscribe(claim.Run.ID)
		defer unsubscribe()
		changes = ch
	}
	tick := time.NewTicker(e.cfg.Lease / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-changes:
			if !mayEndClaim(m) {
				continue
			}
		case <-tick.C:
		}
		err := e.cfg.Runs.Heartbeat(ctx, claim, e.cfg.Lease)
		switch {
		case errors.Is(err, runs.ErrLeaseLost):
			stop(errLeaseLost)
			return
		case err == nil:
			held.renew(e.cfg.Lease)
			e.stepsOutage.Observe(nil)
		case ctx.Err() == nil && !e.stepsOutage.Observe(err):
			e.cfg.Log.Warn("step heartbeat", "step_id", claim.Step.ID, "error", err)
		}
	}
}

// mayEndClaim reports whether a message about a claim's run may mean that
// the claim was cancelled, so that its worker looks at once rather than at
// its next heartbeat: a change that leaves the run running was another
// step's, or the claim's own. A step taken over once its lease ran out
// (the worker could not renew it) leaves the run running too: its worker
// finds out at its next heartbeat, up to a third of the lease later, and
// its late success is refused.
func mayEndClaim(m live.Message) bool {
	return m.Kind == live.KindChanged && m.Status != runs.RunRunning
}

// execute runs one attempt of a step of kind text or llm. An llm step tries
// its own provider, then its fallbacks in order while the one before is
// unavailable (its circuit is open, or it failed retryably after its
// retries).
func (e *Engine) execute(ctx context.Context, claim runs.Claim) (result, error) {
	step := claim.Step
	if step.Kind == plan.KindText {
		return result{output: claim.Prompt}, nil
	}
	candidates := append([]plan.Fallback{{Provider: step.Provider, Model: step.Model}}, step.Fallbacks()...)
	var (
		lastErr   error
		spendHeld bool      // a candidate on the instance's key is past the spend limit
		reopenAt  time.Time // the soonest an open circuit half-opens
		allOpen   = true
		primary   *ai.CircuitOpenError // the step's own provider's refusal
	)
	for i, cand := range candidates {
		options := step.Options()
		if i > 0 {
			options = nil // options belong to the step's own provider
		}
		r, streamed, err := e.call(ctx, claim, cand, options)
		if err == nil {
			r.fallback = i > 0
			return r, nil
		}
		if errors.Is(err, errSpendLimit) {
			// No call was made: a fallback on the team's own key may run.
			spendHeld, allOpen = true, false
			continue
		}
		if _, before := errors.AsType[*errBeforeCall](err); before {
			return result{}, err // the database is away: no fallback can run either
		}
		lastErr = err
		if until, open := ai.IsCircuitOpen(err); open {
			if reopenAt.IsZero() || until.Before(reopenAt) {
				reopenAt = until
			}
			if i == 0 {
				primary, _ = errors.AsType[*ai.CircuitOpenError](err)
			}
			continue
		}
		allOpen = false
		if streamed || ctx.Err() != nil || !ai.Retryable(err) {
			return result{}, err // text already reached the page, or trying elsewhere cannot help
		}
	}
	if spendHeld {
		return result{}, errSpendLimit // wait for the limit rather than fail
	}
	if allOpen && len(candidates) > 1 {
		open := &ai.CircuitOpenError{Provider: step.Provider, Until: reopenAt}
		if primary != nil {
			open.Key, open.LastError = primary.Key, primary.LastError
		}
		return result{}, open
	}
	return result{}, lastErr
}

// call makes one call to one provider and model, streaming text to the
// run's watchers; streamed says whether any text went out.
func (e *Engine) call(ctx context.Context, claim runs.Claim, cand plan.Fallback, options map[string]any) (r result, streamed bool, err error) {
	provider, ok := e.cfg.Providers.Get(cand.Provider)
	if !ok {
		return result{}, false, fmt.Errorf("unknown provider %q", cand.Provider)
	}
	var key string
	if e.cfg.Keys != nil {
		if key, err = e.cfg.Keys.Resolve(ctx, claim.Run.TeamID, cand.Provider); db.Unavailable(err) {
			return result{}, false, &errBeforeCall{err}
		} else if err != nil {
			return result{}, false, err
		}
	}
	if key == "" {
		if err := e.mayUseInstanceKey(ctx, claim.Run.TeamID, cand.Provider); db.Unavailable(err) {
			return result{}, false, &errBeforeCall{err}
		} else if err != nil {
			return result{}, false, err
		}
	}
	var (
		pending  strings.Builder
		started  = time.Now()
		lastSent time.Time
	)
	flush := func() {
		if pending.Len() == 0 || e.cfg.Broker == nil {
			return
		}
		e.cfg.Broker.Publish(ctx, live.Message{RunID: claim.Run.ID, Kind: live.KindDelta, Step: claim.Step.Name, Text: pending.String()})
		pending.Reset()
		lastSent = time.Now()
	}
	onDelta := func(text string) {
		pending.WriteString(text)
		now := time.Now()
		if !streamed && now.Sub(started) < deltaEvery {
			return // short streams are seen whole when the step finishes
		}
		streamed = true
		if now.Sub(lastSent) >= deltaEvery {
			flush()
		}
	}
	res, err := provider.Stream(ctx, ai.Request{Model: cand.Model, Prompt: claim.Prompt, Options: options, APIKey: key, TeamID: claim.Run.TeamID}, onDelta)
	if errors.Is(err, ai.ErrNoAPIKey) {
		return result{}, streamed, fmt.Errorf("no API key for %s: set the instance's key (%s) or add a team key in the team settings",
			cand.Provider, instanceKeyVar(cand.Provider))
	}
	if err != nil {
		return result{}, streamed, err
	}
	if streamed {
		flush()
	}
	return result{output: res.Text, usage: res.Usage, provider: cand.Provider, model: cand.Model, ownKey: key != ""}, streamed, nil
}

// mayUseInstanceKey checks, before a call on the instance's key for
// provider, that team teamID's plan allows it: errSpendLimit when its model
// spend reached the plan's limit (the step waits, see WaitForSpend), and a
// step error when the plan does not include the instance's keys. The
// simulated provider needs no key, but its spend counts like any other.
func (e *Engine) mayUseInstanceKey(ctx context.Context, teamID int64, provider string) error {
	al, ok := e.allowances.Get(teamID)
	if !ok || al.SpendReached || !al.InstanceKeys { // a refusal is worth a fresh look: the plan may have changed
		var err error
		al, err = billing.AllowanceOf(ctx, e.cfg.DB.Reader(), teamID)
		if errors.Is(err, db.ErrNotFound) {
			return nil // the team was deleted: the step's record says so
		}
		if err != nil {
			return err
		}
		e.allowances.Set(teamID, al, allowanceFor)
	}
	if !al.InstanceKeys && provider != ai.SimulatedName {
		return fmt.Errorf("the team's %s plan does not include the instance's %s key: add the team's own key on the team's Providers page",
			al.Plan.Name, provider)
	}
	if al.SpendReached {
		return errSpendLimit
	}
	return nil
}

// instanceKeyVar names the environment variable of a provider's key.
func instanceKeyVar(provider string) string {
	switch provider {
	case ai.AnthropicName:
		return "ANTHROPIC_API_KEY"
	case ai.OpenAIName:
		return "OPENAI_API_KEY"
	}
	return "its API key"
}
