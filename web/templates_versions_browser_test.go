package web_test

import (
	"context"
	"testing"

	"github.com/chromedp/chromedp"
)

// runJS runs a script in the page, as a step of a browser test.
func runJS(script string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](`(function () {`+script+`; return true; })()`)(ctx, t)
		return err
	})
}

// TestBrowserTemplateVersions starts a starter template from its generated
// run form (a missing field first, then the run to success), imports an
// edited copy of its JSON as version 2, compares the two versions in
// history, and makes version 1 current again.
func TestBrowserTemplateVersions(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := newBrowser(t)

	browserStep(ctx, t, "sign up and open the fan-out starter's run form",
		chromedp.Navigate(a.URL+"/signup"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=signup-form]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=signup-form] input[name=email]`), "versions-browser@example.com"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=signup-form] input[name=password]`), password),
		chromedp.Click(chromedp.CSS(`[data-testid=signup-form] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=dashboard]`)),
		chromedp.Navigate(a.URL+"/runs/new"),
		waitFor(`!!document.querySelector('a[href="/templates/fan-out/run"]')`),
		clickAndLoad(`a[href="/templates/fan-out/run"]`),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=template-run-form]`)),
		waitFor(`document.activeElement && document.activeElement.id === 'input-topic'`),
	)
	browserStep(ctx, t, "a required input left empty is named next to its field",
		clickAndLoad(`[data-testid=start-template-run]`),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=error-input-topic]`)),
		waitFor(`document.querySelector('#input-topic').getAttribute('aria-invalid') === 'true'`),
		waitFor(`document.querySelector('#input-points').value === '3'`),
	)
	browserStep(ctx, t, "fill it in and watch the run succeed",
		chromedp.SendKeys(chromedp.CSS(`#input-topic`), "tea"),
		clickAndLoad(`[data-testid=start-template-run]`),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=run-page]`)),
		waitFor(textContains(`[data-testid=run-template]`, "fan-out")),
		waitFor(textContains(`[data-testid=run-status]`, "succeeded")),
	)

	browserStep(ctx, t, "import an edited copy of the JSON as version 2",
		chromedp.Navigate(a.URL+"/templates/fan-out/json"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=import-form]`)),
		runJS(`var spec = JSON.parse(document.querySelector('[data-testid=export-json]').textContent);
			spec.description = 'Weighs both sides of a topic, briefly.';
			document.querySelector('#import-json').value = JSON.stringify(spec, null, 2);`),
		chromedp.SendKeys(chromedp.CSS(`#import-note`), "Shorter description"),
		clickAndLoad(`[data-testid=import-version]`),
		waitFor(textContains(`main`, "version 2")),
	)
	browserStep(ctx, t, "history lists both versions; compare them",
		chromedp.Navigate(a.URL+"/templates/fan-out/versions"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=versions-table]`)),
		waitFor(textContains(`[data-testid=version-2]`, "Shorter description")),
		waitFor(`!!document.querySelector('[data-testid=version-2] [data-testid=current-badge]')`),
		clickAndLoad(`[data-testid=compare]`),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=diff-page]`)),
		waitFor(textContains(`[data-testid=diff-add]`, "Weighs both sides of a topic, briefly.")),
		waitFor(textContains(`[data-testid=diff-del]`, "Weighs the pros and the cons")),
	)
	browserStep(ctx, t, "make version 1 current again",
		chromedp.Navigate(a.URL+"/templates/fan-out/versions"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=rollback-1]`)),
		clickAndLoad(`[data-testid=rollback-1]`),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=version-1] [data-testid=current-badge]`)),
		waitFor(`!document.querySelector('[data-testid=version-2] [data-testid=current-badge]')`),
	)
}
