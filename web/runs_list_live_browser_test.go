package web_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/apikeys"
	"github.com/nofxhq/nofx/internal/teams"
)

// TestBrowserRunsListLive opens the runs list of a new team and starts
// runs through the API: the first appears in place of the empty state, the
// next on top, and each shows its status change, all without a reload.
func TestBrowserRunsListLive(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := newBrowser(t)
	const email = "list-browser@example.com"

	signUpInBrowser(ctx, t, a.URL, email)
	browserStep(ctx, t, "see the empty list connected",
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=start-run]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=dashboard][data-live=connected]`)),
	)
	_, err := chromedp.Run(ctx, chromedp.Evaluate[int](`window.__marker = 1`))
	require.NoError(t, err)

	_, secret, err := apikeys.Create(context.Background(), a.DB, a.teamOf(email).ID, "list", teams.RoleOwner, a.userID(email), nil)
	require.NoError(t, err)
	api := &apiClient{t: t, app: a, key: secret}
	plan := `{"goal":"Appears live","steps":[{"name":"say","kind":"llm","provider":"simulated","model":"echo","prompt":"hi","options":{"latency_ms":400}}]}`

	first := api.startRunAPI(plan)
	browserStep(ctx, t, "see the first run appear and succeed",
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`[data-testid=runs-table] [data-testid=run-row-%d]`, first))),
		waitFor(textContains(fmt.Sprintf(`[data-testid=run-row-%d] [data-testid=run-status]`, first), "succeeded")),
		waitFor(textContains(fmt.Sprintf(`[data-testid=run-row-%d] .progress-text`, first), "1/1")),
	)

	second := api.startRunAPI(plan)
	browserStep(ctx, t, "see the next run on top, succeeded",
		waitFor(fmt.Sprintf(`(function () {
			var rows = document.querySelectorAll('[data-testid=runs-table] tbody tr');
			return rows.length === 2 && rows[0].dataset.testid === 'run-row-%d' && rows[1].dataset.testid === 'run-row-%d';
		})()`, second, first)),
		waitFor(textContains(fmt.Sprintf(`[data-testid=run-row-%d] [data-testid=run-status]`, second), "succeeded")),
	)
	saveScreenshot(ctx, t, "runs-list-live")
	marker, err := chromedp.Run(ctx, chromedp.Evaluate[int](`window.__marker || 0`))
	require.NoError(t, err)
	require.Equal(t, 1, marker, "the list changed without a reload")

	// A filtered list lets go of a run that no longer matches.
	gated := api.startRunAPI(gatePlan)
	api.waitRun(gated, "waiting")
	row := fmt.Sprintf(`[data-testid=runs-table] [data-testid=run-row-%d]`, gated)
	browserStep(ctx, t, "open the waiting runs",
		chromedp.Navigate(a.URL+"/runs?status=waiting"),
		chromedp.WaitVisible(chromedp.CSS(row)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=dashboard][data-live=connected]`)),
	)
	res := api.do(http.MethodPost, fmt.Sprintf("/api/v1/runs/%d/steps/gate/approve", gated), `{}`)
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	browserStep(ctx, t, "see the approved run leave the waiting runs",
		chromedp.WaitNotPresent(chromedp.CSS(row)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=runs-table]`)),
	)
}
