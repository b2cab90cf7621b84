package web_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/db"
)

// A site admin opens Health with this node and a stuck step, follows it to
// Dead letters, retries it once its data is mended, and sees its run finish.
func TestBrowserHealthAndDeadLetter(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := newBrowser(t)
	signUpInBrowser(ctx, t, a.URL, "root@example.com") // the first user: a site admin
	c := &apiClient{t: t, app: a, key: a.keyFor("root@example.com")}
	run := startBrokenRun(t, a, c)

	browserStep(ctx, t, "Health lists this node and the stuck step",
		chromedp.Navigate(a.URL+"/admin/health"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="node-`+a.App.Heart.ID()+`"]`)),
		waitFor(textContains(`[data-testid=queue-dead]`, "1")),
		waitFor(textContains(`[data-testid=problem-dead_letters]`, "1 step could not be run")),
	)
	saveScreenshot(ctx, t, "admin-health")
	_, err := db.Exec(context.Background(), a.DB, `UPDATE runs SET inputs = '{}' WHERE id = ?`, run)
	require.NoError(t, err)
	browserStep(ctx, t, "retry the dead letter",
		clickAndLoad(`[data-testid=queue-dead] a`),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=dead-letters]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=dead-letters] input[name=job]`)),
		clickAndLoad(`[data-testid=retry-selected]`),
		waitFor(textContains(`[data-testid=flash]`, "1 dead letter retried.")),
	)
	browserStep(ctx, t, "the run finishes",
		chromedp.Navigate(fmt.Sprintf("%s/runs/%d", a.URL, run)),
		waitFor(textContains(`[data-testid=run-status]`, "succeeded")),
	)
}
