package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/db"
)

// server is a `nofx serve` child process.
type server struct {
	t      *testing.T
	cmd    *exec.Cmd
	logs   *serverLog
	addr   string
	exited chan struct{}
}

// startServer runs the built binary with env and waits until it listens.
func startServer(t *testing.T, env map[string]string) *server {
	t.Helper()
	cmd := exec.Command(buildNofx(t), "serve")
	cmd.Env = []string{"NOFX_ADDR=127.0.0.1:0", "NOFX_LOG_FORMAT=json"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	s := &server{t: t, cmd: cmd, logs: readServerLog(t, stderr), exited: make(chan struct{})}
	go func() {
		defer close(s.exited)
		<-s.logs.done
		_ = cmd.Wait()
	}()
	t.Cleanup(s.kill)
	select {
	case s.addr = <-s.logs.listening:
	case <-s.exited:
		t.Fatalf("nofx serve stopped before it listened:\n%s", s.logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("nofx serve did not listen within 30s:\n%s", s.logs)
	}
	return s
}

// kill ends the process with SIGKILL, as a crash would.
func (s *server) kill() {
	select {
	case <-s.exited:
	default:
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

func (s *server) api(method, path, key, body string) (int, []byte) {
	s.t.Helper()
	req, err := http.NewRequest(method, "http://"+s.addr+path, strings.NewReader(body))
	require.NoError(s.t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(s.t, err)
	return res.StatusCode, b
}

// TestCrashAndRestart kills `nofx serve` with SIGKILL in the middle of many
// runs, starts it again, and checks that every run completes with every
// step succeeding exactly once.
func TestCrashAndRestart(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, c *cli) {
		c.mustRun("users", "create", "--email", testEmail, "--password", testPassword)
		key := strings.TrimSpace(c.mustRun("tokens", "create", "--email", testEmail))
		env := map[string]string{"NOFX_WORKERS": "4", "NOFX_STEP_LEASE": "2s"}
		for k, v := range c.env {
			env[k] = v
		}
		url := env["NOFX_DATABASE_URL"]
		if url == "" {
			url = "sqlite://" + env["NOFX_DATA_DIR"] + "/nofx.db"
		}

		first := startServer(t, env)
		const runs = 24
		plan := `{"plan":{"goal":"survive","steps":[
			{"name":"a","kind":"llm","provider":"simulated","model":"echo","prompt":"a{{inputs.i}}","options":{"latency_ms":400}},
			{"name":"b","kind":"llm","provider":"simulated","model":"echo","prompt":"b{{steps.a.output}}","needs":["a"],"options":{"latency_ms":400}},
			{"name":"c","kind":"text","prompt":"c{{steps.b.output}}","needs":["b"]}]},"inputs":{"i":%d}}`
		for i := range runs {
			status, body := first.api(http.MethodPost, "/api/v1/runs", key, fmt.Sprintf(plan, i))
			require.Equal(t, http.StatusCreated, status, string(body))
		}

		d, err := db.Open(context.Background(), url)
		require.NoError(t, err)
		defer d.Close()
		count := func(query string) int {
			var n int
			require.NoError(t, db.Get(context.Background(), d, &n, query))
			return n
		}
		// Kill it while steps are running and some runs are done.
		deadline := time.Now().Add(30 * time.Second)
		for count(`SELECT COUNT(*) FROM steps WHERE status = 'succeeded'`) < 6 || count(`SELECT COUNT(*) FROM steps WHERE status = 'running'`) == 0 {
			require.True(t, time.Now().Before(deadline), "work did not get under way:\n%s", first.logs)
			time.Sleep(20 * time.Millisecond) // polling another process's database
		}
		first.kill()
		require.Positive(t, count(`SELECT COUNT(*) FROM runs WHERE status <> 'succeeded'`), "the crash left work undone")

		second := startServer(t, env)
		deadline = time.Now().Add(90 * time.Second)
		for count(`SELECT COUNT(*) FROM runs WHERE status = 'succeeded'`) < runs {
			if time.Now().After(deadline) {
				var left []struct {
					ID     int64  `db:"id"`
					Status string `db:"status"`
				}
				_ = db.Select(context.Background(), d, &left, `SELECT id, status FROM runs WHERE status <> 'succeeded'`)
				t.Fatalf("runs not done after restart: %+v\n%s", left, second.logs)
			}
			time.Sleep(50 * time.Millisecond)
		}

		require.Zero(t, count(`SELECT COUNT(*) FROM steps WHERE status <> 'succeeded'`))
		require.Equal(t, 3*runs, count(`SELECT COUNT(*) FROM run_events WHERE kind = 'step.succeeded'`), "no step succeeded twice")
		require.Equal(t, runs, count(`SELECT COUNT(*) FROM run_events WHERE kind = 'run.succeeded'`))

		status, body := second.api(http.MethodGet, "/api/v1/runs?limit=1", key, "")
		require.Equal(t, http.StatusOK, status)
		var page struct {
			Runs []struct{ Status string } `json:"runs"`
		}
		require.NoError(t, json.Unmarshal(body, &page))
		require.Equal(t, "succeeded", page.Runs[0].Status)
	})
}

// TestShutdownEndsEventStreams checks that SIGTERM ends open event streams
// instead of waiting the whole grace period for them, and exits 0.
func TestShutdownEndsEventStreams(t *testing.T) {
	t.Parallel()
	env := map[string]string{"NOFX_DATA_DIR": t.TempDir()}
	c := &cli{t: t, env: env}
	c.mustRun("users", "create", "--email", testEmail, "--password", testPassword)
	key := strings.TrimSpace(c.mustRun("tokens", "create", "--email", testEmail))
	srv := startServer(t, env)

	status, body := srv.api(http.MethodPost, "/api/v1/runs", key, `{"plan":{"goal":"wait","steps":[{"name":"gate","kind":"approval"}]}}`)
	require.Equal(t, http.StatusCreated, status, string(body))
	var run struct{ ID int64 }
	require.NoError(t, json.Unmarshal(body, &run))

	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://%s/api/v1/runs/%d/events", srv.addr, run.ID), nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	streamEnded := make(chan struct{})
	go func() {
		defer close(streamEnded)
		_, _ = io.Copy(io.Discard, res.Body)
	}()

	began := time.Now()
	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-srv.exited:
	case <-time.After(20 * time.Second): // the grace period is 25s
		t.Fatalf("nofx serve did not stop while an event stream was open:\n%s", srv.logs)
	}
	<-streamEnded
	require.Equal(t, 0, srv.cmd.ProcessState.ExitCode(), "exits 0:\n%s", srv.logs)
	require.NotContains(t, srv.logs.String(), "http shutdown", "no shutdown error:\n%s", srv.logs)
	t.Logf("stopped %s after SIGTERM", time.Since(began).Round(time.Millisecond))
}
