package web_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// TestUpdateProfile changes the name and the email from the account page;
// problems come back next to their fields with what was typed.
func TestUpdateProfile(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.client()
	c.signUp("profile@example.com", password)
	a.client().signUp("someone@example.com", password)

	res := c.submit("/account", "/account/profile", url.Values{"name": {"Grace"}, "email": {"grace@example.com"}})
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	doc := res.Doc(t)
	require.Contains(t, doc.Find(`[data-testid=profile-form] [data-testid=error-current_password]`).Text(), "current password")
	require.Equal(t, "Grace", doc.Find(`#name`).AttrOr("value", ""), "what was typed is kept")
	require.Equal(t, "grace@example.com", doc.Find(`#email`).AttrOr("value", ""))
	require.Empty(t, doc.Find(`[data-testid=password-form] [data-testid=error-current_password]`).Text(), "the password form is not blamed")

	res = c.submit("/account", "/account/profile", url.Values{"name": {"Grace"}, "email": {"someone@example.com"}, "current_password": {password}})
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Contains(t, res.Doc(t).Find(`[data-testid=error-email]`).Text(), "Another account")

	other := a.client()
	require.Equal(t, http.StatusSeeOther, other.logIn("profile@example.com", password).StatusCode)
	res = c.submit("/account", "/account/profile", url.Values{"name": {"Grace Hopper"}, "email": {"grace@example.com"}, "current_password": {password}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	doc = c.get("/account").Doc(t)
	require.Contains(t, doc.Find(`[data-testid=flash]`).Text(), "other sessions were signed out")
	require.Equal(t, http.StatusSeeOther, other.get("/runs").StatusCode, "the other session is signed out")
	require.Equal(t, "grace@example.com", doc.Find(`#email`).AttrOr("value", ""))
	require.Equal(t, http.StatusSeeOther, a.client().logIn("grace@example.com", password).StatusCode, "the new email signs in")
	require.Equal(t, http.StatusUnauthorized, a.client().logIn("profile@example.com", password).StatusCode)
}

// TestBrowserRenameShowsInTheHeader renames the user on the account page,
// with the keyboard, and finds the new name in the header.
func TestBrowserRenameShowsInTheHeader(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := newBrowser(t)
	signUpInBrowser(ctx, t, a.URL, "rename@example.com")
	browserStep(ctx, t, "open the account page", chromedp.Navigate(a.URL+"/account"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=profile-form]`)))
	browserStep(ctx, t, "try another email without the password",
		chromedp.SetValue(chromedp.CSS(`#email`), "elsewhere@example.com"),
		clickAndLoad(`[data-testid=save-profile]`),
		waitFor(textContains(`[data-testid=profile-form] [data-testid=error-current_password]`, "current password")),
	)
	browserStep(ctx, t, "rename, keeping the email",
		chromedp.SetValue(chromedp.CSS(`#email`), "rename@example.com"),
		chromedp.Clear(chromedp.CSS(`#name`)),
		chromedp.SendKeys(chromedp.CSS(`#name`), "Margaret Hamilton"),
		clickAndLoad(`[data-testid=save-profile]`),
		waitFor(textContains(`[data-testid=flash]`, "Your profile is saved.")),
		waitFor(textContains(`header`, "Margaret Hamilton")),
	)
	saveScreenshot(ctx, t, "account-profile")
}
