// Command nofx-bench measures how many steps per second the engine runs end
// to end, next to River's own rate for no-op jobs on the same database, and
// prints the ratio. It runs on SQLite, and on PostgreSQL when
// NOFX_BENCH_DATABASE_URL (or NOFX_TEST_DATABASE_URL) is set.
//
// Against a real `nofx serve` (built from ./cmd/nofx, or -nofx) and only
// through its HTTP API, it also measures the latency scenario (2,000 one-step
// runs at 1 s simulated latency from 16 clients: wall time, runs created per
// second, peak resident set) and the hand-off latency of a chain of five
// text steps. -scenario picks among engine, latency and handoff.
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/ai"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/engine"
	"github.com/nofxhq/nofx/internal/live"
	"github.com/nofxhq/nofx/internal/plan"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/teams"
)

func main() {
	n := flag.Int("n", 10000, "runs (and no-op jobs) per measurement")
	workers := flag.Int("workers", 100, "workers, for River and for the engine")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the engine on PostgreSQL to this file")
	only := flag.String("only", "", "measure only this database: sqlite or postgres")
	scenario := flag.String("scenario", "engine,latency,handoff", "comma-separated scenarios to run: engine, latency, handoff")
	var o httpOptions
	flag.IntVar(&o.latencyRuns, "latency-runs", 2000, "runs of the latency scenario")
	flag.IntVar(&o.clients, "clients", 16, "concurrent HTTP clients creating the latency scenario's runs")
	flag.IntVar(&o.handoffRuns, "handoff-runs", 50, "runs of each kind in the hand-off scenario")
	flag.StringVar(&o.nofx, "nofx", "", "nofx binary for the HTTP scenarios (default: go build ./cmd/nofx into a temporary directory)")
	flag.StringVar(&o.goCmd, "go", "go", "go command that builds nofx")
	flag.Parse()
	want := map[string]bool{}
	for _, sc := range strings.Split(*scenario, ",") {
		switch sc = strings.TrimSpace(sc); sc {
		case "engine", "latency", "handoff":
			want[sc] = true
		default:
			fmt.Fprintf(os.Stderr, "nofx-bench: unknown scenario %q (use engine, latency, handoff)\n", sc)
			os.Exit(2)
		}
	}
	o.latency, o.handoff = want["latency"], want["handoff"]
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "nofx-bench:", err)
			os.Exit(1)
		}
		profile = f
	}
	if want["engine"] {
		if err := run(*n, *workers, *only); err != nil {
			fmt.Fprintln(os.Stderr, "nofx-bench:", err)
			os.Exit(1)
		}
	}
	if o.latency || o.handoff {
		if err := runHTTP(context.Background(), o, postgresBase(), *only); err != nil {
			fmt.Fprintln(os.Stderr, "nofx-bench:", err)
			os.Exit(1)
		}
	}
}

// postgresBase is the PostgreSQL URL to measure on, or "".
func postgresBase() string {
	if base := os.Getenv("NOFX_BENCH_DATABASE_URL"); base != "" {
		return base
	}
	return os.Getenv("NOFX_TEST_DATABASE_URL")
}

// profile, when set, receives a CPU profile of the engine on PostgreSQL.
var profile *os.File

func run(n, workers int, only string) error {
	ctx := context.Background()
	fmt.Printf("%d one-step runs (simulated provider, zero latency) vs %d River no-op jobs, %d workers\n\n", n, n, workers)
	fmt.Printf("%-10s %14s %16s %22s %22s %8s %8s\n", "database", "create runs/s", "engine steps/s", "River jobs/s (plain)", "River jobs/s (NOFX's)", "ratio", "ratio'")

	dir, err := os.MkdirTemp("", "nofx-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// Each database gets three fresh ones: River on a plain pool, River on
	// NOFX's pool, and NOFX's engine.
	type target struct{ name, plain, own, nofx string }
	targets := []target{{"sqlite", "sqlite://" + filepath.Join(dir, "river.db"),
		"sqlite://" + filepath.Join(dir, "river-own.db"), "sqlite://" + filepath.Join(dir, "nofx.db")}}
	base := postgresBase()
	if base != "" {
		t := target{name: "postgres"}
		for _, u := range []*string{&t.plain, &t.own, &t.nofx} {
			var clean func()
			if *u, clean, err = freshSchema(base); err != nil {
				return err
			}
			defer clean()
		}
		targets = append(targets, t)
	}
	for _, t := range targets {
		if only != "" && t.name != only {
			continue
		}
		plainRate, err := measureRiver(ctx, t.plain, n, workers, true)
		if err != nil {
			return fmt.Errorf("%s river: %w", t.name, err)
		}
		ownRate, err := measureRiver(ctx, t.own, n, workers, false)
		if err != nil {
			return fmt.Errorf("%s river: %w", t.name, err)
		}
		createRate, stepRate, err := measureEngine(ctx, t.nofx, n, workers)
		if err != nil {
			return fmt.Errorf("%s engine: %w", t.name, err)
		}
		fmt.Printf("%-10s %14.0f %16.0f %22.0f %22.0f %8.2f %8.2f\n", t.name, createRate, stepRate, plainRate, ownRate, stepRate/plainRate, stepRate/ownRate)
	}
	fmt.Println("\n(ratio: engine steps/s over River's rate on a plain pool; ratio': over River's on NOFX's pool)")
	if base == "" {
		fmt.Println("\n(set NOFX_BENCH_DATABASE_URL=postgres://... to measure PostgreSQL too)")
	}
	return nil
}

// plainPool opens the database at rawURL as a plain database/sql pool, with
// the settings NOFX gives its own (one writer and WAL on SQLite).
func plainPool(rawURL string) (*sql.DB, error) {
	if path, ok := strings.CutPrefix(rawURL, "sqlite://"); ok {
		pool, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate")
		if err == nil {
			pool.SetMaxOpenConns(1)
		}
		return pool, err
	}
	pool, err := sql.Open("postgres", rawURL)
	if err == nil {
		pool.SetMaxOpenConns(25)
		pool.SetMaxIdleConns(25)
	}
	return pool, err
}

// freshSchema makes an empty schema on the database at base and returns a
// URL that uses it, and a function that drops it.
func freshSchema(base string) (string, func(), error) {
	admin, err := sql.Open("postgres", base)
	if err != nil {
		return "", nil, err
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "bench_" + hex.EncodeToString(b)
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		admin.Close()
		return "", nil, err
	}
	u, err := url.Parse(base)
	if err != nil {
		admin.Close()
		return "", nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), func() {
		_, _ = admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		admin.Close()
	}, nil
}

// waitFor polls a count every 200ms until it reaches n, and returns when
// the last of them finished, as the database recorded it (last): the time
// does not depend on how often the bench looks, and looking seldom keeps
// the bench's own queries (a count over every run is 3 ms on PostgreSQL
// with 10,000) from slowing what it measures.
func waitFor(ctx context.Context, d *db.DB, count, last string, n int, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		var done int
		if err := db.Get(ctx, d, &done, count); err != nil {
			return time.Time{}, err
		}
		if done >= n {
			var end db.NullTime
			if err := db.Get(ctx, d, &end, last); err != nil {
				return time.Time{}, err
			}
			if !end.Valid {
				return time.Time{}, fmt.Errorf("%d done, but no finishing time", done)
			}
			return end.Time, nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("only %d of %d done after %s", done, n, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type noopArgs struct{}

func (noopArgs) Kind() string { return "bench_noop" }

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
}

func (noopWorker) Work(context.Context, *river.Job[noopArgs]) error { return nil }

// measureRiver inserts n no-op jobs, then times River working them all:
// on NOFX's own pool (whose connections keep River's statements prepared)
// or, with plain, on a database/sql pool as River's documentation opens
// one, River as it ships.
func measureRiver(ctx context.Context, rawURL string, n, workers int, plain bool) (float64, error) {
	d, err := db.Open(ctx, rawURL)
	if err != nil {
		return 0, err
	}
	defer d.Close()
	if _, err := d.Migrate(ctx); err != nil {
		return 0, err
	}
	ws := river.NewWorkers()
	river.AddWorker(ws, &noopWorker{})
	cfg := &river.Config{
		Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: workers}},
		Workers:           ws,
		FetchPollInterval: 100 * time.Millisecond,
		FetchCooldown:     20 * time.Millisecond,
	}
	pool := d.DB.DB
	if plain {
		if pool, err = plainPool(rawURL); err != nil {
			return 0, err
		}
		defer pool.Close()
	}
	var client *river.Client[*sql.Tx]
	if d.Dialect == db.Postgres {
		client, err = river.NewClient(riverdatabasesql.New(pool), cfg)
	} else {
		client, err = river.NewClient(riversqlite.New(pool), cfg)
	}
	if err != nil {
		return 0, err
	}
	for start := 0; start < n; start += 1000 {
		batch := make([]river.InsertManyParams, min(1000, n-start))
		for i := range batch {
			batch[i] = river.InsertManyParams{Args: noopArgs{}}
		}
		if _, err := client.InsertMany(ctx, batch); err != nil {
			return 0, err
		}
	}
	began := time.Now()
	if err := client.Start(ctx); err != nil {
		return 0, err
	}
	defer client.Stop(ctx) //nolint:errcheck // best effort at the end of a measurement
	end, err := waitFor(ctx, d, `SELECT COUNT(*) FROM river_job WHERE state = 'completed'`,
		`SELECT MAX(finalized_at) FROM river_job WHERE state = 'completed'`, n, 10*time.Minute)
	if err != nil {
		return 0, err
	}
	return float64(n) / end.Sub(began).Seconds(), nil
}

// measureEngine creates n one-step runs (timed on their own), then times
// the engine running them all to success.
func measureEngine(ctx context.Context, rawURL string, n, workers int) (createRate, stepRate float64, err error) {
	d, err := db.Open(ctx, rawURL)
	if err != nil {
		return 0, 0, err
	}
	defer d.Close()
	if _, err := d.Migrate(ctx); err != nil {
		return 0, 0, err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	broker := live.NewLocal()
	providers := ai.NewRegistry(ai.NewSimulated(1))
	svc := &runs.Service{DB: d, Broker: broker, Providers: providers}
	eng, err := engine.New(engine.Config{DB: d, Runs: svc, Providers: providers, Broker: broker, Log: log, Workers: workers})
	if err != nil {
		return 0, 0, err
	}
	svc.Scheduler = eng

	user, team, err := (&auth.Service{DB: d}).SignUp(ctx, auth.SignUp{Email: "bench@example.com", Password: "benchmark password"})
	if err != nil {
		return 0, 0, err
	}
	// The engine under the instance's limits, not a plan's: 10,000 runs are
	// past the free plan's month.
	if _, err := db.Exec(ctx, d, `UPDATE teams SET plan = 'enterprise' WHERE id = ?`, team.ID); err != nil {
		return 0, 0, err
	}
	actor := access.Actor{UserID: user.ID, TeamID: team.ID, Role: teams.RoleOwner}
	plan := plan.Plan{Goal: "bench", Steps: []plan.StepSpec{{Name: "step", Kind: plan.KindLLM, Provider: "simulated", Model: "echo", Prompt: "benchmark"}}}

	began := time.Now()
	for range n {
		if _, _, err := svc.Create(ctx, actor, runs.CreateInput{Plan: plan}); err != nil {
			return 0, 0, err
		}
	}
	createRate = float64(n) / time.Since(began).Seconds()

	fmt.Fprintf(os.Stderr, "%s: created %d runs; working them\n", d.Dialect, n)
	if profile != nil && d.Dialect == db.Postgres {
		if err := pprof.StartCPUProfile(profile); err != nil {
			return 0, 0, err
		}
		defer pprof.StopCPUProfile()
	}
	began = time.Now()
	if err := eng.Start(ctx); err != nil {
		return 0, 0, err
	}
	defer eng.Stop(ctx) //nolint:errcheck // best effort at the end of a measurement
	end, err := waitFor(ctx, d, `SELECT COUNT(*) FROM runs WHERE status = 'succeeded'`,
		`SELECT MAX(finished_at) FROM runs WHERE status = 'succeeded'`, n, 10*time.Minute)
	if err != nil {
		return 0, 0, err
	}
	return createRate, float64(n) / end.Sub(began).Seconds(), nil
}
