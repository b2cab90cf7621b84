package main

// The scenarios in this file run against a real `nofx serve` process and
// reach it only through the public HTTP API with a Bearer key.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const benchPassword = "benchmark password"

// server is a running `nofx serve` with users, each in a team of their own,
// and an API key for each.
type server struct {
	cmd  *exec.Cmd
	base string
	keys []string // one per team; the first is the key of do
	http *http.Client
	log  string // path of the server's output
	done chan struct{}
}

// buildNofx builds the nofx binary into dir and returns its path.
func buildNofx(goCmd, dir string) (string, error) {
	bin := filepath.Join(dir, "nofx")
	cmd := exec.Command(goCmd, "build", "-o", bin, "./cmd/nofx")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/nofx: %w", err)
	}
	return bin, nil
}

// freePort returns a TCP address on 127.0.0.1 that was free a moment ago.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startServer lifts the free plan's limits and creates a user and a key per
// team with the CLI, then starts `nofx serve` with env (over a temporary data
// directory, a free port and the rate limits off) and waits until it answers.
func startServer(bin, databaseURL string, env map[string]string, clients, teams int) (*server, error) {
	dir, err := os.MkdirTemp("", "nofx-bench-serve")
	if err != nil {
		return nil, err
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	full := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"NOFX_DATA_DIR=" + dir,
		"NOFX_ADDR=" + addr,
		"NOFX_RATE_GENERAL=off",
		"NOFX_RATE_EXPENSIVE=off",
	}
	if databaseURL != "" {
		full = append(full, "NOFX_DATABASE_URL="+databaseURL)
	}
	for k, v := range env {
		full = append(full, k+"="+v)
	}
	cli := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = full
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("nofx %s: %w: %s", strings.Join(args, " "), err, errOut.String())
		}
		return out.String(), nil
	}
	// The bench measures the engine and the API with the instance's own
	// limits (NOFX_TEAM_CONCURRENCY and the rest), not a plan's: the teams'
	// plan limits nothing.
	if _, err := cli("plans", "set", "free", "--runs", "-1", "--spend", "-1", "--concurrency", "-1", "--members", "-1",
		"--api-per-minute", "-1"); err != nil {
		return nil, err
	}
	var keys []string
	for i := range teams {
		email := fmt.Sprintf("bench%d@example.com", i)
		if _, err := cli("users", "create", "--email", email, "--password", benchPassword); err != nil {
			return nil, err
		}
		key, err := cli("tokens", "create", "--email", email)
		if err != nil {
			return nil, err
		}
		keys = append(keys, strings.TrimSpace(key))
	}
	logPath := filepath.Join(dir, "serve.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve")
	cmd.Env = full
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	s := &server{
		cmd:  cmd,
		base: "http://" + addr,
		keys: keys,
		http: &http.Client{
			Timeout:   60 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: clients + 4, MaxConnsPerHost: clients + 4},
		},
		log:  logPath,
		done: make(chan struct{}),
	}
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(s.done)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var me map[string]any
		if err := s.do(http.MethodGet, "/api/v1/me", nil, http.StatusOK, &me); err == nil {
			return s, nil
		} else if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("nofx serve did not answer within 60s: %w (log %s)", err, logPath)
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("nofx serve exited; log %s:\n%s", logPath, tail(logPath))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop ends the server: SIGTERM, then SIGKILL after 15 s, and removes its
// data directory.
func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.http.CloseIdleConnections()
	_ = os.RemoveAll(filepath.Dir(s.log))
}

// tail returns the last lines of a file, for errors.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-20):], "\n")
}

// peakRSS returns the server's peak resident set (VmHWM), in bytes.
func (s *server) peakRSS() (int64, error) { return s.status("VmHWM") }

// rss is the server's resident set now.
func (s *server) rss() (int64, error) { return s.status("VmRSS") }

// status reads a size in kB from the server's /proc/PID/status.
func (s *server) status(field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/PID/status", field)
}

// do sends one API request with the first team's key and decodes the
// answer into out.
func (s *server) do(method, path string, body []byte, want int, out any) error {
	return s.doAs(s.keys[0], method, path, body, want, out)
}

// doAs is do with another team's key.
func (s *server) doAs(key, method, path string, body []byte, want int, out any) error {
	req, err := http.NewRequest(method, s.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := s.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, bytes.TrimSpace(b))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

// apiRun is the part of the API's run JSON the bench reads.
type apiRun struct {
	ID         int64      `json:"id"`
	Status     string     `json:"status"`
	CreatedAt  time.Time  `json:"created_at"`
	FinishedAt *time.Time `json:"finished_at"`
}

type apiRunList struct {
	Runs       []apiRun `json:"runs"`
	NextBefore int64    `json:"next_before"`
}

// latencyResult is one run of the latency scenario.
type latencyResult struct {
	wall, create time.Duration
	createRate   float64
	peakRSS      int64
	succeeded    int
}

// latencyPlan is a one-step run on the simulated provider at 1 s latency.
const latencyPlan = `{"plan":{"goal":"g","steps":[{"name":"s","kind":"llm","provider":"simulated","model":"echo","prompt":"x","options":{"latency_ms":1000}}]}}`

// measureLatency creates n runs of latencyPlan through POST /api/v1/runs
// from clients concurrent clients, client i in team i mod the server's
// teams, waits until no team has a run queued, running or waiting (polling
// each team's runs list every 100 ms, one row per status), and returns the
// wall time from the first request to the last finished_at the API reports
// (the server runs on the same clock).
func measureLatency(s *server, n, clients int) (latencyResult, error) {
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		errMu sync.Mutex
		first error
	)
	began := time.Now()
	for i := range clients {
		key := s.keys[i%len(s.keys)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if err := s.doAs(key, http.MethodPost, "/api/v1/runs", []byte(latencyPlan), http.StatusCreated, nil); err != nil {
					errMu.Lock()
					if first == nil {
						first = err
					}
					errMu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	created := time.Since(began)
	if first != nil {
		return latencyResult{}, first
	}
	fmt.Fprintf(os.Stderr, "created %d runs through HTTP in %s; waiting for them\n", n, created.Round(time.Millisecond))
	deadline := time.Now().Add(10 * time.Minute)
	open := slices.Clone(s.keys) // the teams that may still have open runs
	for len(open) > 0 {
		var still []string
		for _, key := range open {
			busy, err := s.hasOpenRuns(key)
			if err != nil {
				return latencyResult{}, err
			}
			if busy {
				still = append(still, key)
			}
		}
		if open = still; len(open) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return latencyResult{}, errors.New("runs still open after 10 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
	peak, err := s.peakRSS()
	if err != nil {
		return latencyResult{}, err
	}
	// After the measurement: read every run once for the last finish and
	// the count that succeeded.
	var last time.Time
	succeeded, total := 0, 0
	for _, key := range s.keys {
		before := int64(0)
		for {
			path := "/api/v1/runs?limit=200"
			if before != 0 {
				path += "&before=" + strconv.FormatInt(before, 10)
			}
			var page apiRunList
			if err := s.doAs(key, http.MethodGet, path, nil, http.StatusOK, &page); err != nil {
				return latencyResult{}, err
			}
			for _, r := range page.Runs {
				total++
				if r.Status == "succeeded" {
					succeeded++
				}
				if r.FinishedAt != nil && r.FinishedAt.After(last) {
					last = *r.FinishedAt
				}
			}
			if page.NextBefore == 0 {
				break
			}
			before = page.NextBefore
		}
	}
	if total != n {
		return latencyResult{}, fmt.Errorf("the API lists %d runs, want %d", total, n)
	}
	return latencyResult{
		wall:       last.Sub(began),
		create:     created,
		createRate: float64(n) / created.Seconds(),
		peakRSS:    peak,
		succeeded:  succeeded,
	}, nil
}

// hasOpenRuns reports whether key's team has a run queued, running or
// waiting.
func (s *server) hasOpenRuns(key string) (bool, error) {
	for _, status := range []string{"queued", "running", "waiting"} {
		var page apiRunList
		if err := s.doAs(key, http.MethodGet, "/api/v1/runs?limit=1&status="+status, nil, http.StatusOK, &page); err != nil {
			return false, err
		}
		if len(page.Runs) > 0 {
			return true, nil
		}
	}
	return false, nil
}

// chainPlan is a run of steps text steps, each needing the one before.
func chainPlan(steps int) []byte {
	type step struct {
		Name   string   `json:"name"`
		Kind   string   `json:"kind"`
		Prompt string   `json:"prompt"`
		Needs  []string `json:"needs,omitempty"`
	}
	var plan struct {
		Plan struct {
			Goal  string `json:"goal"`
			Steps []step `json:"steps"`
		} `json:"plan"`
	}
	plan.Plan.Goal = "hand-off"
	for i := range steps {
		st := step{Name: fmt.Sprintf("s%d", i+1), Kind: "text", Prompt: "x"}
		if i > 0 {
			st.Needs = []string{fmt.Sprintf("s%d", i)}
		}
		plan.Plan.Steps = append(plan.Plan.Steps, st)
	}
	b, _ := json.Marshal(plan)
	return b
}

// measureHandoff creates n runs of a chain of steps text steps one after
// another through the API, each after the one before finished, and returns
// the median of finished_at − created_at as the API reports them (server
// time, so the client's 5 ms polling of GET /api/v1/runs/{id} adds nothing
// but its load).
func measureHandoff(s *server, n, steps int) (time.Duration, error) {
	body := chainPlan(steps)
	times := make([]time.Duration, 0, n)
	for range n {
		var run apiRun
		if err := s.do(http.MethodPost, "/api/v1/runs", body, http.StatusCreated, &run); err != nil {
			return 0, err
		}
		deadline := time.Now().Add(time.Minute)
		for run.FinishedAt == nil {
			if time.Now().After(deadline) {
				return 0, fmt.Errorf("run %d not finished after a minute (status %s)", run.ID, run.Status)
			}
			time.Sleep(5 * time.Millisecond)
			if err := s.do(http.MethodGet, fmt.Sprintf("/api/v1/runs/%d", run.ID), nil, http.StatusOK, &run); err != nil {
				return 0, err
			}
		}
		if run.Status != "succeeded" {
			return 0, fmt.Errorf("run %d %s", run.ID, run.Status)
		}
		times = append(times, run.FinishedAt.Sub(run.CreatedAt))
	}
	slices.Sort(times)
	return times[len(times)/2], nil
}

// httpOptions are the settings of the HTTP scenarios.
type httpOptions struct {
	goCmd, nofx      string
	latencyRuns      int
	clients          int
	handoffRuns      int
	latency, handoff bool
}

// runHTTP runs the latency and hand-off scenarios against `nofx serve` on
// each target database (base is the PostgreSQL URL, or "").
func runHTTP(_ context.Context, o httpOptions, base, only string) error {
	bin := o.nofx
	if bin == "" {
		dir, err := os.MkdirTemp("", "nofx-bench-bin")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		fmt.Fprintln(os.Stderr, "building nofx")
		if bin, err = buildNofx(o.goCmd, dir); err != nil {
			return err
		}
	}
	databases := []string{"sqlite"}
	if base != "" {
		databases = append(databases, "postgres")
	}
	// fresh returns a database URL for a new server: "" for SQLite in the
	// data directory, or a new schema on PostgreSQL.
	fresh := func(name string) (string, func(), error) {
		if name == "sqlite" {
			return "", func() {}, nil
		}
		return freshSchema(base)
	}
	with := func(name string, env map[string]string, teams int, f func(*server) error) error {
		u, clean, err := fresh(name)
		if err != nil {
			return err
		}
		defer clean()
		s, err := startServer(bin, u, env, o.clients, teams)
		if err != nil {
			return err
		}
		defer s.stop()
		if err := f(s); err != nil {
			return fmt.Errorf("%w (server log %s:\n%s)", err, s.log, tail(s.log))
		}
		return nil
	}

	if o.latency {
		// With one team, the defaults' per-team limit (NOFX_TEAM_CONCURRENCY,
		// a quarter of NOFX_WORKERS) and the simulated provider's per-team
		// credential limit (NOFX_PROVIDER_CONCURRENCY) bound the run; the
		// last row lifts them.
		fmt.Printf("\n%d one-step runs at 1 s simulated latency, created through POST /api/v1/runs by %d clients, against nofx serve\n\n", o.latencyRuns, o.clients)
		fmt.Printf("%-10s %-40s %10s %14s %10s %10s %10s\n", "database", "teams and settings", "wall", "create runs/s", "idle RSS", "peak RSS", "succeeded")
		settings := []struct {
			name  string
			teams int
			env   map[string]string
		}{
			{fmt.Sprintf("%d teams (a client each), defaults", o.clients), o.clients, nil},
			{fmt.Sprintf("%d teams, TEAM_CONCURRENCY=0", o.clients), o.clients, map[string]string{"NOFX_TEAM_CONCURRENCY": "0"}},
			{"1 team, defaults", 1, nil},
			{"1 team, TEAM_, PROVIDER_CONCURRENCY=0", 1, map[string]string{"NOFX_TEAM_CONCURRENCY": "0", "NOFX_PROVIDER_CONCURRENCY": "0"}},
		}
		for _, name := range databases {
			if only != "" && name != only {
				continue
			}
			for _, set := range settings {
				err := with(name, set.env, set.teams, func(s *server) error {
					idle, err := s.rss()
					if err != nil {
						return err
					}
					r, err := measureLatency(s, o.latencyRuns, o.clients)
					if err != nil {
						return err
					}
					fmt.Printf("%-10s %-40s %9.2fs %14.0f %7d MiB %7d MiB %10d\n", name, set.name, r.wall.Seconds(), r.createRate, idle>>20, r.peakRSS>>20, r.succeeded)
					return nil
				})
				if err != nil {
					return fmt.Errorf("%s latency (%s): %w", name, set.name, err)
				}
			}
		}
	}
	if o.handoff {
		fmt.Printf("\nHand-off: median end to end (created_at to finished_at) of %d runs each, one at a time, through the API, defaults\n\n", o.handoffRuns)
		fmt.Printf("%-10s %18s %18s %14s\n", "database", "5-step text chain", "1-step text run", "per hand-off")
		for _, name := range databases {
			if only != "" && name != only {
				continue
			}
			err := with(name, nil, 1, func(s *server) error {
				one, err := measureHandoff(s, o.handoffRuns, 1)
				if err != nil {
					return err
				}
				five, err := measureHandoff(s, o.handoffRuns, 5)
				if err != nil {
					return err
				}
				fmt.Printf("%-10s %16dms %16dms %12dms\n", name, five.Milliseconds(), one.Milliseconds(), (five-one).Milliseconds()/4)
				return nil
			})
			if err != nil {
				return fmt.Errorf("%s hand-off: %w", name, err)
			}
		}
	}
	return nil
}
