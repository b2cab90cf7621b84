package web_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

// The table of safeNext itself, and its fuzz test, are in
// web/pages/redirect_fuzz_test.go: they are in package pages, which cannot import the
// app that this package's harness starts.

const redirectPassword = "redirect tests pw"

// TestLoginNextRedirect follows a log-in link as a browser does (the query
// as written in the link, the form's hidden next field posted back) and
// checks where the log-in sends the user.
func TestLoginNextRedirect(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.client().signUp("next@example.com", redirectPassword)

	for _, tc := range []struct {
		name, query, want string
	}{
		{"tab before a second slash", "next=/%09/other-host", "/runs"},
		{"newline before a second slash", "next=/%0A/other-host", "/runs"},
		{"encoded slashes", "next=/%252F%252Fother-host", "/runs"},
		{"encoded backslash", "next=/%255Cother-host", "/runs"},
		{"a page on this site", "next=/templates", "/templates"},
		{"a page with a query", "next=" + url.QueryEscape("/runs?status=failed"), "/runs?status=failed"},
	} {
		// Not subtests: the harness's client reports to the test that made the app.
		c := a.client()
		page := "/login?" + tc.query
		values := url.Values{"email": {"next@example.com"}, "password": {redirectPassword}}
		if next, ok := c.get(page).Doc(t).Find(`form input[name="next"]`).Attr("value"); ok {
			values.Set("next", next)
		}
		res := c.submit(page, "/login", values)
		require.Equal(t, http.StatusSeeOther, res.StatusCode, "%s: %s", tc.name, res.Body)
		require.Equal(t, tc.want, res.Header.Get("Location"), "log in: %s", tc.name)

		// Signed in, the log-in page sends the user on at once.
		res = c.get(page)
		require.Equal(t, http.StatusSeeOther, res.StatusCode, tc.name)
		require.Equal(t, tc.want, res.Header.Get("Location"), "signed in: %s", tc.name)
	}
}

// TestPostedNextRedirect posts a next field directly, as a forged form
// would, to log-in and sign-up.
func TestPostedNextRedirect(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.client().signUp("posted@example.com", redirectPassword)

	for i, tc := range []struct{ next, want string }{
		{"/\t/other-host", "/runs"},
		{"/\r\n/other-host", "/runs"},
		{"/%2F%2Fother-host", "/runs"},
		{"/%5Cother-host", "/runs"},
		{"/\u200b/other-host", "/runs"},
		{"/templates", "/templates"},
	} {
		res := a.client().submit("/login", "/login", url.Values{
			"email": {"posted@example.com"}, "password": {redirectPassword}, "next": {tc.next},
		})
		require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
		require.Equal(t, tc.want, res.Header.Get("Location"), "log in with next=%q", tc.next)

		res = a.client().submit("/signup", "/signup", url.Values{
			"email": {"signup" + string(rune('a'+i)) + "@example.com"}, "password": {redirectPassword}, "next": {tc.next},
		})
		require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
		require.Equal(t, tc.want, res.Header.Get("Location"), "sign up with next=%q", tc.next)
	}
}
