package web_test

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	nofx "github.com/nofxhq/nofx/internal/app"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/logtest"
	"github.com/nofxhq/nofx/internal/teams"
)

// While PostgreSQL cannot be reached, the API answers 503 unavailable with
// Retry-After, pages a 503 page that says the database is unavailable, and
// /readyz names it; never a 500. Once it is back, requests succeed again.
func TestDatabaseOutageAnswers503(t *testing.T) {
	t.Parallel()
	proxy, url := dbtest.NewProxy(t, dbtest.PostgresURL(t))
	var logs logtest.Buffer
	a := newAppLogging(t, url, slog.New(slog.NewTextHandler(&logs, nil)))
	c := a.newAPIClient("owner@example.com", teams.RoleOwner)
	browser := a.client()
	require.Equal(t, http.StatusSeeOther, browser.logIn("owner@example.com", password).StatusCode)
	require.Equal(t, http.StatusOK, c.do(http.MethodGet, "/api/v1/runs", "").StatusCode)

	proxy.Cut()
	res := c.do(http.MethodGet, "/api/v1/runs", "")
	require.Equal(t, http.StatusServiceUnavailable, res.StatusCode, res.Body)
	require.Equal(t, "unavailable", apiErrorCode(t, res))
	require.NotEmpty(t, res.Header.Get("Retry-After"))
	require.Contains(t, res.Body, "The database is unavailable")

	page := browser.get("/runs")
	require.Equal(t, http.StatusServiceUnavailable, page.StatusCode)
	require.Contains(t, page.Body, "The database is unavailable")
	ready := a.client().get("/readyz")
	require.Equal(t, http.StatusServiceUnavailable, ready.StatusCode)
	require.True(t, strings.Contains(ready.Body, `"database":"unreachable`), ready.Body)

	for range 5 {
		require.Equal(t, http.StatusServiceUnavailable, c.do(http.MethodGet, "/api/v1/runs", "").StatusCode)
	}
	// A page that needs no database is no sign that it is back.
	require.Equal(t, http.StatusNotFound, a.client().get("/no-such-page").StatusCode)
	require.Equal(t, http.StatusServiceUnavailable, c.do(http.MethodGet, "/api/v1/runs", "").StatusCode)

	proxy.Restore()
	require.Eventually(t, func() bool {
		return c.do(http.MethodGet, "/api/v1/runs", "").StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "the API answers again once the database is back")

	// The refused requests are one WARN and one INFO, not a line each.
	out := logs.String()
	require.Equal(t, 1, strings.Count(out, `msg="database unavailable; retrying" what=requests`), out)
	require.Equal(t, 1, strings.Count(out, `msg="database reachable again" what=requests`), out)
	require.NotContains(t, out, `level=ERROR msg="request failed"`)
}

// A watcher who stays connected through a database outage keeps the run's
// stream: it is told the database is unavailable, still receives the text
// the step streams meanwhile, and catches up with the timeline (the step's
// success, the end) once the database is back.
func TestRunStreamRidesThroughADatabaseOutage(t *testing.T) {
	t.Parallel()
	proxy, url := dbtest.NewProxy(t, dbtest.PostgresURL(t))
	a := newAppTuned(t, url, slog.New(slog.NewTextHandler(io.Discard, nil)), nil,
		func(tu *nofx.Tuning) { tu.StreamKeepalive = 100 * time.Millisecond; tu.Lease = 20 * time.Second })
	c := a.newAPIClient("watcher@example.com", teams.RoleOwner)
	res := c.do(http.MethodPost, "/api/v1/runs", `{"plan":{"goal":"watched","steps":[{"name":"s","kind":"llm","provider":"simulated","model":"echo",
		"prompt":"one two three four five six seven eight nine ten eleven twelve","options":{"latency_ms":3000}}]}}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	id := decode[apiRun](t, res).ID

	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/api/v1/runs/%d/events", a.URL, id), nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+c.key)
	stream, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer stream.Body.Close()
	require.Equal(t, http.StatusOK, stream.StatusCode)
	lines := make(chan string, 1000)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stream.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	next := func(what string, match func(string) bool) {
		t.Helper()
		timeout := time.After(30 * time.Second)
		for {
			select {
			case line, ok := <-lines:
				require.True(t, ok, "the stream ended before %s", what)
				if match(line) {
					return
				}
			case <-timeout:
				t.Fatalf("no %s on the stream", what)
			}
		}
	}
	is := func(s string) func(string) bool { return func(line string) bool { return line == s } }

	next("step.started", is("event: step.started"))
	next("streamed text", is("event: delta")) // the provider call is under way
	proxy.Cut()
	next("the outage notice", func(line string) bool { return strings.Contains(line, "database is unavailable") })
	next("streamed text during the outage", is("event: delta"))
	proxy.Restore()
	next("step.succeeded", is("event: step.succeeded"))
	next("end", is("event: end"))
}

// On SQLite a write waits for another connection's lock on the file (a
// backup, another tool) up to the busy timeout, then answers 503
// unavailable like a PostgreSQL outage, writing nothing; reads go on; once
// the lock is gone, writes succeed again.
func TestSQLiteLockedFileAnswers503(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.SQLiteURL(t)
	a := newAppAt(t, dbURL+"?busy_timeout=500ms") // the short lock below ends well within it
	c := a.newAPIClient("locked@example.com", teams.RoleOwner)
	browser := a.client()
	require.Equal(t, http.StatusSeeOther, browser.logIn("locked@example.com", password).StatusCode)

	// The other tool waits for NOFX's own short writes (its engine works the
	// first run meanwhile) before it takes the lock.
	other, err := sql.Open("sqlite", "file:"+strings.TrimPrefix(dbURL, "sqlite://")+"?_pragma=busy_timeout(5000)")
	require.NoError(t, err)
	defer other.Close()
	lock := func() *sql.Conn {
		conn, err := other.Conn(context.Background())
		require.NoError(t, err)
		_, err = conn.ExecContext(context.Background(), `BEGIN IMMEDIATE`) // the file's write lock
		require.NoError(t, err)
		return conn
	}
	unlock := func(conn *sql.Conn) {
		_, err := conn.ExecContext(context.Background(), `ROLLBACK`)
		require.NoError(t, err)
		require.NoError(t, conn.Close())
	}

	// A lock held for less than the busy timeout is waited out.
	conn := lock()
	unlocked := make(chan error, 1)
	time.AfterFunc(50*time.Millisecond, func() {
		_, err := conn.ExecContext(context.Background(), `ROLLBACK`)
		unlocked <- errors.Join(err, conn.Close())
	})
	res := c.do(http.MethodPost, "/api/v1/runs", `{"prompt":"after a short lock"}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	require.NoError(t, <-unlocked)
	before := countRuns(t, a)

	token := browser.csrf("/runs/new")
	conn = lock()
	res = c.do(http.MethodPost, "/api/v1/runs", `{"prompt":"during a long lock"}`)
	require.Equal(t, http.StatusServiceUnavailable, res.StatusCode, res.Body)
	require.Equal(t, "unavailable", apiErrorCode(t, res))
	require.NotEmpty(t, res.Header.Get("Retry-After"))
	page := browser.postForm("/runs", url.Values{"_csrf": {token}, "prompt": {"from the form"}})
	require.Equal(t, http.StatusServiceUnavailable, page.StatusCode)
	require.Contains(t, page.Body, "The database is unavailable")
	require.Equal(t, http.StatusOK, c.do(http.MethodGet, "/api/v1/runs", "").StatusCode, "reads go on")
	unlock(conn)

	var after int
	require.NoError(t, db.Get(context.Background(), a.DB.Reader(), &after, `SELECT COUNT(*) FROM runs`))
	require.Equal(t, before, after, "nothing was written")
	// Writes fail at once for a moment after a busy one (so that queued
	// writes do not each wait the busy timeout), then go through again.
	require.Eventually(t, func() bool {
		return c.do(http.MethodPost, "/api/v1/runs", `{"prompt":"after the lock"}`).StatusCode == http.StatusCreated
	}, 10*time.Second, 50*time.Millisecond)
}
