package web_test

import (
	"net/http"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// TestBrowserDeploymentsIndex follows the top navigation to every
// deployment of the team, and from one to its template's page.
func TestBrowserDeploymentsIndex(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := newBrowser(t)
	signUpInBrowser(ctx, t, a.URL, "deployer@example.com")

	browserStep(ctx, t, "open Deployments from the navigation",
		clickAndLoad(`header nav a[href="/deployments"]`),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=deployments-index] [data-testid=empty-state]`)),
		waitFor(textContains(`[data-testid=empty-state]`, "Nothing is deployed yet")),
	)

	c := &apiClient{t: t, app: a, key: a.keyFor("deployer@example.com")}
	res := c.do(http.MethodPost, "/api/v1/templates/summary/deploy", `{"environment":"production","version":1}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	res = c.do(http.MethodPost, "/api/v1/deployments/summary/production/runs", `{"inputs":{"text":"Hello"}}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	run := decode[apiRun](t, res)

	browserStep(ctx, t, "see the deployment and its last run",
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=deployment-summary-production]`)),
		waitFor(textContains(`[data-testid=deployment-summary-production]`, "production")),
		waitFor(textContains(`[data-testid=deployment-summary-production]`, "active")),
		waitFor(textContains(`[data-testid=deployment-summary-production]`, "#"+itoa(run.ID))),
		waitFor(`document.querySelector('header nav a[href="/deployments"]').getAttribute('aria-current') === 'page'`),
	)
	saveScreenshot(ctx, t, "deployments-index")
	browserStep(ctx, t, "go to the template's deployments",
		clickAndLoad(`[data-testid=deployment-summary-production] td:first-child a`),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=deployments-page] [data-testid=env-production]`)),
	)
}
