package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// TestBrowserCopyANewKey copies the secrets shown once, a new API key's and
// a deployment's webhook secret, with their buttons, to the clipboard.
func TestBrowserCopyANewKey(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := newBrowser(t)
	signUpInBrowser(ctx, t, a.URL, "copier@example.com")
	for _, name := range []string{"clipboard-read", "clipboard-write"} { // to read back what was copied
		_, err := chromedp.CallBrowser(ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: name}, Setting: browser.PermissionSettingGranted, Origin: a.URL})
		require.NoError(t, err, name)
	}
	browserStep(ctx, t, "make a key",
		chromedp.Navigate(a.URL+"/team/api-keys"),
		chromedp.WaitVisible(chromedp.CSS(`input[name=name]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=name]`), "laptop"),
		clickAndLoad(`[data-testid=create-key]`),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=new-key-secret]`)),
	)
	secret, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(`[data-testid=new-key-secret]`)))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(strings.TrimSpace(secret), "nofx_"), secret)
	browserStep(ctx, t, "copy it",
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=new-key-secret-copy]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=new-key-secret-copy]`)),
		waitFor(textContains(`[data-copy-status=new-key-secret]`, "Copied.")),
	)
	saveScreenshot(ctx, t, "api-key-copied")
	copied, err := chromedp.Run(ctx, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	require.Equal(t, strings.TrimSpace(secret), copied)

	browserStep(ctx, t, "deploy a template",
		chromedp.Navigate(a.URL+"/templates/summary/deployments"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=deploy]`)),
		clickAndLoad(`[data-testid=deploy]`),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=webhook-secret-value]`)),
	)
	hookSecret, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(`[data-testid=webhook-secret-value]`)))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(strings.TrimSpace(hookSecret), "whsec_"), hookSecret)
	browserStep(ctx, t, "copy the webhook secret",
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=webhook-secret-value-copy]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=webhook-secret-value-copy]`)),
		waitFor(textContains(`[data-copy-status=webhook-secret-value]`, "Copied.")),
	)
	copied, err = chromedp.Run(ctx, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	require.Equal(t, strings.TrimSpace(hookSecret), copied)
}

// TestSecretsShownOnceCanBeCopiedWithoutJavaScript checks the page as a
// browser without JavaScript gets it: the copy button stays hidden, and the
// whole secret is in one element that a click selects.
func TestSecretsShownOnceCanBeCopiedWithoutJavaScript(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.client()
	c.signUp("nojs@example.com", password)
	res := c.submit("/team/api-keys", "/team/api-keys", url.Values{"name": {"ci"}, "role": {"member"}})
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	doc := res.Doc(t)
	value := doc.Find(`[data-testid=new-key-secret]`)
	require.True(t, strings.HasPrefix(value.Text(), "nofx_"))
	require.True(t, value.HasClass("secret-value"), "a click selects it all (user-select: all)")
	button := doc.Find(`[data-testid=new-key-secret-copy]`)
	_, hidden := button.Attr("hidden")
	require.True(t, hidden, "the copy button needs JavaScript, which shows it")
	require.Equal(t, "new-key-secret", button.AttrOr("data-copy", ""))
	require.Equal(t, "new-key-secret", value.AttrOr("id", ""))

	// A deployment's webhook secret, the same way.
	const deployments = "/templates/summary/deployments"
	res = c.submit(deployments, deployments, url.Values{"environment": {"production"}, "version": {"1"}})
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	doc = res.Doc(t)
	value = doc.Find(`[data-testid=webhook-secret-value]`)
	require.True(t, strings.HasPrefix(value.Text(), "whsec_"))
	require.True(t, value.HasClass("secret-value"), "a click selects it all (user-select: all)")
	button = doc.Find(`[data-testid=webhook-secret-value-copy]`)
	_, hidden = button.Attr("hidden")
	require.True(t, hidden, "the copy button needs JavaScript, which shows it")
	require.Equal(t, value.AttrOr("id", ""), button.AttrOr("data-copy", ""))
}
