package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/app"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/config"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/templates"
)

// commandTimeout bounds one in-process run of the CLI.
const commandTimeout = 30 * time.Second

// nofxBinary is the nofx binary that the tests build once, on first use.
var nofxBinary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if nofxBinary.dir != "" {
		os.RemoveAll(nofxBinary.dir)
	}
	os.Exit(code)
}

// buildNofx builds this package with the go command on PATH, once for all
// tests, and returns the binary's path.
func buildNofx(t *testing.T) string {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("go is not on PATH, and CI=true requires the binary tests")
		}
		t.Skip("go is not on PATH; skipping the test of the built binary")
	}
	nofxBinary.once.Do(func() {
		nofxBinary.dir, nofxBinary.err = os.MkdirTemp("", "nofx-bin-")
		if nofxBinary.err != nil {
			return
		}
		path := filepath.Join(nofxBinary.dir, "nofx")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, goCmd, "build", "-o", path, ".").CombinedOutput()
		if err != nil {
			nofxBinary.err = &buildError{err: err, output: string(out)}
			return
		}
		nofxBinary.path = path
	})
	require.NoError(t, nofxBinary.err, "go build")
	return nofxBinary.path
}

type buildError struct {
	err    error
	output string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.output }

// serverLog reads a child process's JSON log lines from stderr, keeps them,
// and reports the address of the "listening" line.
type serverLog struct {
	mu        sync.Mutex
	lines     []map[string]any // the lines that are JSON objects
	raw       []string         // every line
	other     []string         // the lines that are not JSON objects
	listening chan string      // receives the address once
	done      chan struct{}    // closed when stderr ends
}

// field returns the value of key in the first line with message msg.
func (l *serverLog) field(msg, key string) any {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if line["msg"] == msg {
			return line[key]
		}
	}
	return nil
}

// records returns the JSON lines read so far.
func (l *serverLog) records() []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]map[string]any(nil), l.lines...)
}

func readServerLog(t *testing.T, r io.Reader) *serverLog {
	l := &serverLog{listening: make(chan string, 1), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			text := sc.Text()
			var line map[string]any
			err := json.Unmarshal([]byte(text), &line)
			l.mu.Lock()
			l.raw = append(l.raw, text)
			if err == nil {
				l.lines = append(l.lines, line)
			} else {
				l.other = append(l.other, text)
			}
			l.mu.Unlock()
			if err == nil && line["msg"] == "listening" {
				addr, _ := line["addr"].(string)
				select {
				case l.listening <- addr:
				default:
				}
			}
		}
		if err := sc.Err(); err != nil {
			t.Errorf("read the server's stderr: %v", err)
		}
	}()
	return l
}

// String returns every line read so far, for failure messages.
func (l *serverLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.raw, "\n")
}

// notJSON returns the lines read so far that are not JSON objects.
func (l *serverLog) notJSON() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.other...)
}

// messages returns the msg of every JSON line read so far, in order.
func (l *serverLog) messages() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		msg, _ := line["msg"].(string)
		out = append(out, msg)
	}
	return out
}

// TestServeBinary runs the built binary on a fresh data directory: it must
// say where it listens, become ready, and exit 0 on SIGTERM, leaving its
// session secret and its database in the data directory.
func TestServeBinary(t *testing.T) {
	t.Parallel()
	bin := buildNofx(t)
	dataDir := t.TempDir()

	cmd := exec.Command(bin, "serve")
	// Only what the test sets, so that no NOFX_* variable of the caller leaks in.
	cmd.Env = []string{
		"NOFX_DATA_DIR=" + dataDir,
		"NOFX_ADDR=127.0.0.1:0",
		"NOFX_LOG_FORMAT=json",
	}
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	logs := readServerLog(t, stderr)

	// Wait only once stderr is read to its end, as StderrPipe requires.
	// exited closes when the process has exited and waitErr is set.
	exited := make(chan struct{})
	var waitErr error
	go func() {
		defer close(exited)
		<-logs.done
		waitErr = cmd.Wait()
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	var addr string
	select {
	case addr = <-logs.listening:
	case <-logs.done:
		t.Fatalf("nofx serve stopped before it listened:\n%s", logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("nofx serve did not log \"listening\" within 30s:\n%s", logs)
	}
	require.NotEmpty(t, addr, "the listening line has an addr:\n%s", logs)

	client := &http.Client{Timeout: 2 * time.Second}
	var ready readinessBody
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for status := 0; status != http.StatusOK; {
		select {
		case <-deadline:
			t.Fatalf("GET /readyz did not answer 200 within 10s (last status %d):\n%s", status, logs)
		case <-tick.C:
		}
		status, ready = getReadyz(client, "http://"+addr+"/readyz")
	}
	require.Equal(t, "ready", ready.Status)
	require.Equal(t, "ok", ready.Checks["database"])
	require.Equal(t, "ok", ready.Checks["migrations"])
	for name, check := range ready.Checks {
		require.True(t, strings.HasPrefix(check, "ok"), "readiness check %s: %s", name, check)
	}

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-exited:
		require.NoError(t, waitErr, "nofx serve exits 0 on SIGTERM:\n%s", logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("nofx serve did not exit within 30s of SIGTERM:\n%s", logs)
	}
	require.Equal(t, 0, cmd.ProcessState.ExitCode())
	require.Subset(t, logs.messages(), []string{"listening", "shutting down", "stopped"})
	require.Equal(t, "http://"+addr, logs.field("listening", "url"), "the start-up line says what to open")
	for _, line := range logs.records() {
		if line["component"] == "river" {
			require.NotEqual(t, "INFO", line["level"], "River's periodic lines are debug: %v", line)
		}
	}
	require.Empty(t, logs.notJSON(), "with NOFX_LOG_FORMAT=json every stderr line is a JSON record")

	info, err := os.Stat(filepath.Join(dataDir, "session.secret"))
	require.NoError(t, err, "a session secret is generated in the data directory")
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	info, err = os.Stat(filepath.Join(dataDir, "nofx.db"))
	require.NoError(t, err, "the SQLite database is created in the data directory")
	require.True(t, info.Mode().IsRegular())
}

// readinessBody is the JSON of /readyz.
type readinessBody struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// getReadyz returns the status and body of GET url, or status 0 when the
// request fails.
func getReadyz(client *http.Client, url string) (int, readinessBody) {
	var body readinessBody
	res, err := client.Get(url)
	if err != nil {
		return 0, body
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		return 0, body
	}
	return res.StatusCode, body
}

// cli runs the CLI in-process with an environment of its own.
type cli struct {
	t   *testing.T
	env map[string]string
}

func (c *cli) getenv(name string) string { return c.env[name] }

// run runs nofx with args and returns its exit code, stdout and stderr.
func (c *cli) run(args ...string) (int, string, string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, &stdout, &stderr, c.getenv)
	return code, stdout.String(), stderr.String()
}

// mustRun runs nofx with args, requires it to succeed and returns stdout.
func (c *cli) mustRun(args ...string) string {
	c.t.Helper()
	code, stdout, stderr := c.run(args...)
	require.Equal(c.t, 0, code, "nofx %s\nstdout: %s\nstderr: %s", strings.Join(args, " "), stdout, stderr)
	return stdout
}

// databases are the databases the CLI tests run on. An empty URL leaves
// NOFX_DATABASE_URL unset: SQLite in the data directory, the default.
var databases = []struct {
	name string
	url  func(t *testing.T) string
}{
	{"sqlite", func(*testing.T) string { return "" }},
	{"postgres", func(t *testing.T) string { return dbtest.PostgresURL(t) }},
}

// eachDatabase runs fn on a CLI with a fresh data directory, once per
// database. PostgreSQL is skipped without NOFX_TEST_DATABASE_URL.
func eachDatabase(t *testing.T, fn func(t *testing.T, c *cli)) {
	t.Helper()
	for _, database := range databases {
		t.Run(database.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"NOFX_DATA_DIR": t.TempDir()}
			if u := database.url(t); u != "" {
				env["NOFX_DATABASE_URL"] = u
			}
			fn(t, &cli{t: t, env: env})
		})
	}
}

const (
	testEmail    = "a@example.com"
	testPassword = "long enough pw"
)

func TestUsersCreate(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, c *cli) {
		out := c.mustRun("users", "create", "--email", testEmail, "--password", testPassword, "--site-admin")
		require.Contains(t, out, testEmail)
		require.Contains(t, out, "site admin")

		code, stdout, stderr := c.run("users", "create", "--email", "A@Example.COM", "--password", testPassword)
		require.NotEqual(t, 0, code, "a duplicate email in another letter case is refused")
		require.Empty(t, stdout)
		require.Contains(t, stderr, "--email")
		require.Contains(t, stderr, "already exists")

		code, stdout, stderr = c.run("users", "create", "--email", "b@example.com", "--password", "short")
		require.NotEqual(t, 0, code, "a short password is refused")
		require.Empty(t, stdout)
		require.Contains(t, stderr, "--password")

		code, _, stderr = c.run("users", "create", "--email", "not-an-email", "--password", testPassword)
		require.NotEqual(t, 0, code, "a malformed email is refused")
		require.Contains(t, stderr, "--email")

		out = c.mustRun("users", "create", "--email", "b@example.com", "--password", testPassword)
		require.Contains(t, out, "b@example.com")
		require.NotContains(t, out, "site admin", "only the first user, or --site-admin, makes a site admin")
	})
}

func TestTokensCreate(t *testing.T) {
	t.Parallel()
	eachDatabase(t, func(t *testing.T, c *cli) {
		c.mustRun("users", "create", "--email", testEmail, "--password", testPassword, "--site-admin")

		out := c.mustRun("tokens", "create", "--email", testEmail)
		require.True(t, strings.HasPrefix(out, "nofx_"), "stdout is the key: %q", out)
		require.True(t, strings.HasSuffix(out, "\n"), "stdout ends with a newline: %q", out)
		key := strings.TrimSuffix(out, "\n")
		require.NotContains(t, key, "\n", "stdout is exactly one line: %q", out)
		require.Equal(t, strings.TrimSpace(key), key)

		api := newAPI(t, c)
		me := api.me(key)
		require.Equal(t, "a", me.Team.Slug, "the key works in the user's personal team")
		require.Equal(t, "owner", me.Team.Role, "the key has the user's own role by default")
		require.NotEmpty(t, me.APIKey.Prefix)
		require.True(t, strings.HasPrefix(key, me.APIKey.Prefix))

		owner := c.mustRun("tokens", "create", "--email", "A@example.com", "--team", "a", "--role", "owner", "--name", "deploy")
		me = api.me(strings.TrimSpace(owner))
		require.Equal(t, "owner", me.Team.Role)
		require.Equal(t, "deploy", me.APIKey.Name)

		// A member of the team cannot make a key more powerful than they are.
		c.mustRun("users", "create", "--email", "m@example.com", "--password", testPassword)
		ctx := context.Background()
		member, err := auth.UserByEmail(ctx, api.DB, "m@example.com")
		require.NoError(t, err)
		team, err := teams.BySlug(ctx, api.DB, "a")
		require.NoError(t, err)
		var starters []string
		require.NoError(t, db.Select(ctx, api.DB, &starters, `SELECT slug FROM templates WHERE team_id = ? ORDER BY slug`, team.ID))
		require.Len(t, starters, len(templates.Starters()), "users create gives the new team the starter templates")
		require.NoError(t, teams.AddMember(ctx, api.DB, team.ID, member.ID, teams.RoleMember))
		viewer := c.mustRun("tokens", "create", "--email", "m@example.com", "--team", "a", "--role", "viewer")
		me = api.me(strings.TrimSpace(viewer))
		require.Equal(t, "a", me.Team.Slug)
		require.Equal(t, "viewer", me.Team.Role)

		for _, tc := range []struct {
			name   string
			args   []string
			stderr string
		}{
			{"unknown role", []string{"--email", testEmail, "--role", "boss"}, "boss"},
			{"unknown team", []string{"--email", testEmail, "--team", "nosuch"}, "nosuch"},
			{"not a member", []string{"--email", testEmail, "--team", "m"}, "not a member"},
			{"role above the user's", []string{"--email", "m@example.com", "--team", "a", "--role", "owner"}, "cannot make a key with role owner"},
			{"unknown user", []string{"--email", "nobody@example.com"}, "nobody@example.com"},
			{"no email", []string{"--role", "owner"}, "--email"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, stdout, stderr := c.run(append([]string{"tokens", "create"}, tc.args...)...)
				require.NotEqual(t, 0, code)
				require.Empty(t, stdout, "no key is printed")
				require.Contains(t, stderr, tc.stderr)
			})
		}
	})
}

// apiServer is the app, with its real router, on the CLI's database.
type apiServer struct {
	t   *testing.T
	DB  *db.DB
	url string
}

// newAPI builds the app on the CLI's configuration, without its workers,
// and serves its router.
func newAPI(t *testing.T, c *cli) *apiServer {
	t.Helper()
	cfg, err := config.Load(c.getenv)
	require.NoError(t, err)
	a, err := app.New(context.Background(), cfg, slog.New(slog.DiscardHandler), false, app.Tuning{})
	require.NoError(t, err)
	ts := httptest.NewServer(a.Web.Handler())
	t.Cleanup(func() {
		ts.Close()
		require.NoError(t, a.Close(context.Background()))
	})
	return &apiServer{t: t, DB: a.DB, url: ts.URL}
}

// meBody is the JSON of GET /api/v1/me.
type meBody struct {
	APIKey struct {
		Name   string `json:"name"`
		Prefix string `json:"prefix"`
	} `json:"api_key"`
	Team struct {
		Slug string `json:"slug"`
		Role string `json:"role"`
	} `json:"team"`
}

// me calls GET /api/v1/me with key and requires a 200.
func (a *apiServer) me(key string) meBody {
	a.t.Helper()
	req, err := http.NewRequest(http.MethodGet, a.url+"/api/v1/me", nil)
	require.NoError(a.t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	require.NoError(a.t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(a.t, err)
	require.Equal(a.t, http.StatusOK, res.StatusCode, "GET /api/v1/me: %s", body)
	var me meBody
	require.NoError(a.t, json.Unmarshal(body, &me), "%s", body)
	return me
}

func TestVersion(t *testing.T) {
	t.Parallel()
	c := &cli{t: t, env: map[string]string{}}
	out := c.mustRun("version")
	require.True(t, strings.HasPrefix(out, "nofx "), "version prints %q", out)
}

// TestRoutes checks that `nofx routes` prints the route table with each
// route's access, without a database.
func TestRoutes(t *testing.T) {
	t.Parallel()
	c := &cli{t: t, env: map[string]string{}}
	// The plain table is the public contract: method, path, access.
	out := c.mustRun("routes")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Equal(t, []string{"METHOD", "PATH", "ACCESS"}, strings.Fields(lines[0]))
	rows := map[string]string{}
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		require.GreaterOrEqual(t, len(f), 3, "%q", line)
		rows[f[0]+" "+f[1]] = strings.Join(f[2:], " ")
	}
	require.Equal(t, "public", rows["GET /healthz"])
	require.Equal(t, "runs:read", rows["GET /runs"])
	require.Equal(t, "runs:cancel (scoped)", rows["POST /api/v1/runs/:id/cancel"])
	require.Equal(t, "site admin", rows["GET /admin"])
	require.Equal(t, "users only", rows["POST /api/v1/teams"])
	require.Greater(t, len(rows), 100)

	// --handlers names each route's handler as a reader finds it: package,
	// then function or method.
	withHandlers := c.mustRun("routes", "--handlers")
	lines = strings.Split(strings.TrimSpace(withHandlers), "\n")
	require.Equal(t, []string{"METHOD", "PATH", "ACCESS", "HANDLER"}, strings.Fields(lines[0]))
	handlers := map[string]string{}
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		require.GreaterOrEqual(t, len(f), 4, "%q", line)
		handlers[f[0]+" "+f[1]] = f[len(f)-1]
		require.Equal(t, rows[f[0]+" "+f[1]], strings.Join(f[2:len(f)-1], " "), "the same access: %q", line)
	}
	require.Len(t, handlers, len(rows))
	require.Equal(t, "web.healthz", handlers["GET /healthz"])
	require.Equal(t, "web.serveMetrics", handlers["GET /metrics"], "a handler a function builds is named for that function")
	require.Equal(t, "pages.RunsPage", handlers["GET /runs"])
	require.Equal(t, "api.CancelRun", handlers["POST /api/v1/runs/:id/cancel"])

	// The README's Layout section shows the table with its handlers.
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	_, block, ok := strings.Cut(string(readme), "<!-- routes -->\n```\n")
	require.True(t, ok, "README.md has the route table")
	block, _, ok = strings.Cut(block, "```\n<!-- /routes -->")
	require.True(t, ok)
	require.Equal(t, withHandlers, block, "README.md's route table is out of date: paste `go run ./cmd/nofx routes --handlers` between its <!-- routes --> markers")
}

func TestUnknownCommand(t *testing.T) {
	t.Parallel()
	c := &cli{t: t, env: map[string]string{}}
	code, stdout, stderr := c.run("frobnicate")
	require.Equal(t, 2, code)
	require.Empty(t, stdout)
	require.Contains(t, stderr, "frobnicate")
	require.Contains(t, stderr, "Usage:")
}

// TestConfigError checks that every command refuses a bad configuration
// with a message that names the variable, before it touches the database.
func TestConfigError(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"serve"},
		{"migrate"},
		{"users", "create", "--email", testEmail, "--password", testPassword},
		{"tokens", "create", "--email", testEmail},
	} {
		t.Run(args[0], func(t *testing.T) {
			t.Parallel()
			dataDir := t.TempDir()
			c := &cli{t: t, env: map[string]string{
				"NOFX_DATA_DIR": dataDir,
				"NOFX_ADDR":     "127.0.0.1:0",
				"NOFX_WORKERS":  "abc",
			}}
			code, stdout, stderr := c.run(args...)
			require.NotEqual(t, 0, code)
			require.Empty(t, stdout)
			require.Contains(t, stderr, "NOFX_WORKERS")
			require.NoFileExists(t, filepath.Join(dataDir, "nofx.db"), "no database is created")
		})
	}
}
