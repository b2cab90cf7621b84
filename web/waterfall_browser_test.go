package web_test

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserWaterfall follows the run page's timing waterfall live: two
// steps that run in parallel after a first, then a last that waits for
// both.
func TestBrowserWaterfall(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := newBrowser(t)
	signUpInBrowser(ctx, t, a.URL, "waterfall@example.com")
	startRunInBrowser(ctx, t, a.URL, `{"goal":"Fan out","steps":[
		{"name":"fetch","kind":"text","prompt":"x"},
		{"name":"left","kind":"llm","provider":"simulated","model":"echo","prompt":"l","needs":["fetch"],"options":{"latency_ms":2500}},
		{"name":"right","kind":"llm","provider":"simulated","model":"echo","prompt":"r","needs":["fetch"],"options":{"latency_ms":2500}},
		{"name":"join","kind":"text","prompt":"j","needs":["left","right"]}]}`)
	browserStep(ctx, t, "see the steps run, live",
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=waterfall]`)),
		waitFor(textContains(`[data-testid=waterfall-words-left]`, "running for")),
		waitFor(textContains(`[data-testid=waterfall-words-join]`, "waiting for its needs")),
		// "running for" ticks between the stream's updates: the same
		// element (a stream's update would replace it) shows a new time.
		waitFor(`(function () {
			var el = document.querySelector('[data-testid=waterfall-words-left] [data-elapsed-ms]');
			if (!el) return false;
			if (el.dataset.seen === undefined) { el.dataset.seen = el.textContent; return false; }
			return el.textContent !== el.dataset.seen;
		})()`),
	)
	browserStep(ctx, t, "see what each waited and ran, once the run is done",
		waitFor(textContains(`[data-testid=run-status]`, "succeeded")),
		waitFor(textContains(`[data-testid=waterfall-words-join]`, "ran")),
		waitFor(textContains(`[data-testid=waterfall-words-left]`, "ran 2.")),
		waitFor(textContains(`[data-testid=waterfall-words-right]`, "ran 2.")),
		// left and right overlap on the drawing: they ran in parallel.
		waitFor(`(function () {
			var l = document.querySelector('[data-testid=waterfall-left] .waterfall-run'),
				r = document.querySelector('[data-testid=waterfall-right] .waterfall-run');
			if (!l || !r) return false;
			var lx = +l.getAttribute('x'), lw = +l.getAttribute('width'), rx = +r.getAttribute('x'), rw = +r.getAttribute('width');
			return lx < rx + rw && rx < lx + lw;
		})()`),
	)
	saveScreenshot(ctx, t, "run-waterfall")
}
