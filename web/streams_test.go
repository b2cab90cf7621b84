package web_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/apikeys"
	"github.com/nofxhq/nofx/internal/config"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/teams"
)

// newStreamsApp is newApp with at most limit event streams per user or key.
func newStreamsApp(t *testing.T, limit int) *app {
	t.Helper()
	return newAppWith(t, dbtest.SQLiteURL(t), slog.New(slog.NewTextHandler(io.Discard, nil)), func(c *config.Config) {
		c.StreamsPerPrincipal = limit
	})
}

// stream is an open event stream, or the answer that refused one.
type stream struct {
	res    *http.Response
	body   string // the body of a refusal
	cancel context.CancelFunc
}

// close leaves the stream, as a browser closing its tab.
func (s *stream) close() {
	s.cancel()
	s.res.Body.Close()
}

// openStream GETs path with the client's cookies, or as key when it is set,
// and returns once the headers have come.
func (a *app) openStream(t *testing.T, httpClient *http.Client, key, path string) *stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.URL+path, nil)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := httpClient.Do(req)
	require.NoError(t, err)
	s := &stream{res: res, cancel: cancel}
	if res.StatusCode != http.StatusOK {
		b, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		s.body = string(b)
		s.close()
	} else {
		t.Cleanup(s.close)
	}
	return s
}

// requireStreamRefused checks that s was answered 429 as a rate limit.
func requireStreamRefused(t *testing.T, s *stream) {
	t.Helper()
	require.Equal(t, http.StatusTooManyRequests, s.res.StatusCode, s.body)
	require.NotEmpty(t, s.res.Header.Get("Retry-After"))
	require.Equal(t, "rate_limited", apiErrorCode(t, response{Response: s.res, Body: s.body}))
}

// waitingRun starts, as c, a run that waits for an approval at "gate".
func waitingRun(t *testing.T, c *apiClient) int64 {
	t.Helper()
	res := c.do(http.MethodPost, "/api/v1/runs", `{"plan":{"goal":"hold","steps":[{"name":"gate","kind":"approval","prompt":"ok?"}]}}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	id := decode[apiRun](t, res).ID
	c.waitRun(id, "waiting")
	return id
}

func TestEventStreamsPerKey(t *testing.T) {
	t.Parallel()
	a := newStreamsApp(t, 2)
	c := a.newAPIClient("streams@example.com", teams.RoleAdmin)
	run := waitingRun(t, c)
	events := fmt.Sprintf("/api/v1/runs/%d/events", run)
	hc := &http.Client{Transport: &http.Transport{}}

	first := a.openStream(t, hc, c.key, events)
	require.Equal(t, http.StatusOK, first.res.StatusCode, first.body)
	second := a.openStream(t, hc, c.key, events)
	require.Equal(t, http.StatusOK, second.res.StatusCode, second.body)
	requireStreamRefused(t, a.openStream(t, hc, c.key, events))

	// Another key of the same team has streams of its own.
	team := a.teamOf("streams@example.com")
	_, other, err := apikeys.Create(context.Background(), a.DB, team.ID, "other", teams.RoleViewer, a.userID("streams@example.com"), nil)
	require.NoError(t, err)
	theirs := a.openStream(t, hc, other, events)
	require.Equal(t, http.StatusOK, theirs.res.StatusCode, theirs.body)

	// A client that leaves gives its slot back.
	first.close()
	deadline := time.Now().Add(10 * time.Second)
	var replacement *stream
	for {
		s := a.openStream(t, hc, c.key, events)
		if s.res.StatusCode == http.StatusOK {
			replacement = s
			break
		}
		requireStreamRefused(t, s)
		require.True(t, time.Now().Before(deadline), "the slot of a closed stream is released")
		<-time.After(10 * time.Millisecond) // the server notices the client left on its own time
	}
	requireStreamRefused(t, a.openStream(t, hc, c.key, events))

	// A stream that ends with its run gives its slot back too: read every
	// open one to its end (the server frees a slot before it ends the
	// response), then the key streams again at once.
	res := c.do(http.MethodPost, fmt.Sprintf("/api/v1/runs/%d/steps/gate/approve", run), `{}`)
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	for _, s := range []*stream{second, replacement, theirs} {
		require.Contains(t, readToEnd(t, s), "event: end")
	}
	next := waitingRun(t, c)
	for range 2 {
		s := a.openStream(t, hc, c.key, fmt.Sprintf("/api/v1/runs/%d/events", next))
		require.Equal(t, http.StatusOK, s.res.StatusCode, s.body)
	}
}

// readToEnd reads an open stream until the server ends it.
func readToEnd(t *testing.T, s *stream) string {
	t.Helper()
	var b strings.Builder
	sc := bufio.NewScanner(s.res.Body)
	for sc.Scan() {
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	require.NoError(t, sc.Err())
	return b.String()
}

// TestEventStreamsPerUser checks that a signed-in user's live run pages and
// API streams share one count, apart from the user's keys.
func TestEventStreamsPerUser(t *testing.T) {
	t.Parallel()
	a := newStreamsApp(t, 2)
	browser := a.client()
	browser.signUp("live-streams@example.com", password)
	team := a.teamOf("live-streams@example.com")
	_, secret, err := apikeys.Create(context.Background(), a.DB, team.ID, "own", teams.RoleMember, a.userID("live-streams@example.com"), nil)
	require.NoError(t, err)
	key := &apiClient{t: t, app: a, key: secret}
	run := waitingRun(t, key)

	for range 2 {
		s := a.openStream(t, browser.http, "", fmt.Sprintf("/runs/%d/live", run))
		require.Equal(t, http.StatusOK, s.res.StatusCode, s.body)
		require.Equal(t, "text/event-stream", s.res.Header.Get("Content-Type"))
	}
	refused := a.openStream(t, browser.http, "", fmt.Sprintf("/runs/%d/live", run))
	require.Equal(t, http.StatusTooManyRequests, refused.res.StatusCode, refused.body)
	require.NotEmpty(t, refused.res.Header.Get("Retry-After"))
	requireStreamRefused(t, a.openStream(t, browser.http, "", fmt.Sprintf("/api/v1/runs/%d/events", run)))

	s := a.openStream(t, http.DefaultClient, secret, fmt.Sprintf("/api/v1/runs/%d/events", run))
	require.Equal(t, http.StatusOK, s.res.StatusCode, "the user's key counts apart: %s", s.body)
}

// TestEventStreamsUncappedByDefault checks that a zero limit means none.
func TestEventStreamsUncappedByDefault(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.newAPIClient("uncapped@example.com", teams.RoleMember)
	run := waitingRun(t, c)
	hc := &http.Client{Transport: &http.Transport{}}
	for range 25 {
		s := a.openStream(t, hc, c.key, fmt.Sprintf("/api/v1/runs/%d/events", run))
		require.Equal(t, http.StatusOK, s.res.StatusCode, s.body)
	}
}
