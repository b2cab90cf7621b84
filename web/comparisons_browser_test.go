package web_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/chromedp/chromedp"
)

// A member compares a template run's step on another model from the run
// page, watches the candidate finish, prefers it, and opens the builder
// with that model in the step, ready to save as a new version.
func TestBrowserCompareModels(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := newBrowser(t)
	signUpInBrowser(ctx, t, a.URL, "owner@example.com")
	c := &apiClient{t: t, app: a, key: a.keyFor("owner@example.com")}
	res := c.do(http.MethodPost, "/api/v1/runs", `{"template":"summary","inputs":{"text":"Tea is a drink made from leaves."}}`)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("start a run of the summary template: %d %s", res.StatusCode, res.Body)
	}
	run := decode[apiRun](t, res).ID
	c.waitRun(run, "succeeded")

	browserStep(ctx, t, "a provider without a model is refused next to the field, keeping the provider",
		chromedp.Navigate(fmt.Sprintf("%s/runs/%d", a.URL, run)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=compare-form-summarize]`)),
		chromedp.SetValue(chromedp.CSS(`#summarize-provider_0`), "simulated"),
		clickAndLoad(`[data-testid=start-compare-summarize]`),
		waitFor(textContains(`[data-testid=compare-error-summarize-model_0]`, "Choose a model.")),
		waitFor(`document.querySelector('#summarize-provider_0').value === 'simulated'`),
	)
	saveScreenshot(ctx, t, "compare-form-problems")
	browserStep(ctx, t, "compare the step on another model from the run page",
		chromedp.SendKeys(chromedp.CSS(`#summarize-model_0`), "lorem"),
		clickAndLoad(`[data-testid=start-compare-summarize]`),
		waitFor(textContains(`[data-testid=candidate-c1]`, "simulated/lorem")),
		waitFor(textContains(`[data-testid=candidate-status-c1]`, "succeeded")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=candidate-output-c1]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=candidate-diff-c1]`)),
	)
	saveScreenshot(ctx, t, "comparison")
	browserStep(ctx, t, "prefer the candidate",
		clickAndLoad(`[data-testid=prefer-c1]`),
		waitFor(textContains(`[data-testid=flash]`, "Your choice is kept")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=preferred-c1]`)),
	)
	browserStep(ctx, t, "use its model in the template",
		clickAndLoad(`[data-testid=use-model-c1]`),
		waitFor(`document.querySelector('#steps-0-model') && document.querySelector('#steps-0-model').value === 'lorem'`),
	)
	browserStep(ctx, t, "the run and the template list the comparison",
		chromedp.Navigate(fmt.Sprintf("%s/runs/%d", a.URL, run)),
		waitFor(textContains(`[data-testid=comparisons]`, "preferred: c1")),
		chromedp.Navigate(a.URL+"/templates/summary"),
		waitFor(textContains(`[data-testid=template-comparisons]`, "step summarize")),
	)
}
