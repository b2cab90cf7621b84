package web_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/apikeys"
	nofx "github.com/nofxhq/nofx/internal/app"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/teams"
)

// TestBrowserRunPageRidesThroughADatabaseOutage watches a run while
// PostgreSQL cannot be reached: the page says the database is unavailable,
// keeps showing the text the step streams, and once the database is back
// shows the step's success and drops the notice, without a reload.
func TestBrowserRunPageRidesThroughADatabaseOutage(t *testing.T) {
	t.Parallel()
	proxy, url := dbtest.NewProxy(t, dbtest.PostgresURL(t))
	a := newAppTuned(t, url, slog.New(slog.NewTextHandler(io.Discard, nil)), nil,
		func(tu *nofx.Tuning) { tu.StreamKeepalive = 200 * time.Millisecond; tu.Lease = 30 * time.Second })
	ctx := newBrowser(t)
	const email = "outage-browser@example.com"
	signUpInBrowser(ctx, t, a.URL, email)
	_, secret, err := apikeys.Create(context.Background(), a.DB, a.teamOf(email).ID, "outage", teams.RoleOwner, a.userID(email), nil)
	require.NoError(t, err)
	api := &apiClient{t: t, app: a, key: secret}
	id := api.startRunAPI(`{"goal":"Watched through an outage","steps":[{"name":"s","kind":"llm","provider":"simulated","model":"echo",
		"prompt":"one two three four five six seven eight nine ten eleven twelve","options":{"latency_ms":6000}}]}`) // long enough to still stream after the cut on a busy machine

	browserStep(ctx, t, "open the running run, live",
		chromedp.Navigate(fmt.Sprintf("%s/runs/%d", a.URL, id)),
		chromedp.WaitVisible(chromedp.CSS(`[sse-connect][data-live=connected]`)),
		waitFor(textContains(`[data-testid=step-status-s]`, "running")),
		waitFor(textContains(`#output-s`, "one")), // the provider call is under way
	)
	_, err = chromedp.Run(ctx, chromedp.Evaluate[int](`window.__marker = 1`))
	require.NoError(t, err)

	proxy.Cut()
	shown, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelector("#output-s").textContent.length`))
	require.NoError(t, err)
	browserStep(ctx, t, "see the page say the database is unavailable, and the text still stream",
		waitFor(textContains(`[data-testid=live-note]`, "The database is unavailable")),
		waitFor(fmt.Sprintf(`document.querySelector("#output-s").textContent.length > %d`, shown)),
	)
	saveScreenshot(ctx, t, "run-database-outage")
	proxy.Restore()

	browserStep(ctx, t, "see the step succeed and the notice go",
		waitFor(textContains(`[data-testid=step-status-s]`, "succeeded")),
		waitFor(`document.querySelector("[data-testid=live-note]").textContent.trim() === ""`),
		waitFor(textContains(`#output-s`, "twelve")),
	)
	marker, err := chromedp.Run(ctx, chromedp.Evaluate[int](`window.__marker || 0`))
	require.NoError(t, err)
	require.Equal(t, 1, marker, "the page changed without a reload")
}
