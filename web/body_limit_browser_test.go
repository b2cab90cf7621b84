package web_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/runs"
)

// TestBrowserTooLargeFormKeepsItsText pastes 2 MB into the New run form's
// prompt, over the instance's 1 MB limit: the form is not sent, the prompt
// says how big it is and what fits, and nothing typed is lost. Shortened,
// the same form starts the run.
func TestBrowserTooLargeFormKeepsItsText(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := newBrowser(t)
	signUpInBrowser(ctx, t, a.URL, "paster@example.com")

	browserStep(ctx, t, "paste 2 MB and send",
		chromedp.Navigate(a.URL+"/runs/new"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=new-run-form]`)),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('prompt').value = 'a'.repeat(2000000)`),
		chromedp.Click(chromedp.CSS(`[data-testid=start-run]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=error-too-large]`)),
	)
	saveScreenshot(ctx, t, "form-too-large")
	message, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(`[data-testid=error-too-large]`)))
	require.NoError(t, err)
	require.Contains(t, message, "This is 2.0 MB; this instance accepts at most 1 MB in one request (NOFX_MAX_BODY).")
	state, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]any](`(function () {
		var p = document.getElementById('prompt');
		return {path: location.pathname, length: p.value.length, invalid: p.getAttribute('aria-invalid'),
			describedBy: p.getAttribute('aria-describedby'), focused: document.activeElement === p,
			busy: !!document.querySelector('[data-testid=start-run][aria-busy]')};
	})()`))
	require.NoError(t, err)
	require.Equal(t, "/runs/new", state["path"], "the form was not sent")
	require.EqualValues(t, 2000000, state["length"], "the prompt keeps its text")
	require.Equal(t, "true", state["invalid"])
	require.True(t, strings.HasPrefix(state["describedBy"].(string), "prompt-too-large"), "the message is read with the field: %v", state["describedBy"])
	require.Equal(t, true, state["focused"])
	require.Equal(t, false, state["busy"], "the button stays usable")
	list, err := a.App.Runs.List(context.Background(), ownerOf(t, a, "paster@example.com", a.teamOf("paster@example.com").ID), runs.ListFilter{})
	require.NoError(t, err)
	require.Empty(t, list.Runs, "no run was started")

	browserStep(ctx, t, "shorten it and send again",
		chromedp.Evaluate[chromedp.Void](`document.getElementById('prompt').value = 'a short prompt'`),
		clickAndLoad(`[data-testid=start-run]`),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=run-status]`)),
	)
	path, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.pathname`))
	require.NoError(t, err)
	require.Regexp(t, `^/runs/\d+$`, path)
}
