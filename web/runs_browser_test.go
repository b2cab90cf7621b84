package web_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/teams"
)

// liveWait bounds each wait for the run page to change by itself.
const liveWait = 20 * time.Second

// textContains is a JavaScript predicate: the element matching selector
// contains text (case-insensitive).
func textContains(selector, text string) string {
	return `(function () {
		var el = document.querySelector(` + jsString(selector) + `);
		return !!el && el.textContent.toLowerCase().indexOf(` + jsString(strings.ToLower(text)) + `) >= 0;
	})()`
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`, "\r", `\r`, "<", `\x3c`)
	return "'" + r.Replace(s) + "'"
}

// waitFor polls a JavaScript predicate until it is true.
func waitFor(predicate string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingTimeout(liveWait))
}

// clickAndLoad clicks the element matching selector and waits for the page
// it leads to to load.
func clickAndLoad(selector string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(selector)))(ctx, t)
		return err
	})
}

// signUpInBrowser signs email up through the form and waits for the runs
// list it lands on.
func signUpInBrowser(ctx context.Context, t *testing.T, base, email string) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(base+"/signup"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=signup-form]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=signup-form] input[name=email]`), email),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=signup-form] input[name=password]`), password),
		chromedp.Click(chromedp.CSS(`[data-testid=signup-form] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=dashboard]`)),
	), "sign up and land on the runs list")
}

// startRunInBrowser fills the new run form with a plan and submits it.
func startRunInBrowser(ctx context.Context, t *testing.T, base, plan string) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(base+"/runs/new"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=new-run-form]`)),
		chromedp.Click(chromedp.CSS(`details.advanced > summary`)),
		chromedp.WaitVisible(chromedp.CSS(`#plan`)),
		chromedp.SetValue(chromedp.CSS(`#plan`), plan),
		clickAndLoad(`[data-testid=new-run-form] button[data-testid=start-run]`),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=run-page]`)),
	), "start a run from the form")
}

// TestBrowserRunLive starts runs from the form and follows them live:
// tokens stream into a step's output, the step and the run change state
// without a reload, an approval is approved, and a failed run is retried.
func TestBrowserRunLive(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := newBrowser(t)

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(a.URL+"/signup"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=signup-form]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=signup-form] input[name=email]`), "live@example.com"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=signup-form] input[name=password]`), password),
		chromedp.Click(chromedp.CSS(`[data-testid=signup-form] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=dashboard]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=start-run]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=new-run-form]`)),
	), "sign up and open the new run form")

	// A slow llm step, then an approval. A gate in front holds the llm step
	// until the page is connected, so that its tokens cannot all stream
	// before the page listens, however slow the machine.
	startRunInBrowser(ctx, t, a.URL, `{"goal":"Write and approve","steps":[
		{"name":"start","kind":"approval","prompt":"Go?"},
		{"name":"draft","kind":"llm","provider":"simulated","model":"lorem","prompt":"release notes","needs":["start"],"options":{"latency_ms":1500}},
		{"name":"review","kind":"approval","needs":["draft"],"prompt":"Publish this?\n{{steps.draft.output}}"}]}`)
	_, err := chromedp.Run(ctx, chromedp.Evaluate[int](`window.__marker = 1`))
	require.NoError(t, err)
	browserStep(ctx, t, "see the run wait at the gate, connected",
		waitFor(textContains(`[data-testid=run-status]`, "waiting")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=run-page][data-live=connected]`)),
		waitFor(liveIndicatorShown(true)),
	)
	approveAsOwner(t, a, ctx, "live@example.com", "start")

	browserStep(ctx, t, "see tokens stream in",
		waitFor(`(function () {
			var status = document.querySelector('[data-testid=step-status-draft]');
			var out = document.querySelector('[data-testid=step-output-draft]');
			return !!status && !!out && status.textContent.indexOf('Running') >= 0 && out.textContent.trim().length > 0;
		})()`),
	)
	saveScreenshot(ctx, t, "run-streaming")
	require.NoError(t, chromedp.Do(ctx,
		waitFor(textContains(`[data-testid=step-status-draft]`, "succeeded")),
		waitFor(textContains(`[data-testid=step-status-review]`, "waiting")),
		waitFor(textContains(`[data-testid=run-status]`, "waiting")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=approve-review]`)),
	), "watch the llm step stream and succeed")
	marker, err := chromedp.Run(ctx, chromedp.Evaluate[int](`window.__marker || 0`))
	require.NoError(t, err)
	require.Equal(t, 1, marker, "the page changed without a reload")
	output, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(`[data-testid=step-output-draft]`)))
	require.NoError(t, err)
	require.Len(t, strings.Fields(output), 50, "the whole lorem output, streamed or sent at the end")
	message, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(`[data-testid=approval-review]`)))
	require.NoError(t, err)
	require.Contains(t, message, strings.Fields(output)[0], "the approval message is rendered with the draft")
	saveScreenshot(ctx, t, "run-waiting")

	// Approve it, with a comment.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`#comment-review`), "Ship it"),
		clickAndLoad(`[data-testid=approve-review]`),
		waitFor(textContains(`[data-testid=flash]`, "Step review approved.")),
		waitFor(textContains(`[data-testid=run-status]`, "succeeded")),
		waitFor(textContains(`[data-testid=timeline]`, "Approved: Ship it")),
		chromedp.WaitNotPresent(chromedp.CSS(`[data-testid=cancel-run]`)),
		waitFor(liveIndicatorShown(false)), // still listening, for a retry elsewhere, but not "Live"
	), "approve the waiting step")

	// A run that fails, then its retry, which fails again.
	startRunInBrowser(ctx, t, a.URL, `{"goal":"Doomed","steps":[
		{"name":"flaky","kind":"llm","provider":"simulated","model":"echo","prompt":"hi","max_attempts":1,
		 "options":{"fail_rate":1,"fail_status":400}}]}`)
	browserStep(ctx, t, "see the run fail",
		waitFor(textContains(`[data-testid=run-status]`, "failed")),
		waitFor(textContains(`[data-testid=step-status-flaky]`, "failed")),
		waitFor(textContains(`[data-testid=step-error-flaky]`, "status 400")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=retry-run]`)),
	)
	browserStep(ctx, t, "retry it", clickAndLoad(`[data-testid=retry-run]`))
	browserStep(ctx, t, "see the retry", waitFor(textContains(`[data-testid=flash]`, "Run retried")),
		waitFor(textContains(`[data-testid=timeline]`, "Run retried")))
	browserStep(ctx, t, "see it fail again",
		waitFor(`Array.prototype.filter.call(document.querySelectorAll('[data-testid=timeline] li'),
			function (li) { return li.textContent.indexOf('Run failed') >= 0; }).length === 2`),
		waitFor(textContains(`[data-testid=run-status]`, "failed")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=retry-run]`)),
	)
	saveScreenshot(ctx, t, "run-failed")
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(a.URL+"/runs"), chromedp.WaitVisible(chromedp.CSS(`[data-testid=runs-table]`))))
	saveScreenshot(ctx, t, "runs-list")
}

// liveIndicatorShown is a predicate: the run page's "Live" is shown, or not.
func liveIndicatorShown(shown bool) string {
	return fmt.Sprintf(`(getComputedStyle(document.querySelector('[data-testid=live-indicator]')).display !== 'none') === %t`, shown)
}

// approveAsOwner approves a waiting step of the run the browser shows, as
// the owner of email's team, outside the browser: the page must learn of it
// live.
func approveAsOwner(t *testing.T, a *app, ctx context.Context, email, step string) {
	t.Helper()
	location, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	id, err := strconv.ParseInt(location[strings.LastIndex(location, "/")+1:], 10, 64)
	require.NoError(t, err, location)
	user, err := auth.UserByEmail(context.Background(), a.DB, email)
	require.NoError(t, err)
	ms, err := teams.ForUser(context.Background(), a.DB, user.ID)
	require.NoError(t, err)
	owner := access.Actor{UserID: user.ID, TeamID: ms[0].ID, Role: teams.RoleOwner}
	require.NoError(t, a.App.Runs.Decide(context.Background(), owner, id, step, true, ""))
}

// browserStep runs actions; when one fails, the test fails with what the
// page shows.
func browserStep(ctx context.Context, t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector('main') || document.body).innerText`))
		t.Fatalf("%s: %v\nThe page shows:\n%s", what, err, text)
	}
}

// saveScreenshot writes the page to $NOFX_SCREENSHOT_DIR/name.png when that
// variable is set, for people checking how the page looks.
func saveScreenshot(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	dir := os.Getenv("NOFX_SCREENSHOT_DIR")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(dir+"/"+name+".png", png, 0o644))
}

// TestBrowserModelFollowsTheProvider chooses another provider on the New
// run form: its model is suggested and its hint shown, unless a model was
// typed by hand.
func TestBrowserModelFollowsTheProvider(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := newBrowser(t)
	signUpInBrowser(ctx, t, a.URL, "chooser@example.com")
	owner := ownerOf(t, a, "chooser@example.com", a.teamOf("chooser@example.com").ID)
	require.NoError(t, a.App.Keys.Set(context.Background(), owner, "anthropic", "sk-ant-api03-team-secret-4321"))

	field := func() (model, hint string) {
		t.Helper()
		got, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[document.getElementById('model').value, document.getElementById('model-hint').textContent.trim()]`))
		require.NoError(t, err)
		return got[0], got[1]
	}
	browserStep(ctx, t, "open the form",
		chromedp.Navigate(a.URL+"/runs/new"),
		chromedp.WaitVisible(chromedp.CSS(`select#provider`)),
	)
	model, hint := field()
	require.Equal(t, "echo", model)
	require.Equal(t, "simulated: echo or lorem.", hint)

	browserStep(ctx, t, "choose anthropic", chromedp.SetValue(chromedp.CSS(`select#provider`), "anthropic"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('provider').dispatchEvent(new Event('change'))`))
	model, hint = field()
	require.Equal(t, "claude-sonnet-4-5", model, "the echo model does not stay behind")
	require.Equal(t, "anthropic: such as claude-sonnet-4-5.", hint)

	browserStep(ctx, t, "type a model, then choose simulated",
		chromedp.SetValue(chromedp.CSS(`#model`), "claude-opus-4-1"),
		chromedp.SetValue(chromedp.CSS(`select#provider`), "simulated"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('provider').dispatchEvent(new Event('change'))`))
	model, hint = field()
	require.Equal(t, "claude-opus-4-1", model, "a model typed by hand is kept")
	require.Equal(t, "simulated: echo or lorem.", hint)
}
