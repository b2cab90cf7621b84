package web_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/apikeys"
	"github.com/nofxhq/nofx/internal/config"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/teams"
)

// TestBrowserRunPageFollowsTheTeamsSlots opens a queued run while another
// run of the team takes the team's only slot and then frees it: the step's
// card says it waits for a slot, then no longer, without a reload. No worker
// runs, so only the other run changes.
func TestBrowserRunPageFollowsTheTeamsSlots(t *testing.T) {
	t.Parallel()
	a := newAppWith(t, dbtest.SQLiteURL(t), slog.New(slog.NewTextHandler(io.Discard, nil)), func(c *config.Config) {
		c.Workers, c.TeamConcurrency = 0, 1
	})
	ctx := newBrowser(t)
	const email = "slots-browser@example.com"
	signUpInBrowser(ctx, t, a.URL, email)
	_, secret, err := apikeys.Create(context.Background(), a.DB, a.teamOf(email).ID, "slots", teams.RoleOwner, a.userID(email), nil)
	require.NoError(t, err)
	api := &apiClient{t: t, app: a, key: secret}
	step := `{"goal":"%s","steps":[{"name":"s","kind":"llm","provider":"simulated","model":"echo","prompt":"x"}]}`
	other := api.startRunAPI(fmt.Sprintf(step, "Takes the slot"))
	waiting := api.startRunAPI(fmt.Sprintf(step, "Waits for it"))

	browserStep(ctx, t, "open the queued run, live",
		chromedp.Navigate(fmt.Sprintf("%s/runs/%d", a.URL, waiting)),
		chromedp.WaitVisible(chromedp.CSS(`[sse-connect][data-live=connected]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`[data-testid=step-team-wait-s]`)),
	)
	_, err = chromedp.Run(ctx, chromedp.Evaluate[int](`window.__marker = 1`))
	require.NoError(t, err)

	claim := a.claimOnlyStep(other)
	browserStep(ctx, t, "see the step wait for the team's slot",
		waitFor(textContains(`[data-testid=step-team-wait-s]`, "your team is running 1 step, as many as it may at once (1)")),
	)
	saveScreenshot(ctx, t, "run-team-slot-wait")

	require.NoError(t, a.App.Runs.Complete(context.Background(), claim, "done", runs.Usage{}))
	browserStep(ctx, t, "see the wait go when the slot frees",
		chromedp.WaitNotPresent(chromedp.CSS(`[data-testid=step-team-wait-s]`)),
	)
	marker, err := chromedp.Run(ctx, chromedp.Evaluate[int](`window.__marker || 0`))
	require.NoError(t, err)
	require.Equal(t, 1, marker, "the page changed without a reload")
}
