package web_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/teams"
)

// gatePlan is a one-step run that waits for an approval at "gate".
const gatePlan = `{"goal":"Listed live","steps":[{"name":"gate","kind":"approval","prompt":"Go?"}]}`

// startRunAPI starts a run of plan through the API and returns its id.
func (c *apiClient) startRunAPI(plan string) int64 {
	c.t.Helper()
	res := c.do(http.MethodPost, "/api/v1/runs", `{"plan":`+plan+`}`)
	require.Equal(c.t, http.StatusCreated, res.StatusCode, res.Body)
	return decode[apiRun](c.t, res).ID
}

// eventLog is an open event stream and what it has sent so far.
type eventLog struct {
	t       *testing.T
	ctx     context.Context
	events  <-chan sseEvent
	history []sseEvent
}

// openEvents opens the stream at path as c until the test ends.
func (c *client) openEvents(path string) *eventLog {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	c.t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.app.URL+path, nil)
	require.NoError(c.t, err)
	res, err := c.http.Do(req)
	require.NoError(c.t, err)
	c.t.Cleanup(func() { res.Body.Close() })
	require.Equal(c.t, http.StatusOK, res.StatusCode)
	require.Equal(c.t, "text/event-stream", res.Header.Get("Content-Type"))
	return &eventLog{t: c.t, ctx: ctx, events: readSSE(bufio.NewReader(res.Body))}
}

// waitFor returns the first event named name whose data contains text,
// reading more of the stream as needed.
func (l *eventLog) waitFor(name, text string) sseEvent {
	l.t.Helper()
	for i := 0; ; i++ {
		for i >= len(l.history) {
			select {
			case ev, ok := <-l.events:
				require.True(l.t, ok, "the stream ended early")
				l.history = append(l.history, ev)
			case <-l.ctx.Done():
				var names []string
				for _, ev := range l.history {
					names = append(names, ev.name)
				}
				l.t.Fatalf("no %q event with %q in %v", name, text, names)
			}
		}
		if ev := l.history[i]; ev.name == name && strings.Contains(ev.data, text) {
			return ev
		}
	}
}

// rowStatus is the status the row of run id shows in an event's HTML.
func rowStatus(t *testing.T, html string, id int64) string {
	t.Helper()
	doc, err := goquery.NewDocumentFromReader(strings.NewReader("<table>" + html + "</table>"))
	require.NoError(t, err)
	row := doc.Find(fmt.Sprintf(`[data-testid=run-row-%d]`, id))
	require.Equal(t, 1, row.Length(), "the row of run %d in %s", id, html)
	return pageStatus(row)
}

func TestRunsListLive(t *testing.T) {
	t.Parallel()
	onBothDatabases(t, testRunsListLive)
}

// testRunsListLive follows the runs list of a team as its runs start and
// change, with and without a status filter; another team's runs never show.
func testRunsListLive(t *testing.T, a *app) {
	api := a.newAPIClient("list-live@example.com", teams.RoleOwner)
	stranger := a.newAPIClient("list-stranger@example.com", teams.RoleOwner)
	browser := a.client()
	require.Equal(t, http.StatusSeeOther, browser.logIn("list-live@example.com", password).StatusCode)

	liveURL := func(page string) string {
		res := browser.get(page)
		require.Equal(t, http.StatusOK, res.StatusCode)
		u := res.Doc(t).Find(`[data-testid=dashboard]`).AttrOr("sse-connect", "")
		require.True(t, strings.HasPrefix(u, "/runs/live?"), "the list follows its stream: %q", u)
		return u
	}
	all := browser.openEvents(liveURL("/runs"))
	succeeded := browser.openEvents(liveURL("/runs?status=succeeded"))

	// The first run of the team: the empty page gets the whole list.
	id := api.startRunAPI(gatePlan)
	ev := all.waitFor("runs-results", fmt.Sprintf(`data-testid="run-row-%d"`, id))
	require.Equal(t, fmt.Sprint(id), ev.id, "a reconnect resumes after it")
	if status := rowStatus(t, ev.data, id); status != "waiting" {
		require.Contains(t, []string{"queued", "running"}, status)
		ev = all.waitFor(fmt.Sprintf("run-%d", id), "Waiting")
		require.Equal(t, "waiting", rowStatus(t, ev.data, id))
	}

	res := api.do(http.MethodPost, fmt.Sprintf("/api/v1/runs/%d/steps/gate/approve", id), `{}`)
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	ev = all.waitFor(fmt.Sprintf("run-%d", id), "Succeeded")
	require.Equal(t, "succeeded", rowStatus(t, ev.data, id))

	// The filtered list shows the run only once it matches.
	ev = succeeded.waitFor("runs-results", fmt.Sprintf(`data-testid="run-row-%d"`, id))
	require.Equal(t, "succeeded", rowStatus(t, ev.data, id))
	for _, ev := range succeeded.history[:len(succeeded.history)-1] {
		require.NotContains(t, ev.data, fmt.Sprintf("run-row-%d", id), "sent before it succeeded: %+v", ev)
	}

	// Another team's run never shows; the team's next run goes on top.
	other := stranger.startRunAPI(gatePlan)
	stranger.waitRun(other, "waiting")
	next := api.startRunAPI(gatePlan)
	ev = all.waitFor("runs-new", fmt.Sprintf(`data-testid="run-row-%d"`, next))
	require.Equal(t, fmt.Sprint(next), ev.id)
	if rowStatus(t, ev.data, next) != "waiting" {
		all.waitFor(fmt.Sprintf("run-%d", next), "Waiting")
	}
	for _, ev := range all.history {
		require.NotContains(t, ev.data, fmt.Sprintf("run-row-%d", other), "another team's run: %+v", ev)
		require.NotEqual(t, fmt.Sprintf("run-%d", other), ev.name)
	}
}

// TestRunsListLiveFilters checks that a run that stops matching the
// list's filter leaves it, and that a page opened after changes catches up.
func TestRunsListLiveFilters(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	api := a.newAPIClient("list-filter@example.com", teams.RoleOwner)
	browser := a.client()
	require.Equal(t, http.StatusSeeOther, browser.logIn("list-filter@example.com", password).StatusCode)
	id := api.startRunAPI(gatePlan)
	api.waitRun(id, "waiting")

	res := browser.get("/runs?status=waiting")
	require.Equal(t, http.StatusOK, res.StatusCode)
	doc := res.Doc(t)
	require.Equal(t, 1, doc.Find(fmt.Sprintf(`[data-testid=run-row-%d]`, id)).Length())
	waiting := browser.openEvents(doc.Find(`[data-testid=dashboard]`).AttrOr("sse-connect", ""))

	res = api.do(http.MethodPost, fmt.Sprintf("/api/v1/runs/%d/steps/gate/approve", id), `{}`)
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	ev := waiting.waitFor(fmt.Sprintf("run-%d", id), "no longer listed")
	require.NotContains(t, ev.data, "<tr", "the row is removed")

	// A stream opened with an old "since" sends the rows changed after it.
	old := browser.openEvents(fmt.Sprintf("/runs/live?top=%d&since=%d", id, time.Now().Add(-time.Minute).UnixMilli()))
	ev = old.waitFor(fmt.Sprintf("run-%d", id), "Succeeded")
	require.Equal(t, "succeeded", rowStatus(t, ev.data, id))

	// Bad cursors and filters are refused before the stream starts.
	for _, path := range []string{"/runs/live?top=x", "/runs/live?since=-1", "/runs/live?status=nope"} {
		require.Equal(t, http.StatusUnprocessableEntity, browser.get(path).StatusCode, path)
	}
	res = a.client().get("/runs/live")
	require.Equal(t, http.StatusSeeOther, res.StatusCode, "signed out: to the log-in page")
	require.True(t, strings.HasPrefix(res.Header.Get("Location"), "/login"), res.Header.Get("Location"))
}

// TestRunsListLiveHoldsAStreamSlot checks that the live list counts among
// the user's open event streams.
func TestRunsListLiveHoldsAStreamSlot(t *testing.T) {
	t.Parallel()
	a := newStreamsApp(t, 1)
	browser := a.client()
	browser.signUp("list-slot@example.com", password)
	s := a.openStream(t, browser.http, "", "/runs/live")
	require.Equal(t, http.StatusOK, s.res.StatusCode, s.body)
	refused := a.openStream(t, browser.http, "", "/runs/live")
	require.Equal(t, http.StatusTooManyRequests, refused.res.StatusCode, refused.body)
	require.NotEmpty(t, refused.res.Header.Get("Retry-After"))
	s.close()
	require.Eventually(t, func() bool {
		s := a.openStream(t, browser.http, "", "/runs/live")
		return s.res.StatusCode == http.StatusOK
	}, 10*time.Second, 20*time.Millisecond, "closing the stream frees its slot")
}
