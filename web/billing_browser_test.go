package web_test

import (
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/nofxhq/nofx/internal/billing"
)

// A team hits its runs limit: the form says so with a way to upgrade, and
// every page shows the banner; the owner switches to a bigger plan on the
// billing page, which shows its bars and chart, and the run starts.
func TestBrowserRunsLimitUpgradeAndStart(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.setPlanLimits("free", billing.PlanChange{Runs: ptr(int64(2))})
	ctx := newBrowserAnswering(t, 402)
	signUpInBrowser(ctx, t, a.URL, "owner@example.com")
	const plan = `{"goal":"hello","steps":[{"name":"say","kind":"text","prompt":"hi"}]}`
	startRunInBrowser(ctx, t, a.URL, plan)
	startRunInBrowser(ctx, t, a.URL, plan)

	browserStep(ctx, t, "a third run is refused with the plan's limit",
		chromedp.Navigate(a.URL+"/runs/new"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=new-run-form]`)),
		chromedp.Click(chromedp.CSS(`details.advanced > summary`)),
		chromedp.WaitVisible(chromedp.CSS(`#plan`)),
		chromedp.SetValue(chromedp.CSS(`#plan`), plan),
		clickAndLoad(`[data-testid=new-run-form] button[data-testid=start-run]`),
		waitFor(textContains(`[data-testid=plan-limit]`, "The Free plan includes 2 runs a month and this team has started 2 this period.")),
		waitFor(textContains(`[data-testid=usage-banner]`, "2 of 2 runs")),
	)
	saveScreenshot(ctx, t, "billing-limit")

	browserStep(ctx, t, "the upgrade link leads to the billing page, which shows the bars and the chart",
		clickAndLoad(`[data-testid=plan-limit-upgrade]`),
		waitFor(textContains(`[data-testid=plan]`, "Free")),
		waitFor(textContains(`[data-testid=meter-runs-text]`, "2 of 2 used")),
		waitFor(textContains(`[data-testid=meter-runs-text]`, "limit reached")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=runs-chart] svg rect.chart-bar`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=cost-chart] svg`)),
	)
	saveScreenshot(ctx, t, "billing-page")

	browserStep(ctx, t, "the owner switches to Starter",
		clickAndLoad(`[data-testid=choose-starter]`),
		waitFor(textContains(`[data-testid=flash]`, "The team is on the Starter plan now.")),
		waitFor(textContains(`[data-testid=plan]`, "Starter")),
		waitFor(textContains(`[data-testid=meter-runs-text]`, "2 of 2000 used")),
		waitFor(`document.querySelector('[data-testid=usage-banner]') === null`),
	)
	startRunInBrowser(ctx, t, a.URL, plan)

	// The first user is a site admin: the plans and teams pages work in a
	// browser too (no script or style the policy refuses).
	browserStep(ctx, t, "Admin → Plans and Admin → Teams",
		chromedp.Navigate(a.URL+"/admin/plans"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=plan-form-free]`)),
		chromedp.SetValue(chromedp.CSS(`#members-free`), "0"),
		clickAndLoad(`[data-testid=save-plan-free]`),
		waitFor(textContains(`#members-free-error`, "Use a number from 1 to 1000000")),
	)
	saveScreenshot(ctx, t, "admin-plans")
	browserStep(ctx, t, "Admin → Teams moves the team back to Free",
		chromedp.Navigate(a.URL+"/admin/teams"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=teams]`)),
		chromedp.SetValue(chromedp.CSS(`[data-testid=plan-select-owner]`), "free"),
		clickAndLoad(`[data-testid=set-plan-owner]`),
		waitFor(textContains(`[data-testid=flash]`, "The team is on the Free plan now.")),
	)
	saveScreenshot(ctx, t, "admin-teams")
}
