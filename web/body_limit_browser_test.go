package web_test

import (
	"context"
	"net/http"
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

// TestBrowserTooLargeBuilderKeepsItsText pastes 2 MB into a step's prompt
// in the template builder, whose buttons post through htmx: Preview and Add
// step are not sent either, and the prompt says why. A body the page did
// not see coming (the limit lowered under it) is still answered beside the
// form, which keeps its text.
func TestBrowserTooLargeBuilderKeepsItsText(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := newBrowserAnswering(t, http.StatusRequestEntityTooLarge)
	signUpInBrowser(ctx, t, a.URL, "builder-paster@example.com")

	browserStep(ctx, t, "paste 2 MB into a step and preview",
		chromedp.Navigate(a.URL+"/templates/new"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=builder-form]`)),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('steps-0-prompt').value = 'word '.repeat(400000)`),
		chromedp.Click(chromedp.CSS(`[data-testid=preview-template]`)),
		chromedp.WaitVisible(chromedp.CSS(`#steps-0-prompt-too-large`)),
	)
	message, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(`#steps-0-prompt-too-large`)))
	require.NoError(t, err)
	require.Contains(t, message, "This is 2.0 MB;", "a space is sent as one byte")
	browserStep(ctx, t, "add a step: refused the same way",
		chromedp.Evaluate[chromedp.Void](`document.getElementById('steps-0-prompt-too-large').remove()`),
		chromedp.Click(chromedp.CSS(`[data-testid=add-step]`)),
		chromedp.WaitVisible(chromedp.CSS(`#steps-0-prompt-too-large`)),
	)
	state, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]any](`({length: document.getElementById('steps-0-prompt').value.length,
		steps: document.querySelectorAll('[id$=-prompt][id^=steps-]').length})`))
	require.NoError(t, err)
	require.EqualValues(t, 2000000, state["length"], "the prompt keeps its text")
	require.EqualValues(t, 1, state["steps"], "no step was added: nothing was sent")

	// The page's limit lowered under it: the server answers 413, and the
	// form says so above itself, keeping the text.
	browserStep(ctx, t, "a 413 the page did not expect",
		chromedp.Evaluate[chromedp.Void](`document.body.dataset.maxBody = '100000000'; document.querySelectorAll('[data-too-large]').forEach(function (e) { e.remove(); })`),
		chromedp.Click(chromedp.CSS(`[data-testid=preview-template]`)),
		chromedp.WaitVisible(chromedp.CSS(`#builder [data-testid=error-too-large].alert`)),
	)
	text, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(`#builder [data-testid=error-too-large].alert`)))
	require.NoError(t, err)
	require.Contains(t, text, "more than this instance accepts in one request (1 MB, NOFX_MAX_BODY)")
	length, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.getElementById('steps-0-prompt').value.length`))
	require.NoError(t, err)
	require.Equal(t, 2000000, length)
}
