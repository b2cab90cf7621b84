package web_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/config"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/logtest"
	"github.com/nofxhq/nofx/internal/mail"
	"github.com/nofxhq/nofx/internal/teams"
)

func loopbackProxy() []*net.IPNet {
	return []*net.IPNet{{IP: net.IPv4(127, 0, 0, 1).To4(), Mask: net.CIDRMask(32, 32)}}
}

// A cookie and a field that an attacker set to the same value no longer
// pass: the token must be the one the server bound to the browser.
func TestCSRFDoubleSubmitWithChosenValueIsRefused(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.client()
	u, err := url.Parse(a.URL)
	require.NoError(t, err)
	c.http.Jar.SetCookies(u, []*http.Cookie{{Name: "nofx_csrf", Value: "attacker"}})
	res := c.postForm("/signup", url.Values{"_csrf": {"attacker"}, "email": {"csrf@example.com"}, "password": {password}})
	require.Equal(t, http.StatusForbidden, res.StatusCode)

	// Nor does a well-formed visitor id with a field the attacker chose.
	c.http.Jar.SetCookies(u, []*http.Cookie{{Name: "nofx_csrf", Value: strings.Repeat("A", 43)}})
	res = c.postForm("/signup", url.Values{"_csrf": {strings.Repeat("A", 43)}, "email": {"csrf@example.com"}, "password": {password}})
	require.Equal(t, http.StatusForbidden, res.StatusCode)

	n, err := auth.CountUsers(context.Background(), a.DB)
	require.NoError(t, err)
	require.Zero(t, n)
}

// The token is bound to the session: it changes at log-in, and one
// browser's token does not work in another's session.
func TestCSRFTokenIsBoundToTheSessionAndRotatesAtLogIn(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.client().signUp("bound@example.com", password)

	c := a.client()
	before := c.csrf("/login")
	require.Equal(t, http.StatusSeeOther, c.logIn("bound@example.com", password).StatusCode)
	after := c.csrf("/account")
	require.NotEqual(t, before, after, "the token is rotated at log-in")
	res := c.postForm("/logout", url.Values{"_csrf": {before}})
	require.Equal(t, http.StatusForbidden, res.StatusCode, "the pre-log-in token no longer works")

	other := a.client()
	require.Equal(t, http.StatusSeeOther, other.logIn("bound@example.com", password).StatusCode)
	res = other.postForm("/logout", url.Values{"_csrf": {after}})
	require.Equal(t, http.StatusForbidden, res.StatusCode, "another session's token does not work")
	res = c.postForm("/logout", url.Values{"_csrf": {after}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, "the session's own token works")
}

func TestRequestIDFromClientIsKeptOnlyWhenShortAndPlain(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	get := func(id string) string {
		req, err := http.NewRequest(http.MethodGet, a.URL+"/login", nil)
		require.NoError(t, err)
		req.Header.Set("X-Request-Id", id)
		return a.client().do(req).Header.Get("X-Request-Id")
	}
	require.Equal(t, "trace-42.a:b_c", get("trace-42.a:b_c"))
	for _, bad := range []string{strings.Repeat("x", 3000), "has space", "new\u00e9line", "<script>", strings.Repeat("y", 65)} {
		got := get(bad)
		require.NotEqual(t, bad, got)
		require.NotEmpty(t, got, "a fresh id is made instead")
		require.LessOrEqual(t, len(got), 64)
	}

	// What the audit log stores is the id the server answered with.
	c := a.client()
	token := c.csrf("/login")
	req, err := http.NewRequest(http.MethodPost, a.URL+"/login", strings.NewReader(url.Values{"_csrf": {token}, "email": {"x@example.com"}, "password": {"wrong password!"}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Request-Id", strings.Repeat("z", 3000))
	res := c.do(req)
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	var stored string
	require.NoError(t, a.DB.GetContext(t.Context(), &stored, `SELECT request_id FROM audit_log WHERE action = 'user.login_failed'`))
	require.Equal(t, res.Header.Get("X-Request-Id"), stored)
	require.LessOrEqual(t, len(stored), 64)
}

// Without NOFX_BASE_URL, links are built only for the instance's hosts.
func TestLinksRefuseForeignHostHeaders(t *testing.T) {
	t.Parallel()
	a := limited(t, func(c *config.Config) { c.AllowedHosts = []string{"nofx.example.com"} })
	owner := a.newAPIClient("links@example.com", teams.RoleOwner)
	invite := func(host, email string) response {
		req, err := http.NewRequest(http.MethodPost, a.URL+"/api/v1/invites", strings.NewReader(`{"email":"`+email+`","role":"member"}`))
		require.NoError(t, err)
		req.Host = host
		req.Header.Set("Authorization", "Bearer "+owner.key)
		req.Header.Set("Content-Type", "application/json")
		return a.client().do(req)
	}
	res := invite("evil.example", "victim@example.com")
	requireAPIError(t, res, http.StatusBadRequest, "bad_request", "")
	msgs, err := mail.List(context.Background(), a.DB, 10)
	require.NoError(t, err)
	require.Empty(t, msgs, "no mail with a foreign link went out")

	res = invite("nofx.example.com", "friend@example.com")
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	msgs, err = mail.List(context.Background(), a.DB, 10)
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	require.Contains(t, msgs[0].Body, "http://nofx.example.com/invites/")

	// Loopback (this test's own address) is always the instance.
	require.Equal(t, http.StatusCreated, owner.do(http.MethodPost, "/api/v1/invites", `{"email":"local@example.com","role":"member"}`).StatusCode)

	// The deployments list carries webhook links too.
	req, err := http.NewRequest(http.MethodGet, a.URL+"/api/v1/templates/summary/deployments", nil)
	require.NoError(t, err)
	req.Host = "evil.example"
	req.Header.Set("Authorization", "Bearer "+owner.key)
	require.Equal(t, http.StatusBadRequest, a.client().do(req).StatusCode)
}

func TestBaseURLBuildsLinksWhateverTheHost(t *testing.T) {
	t.Parallel()
	a := limited(t, func(c *config.Config) { c.BaseURL = "http://nofx.example.org" })
	owner := a.newAPIClient("base@example.com", teams.RoleOwner)
	req, err := http.NewRequest(http.MethodPost, a.URL+"/api/v1/invites", strings.NewReader(`{"email":"friend@example.com","role":"member"}`))
	require.NoError(t, err)
	req.Host = "evil.example"
	req.Header.Set("Authorization", "Bearer "+owner.key)
	require.Equal(t, http.StatusCreated, a.client().do(req).StatusCode)
	msgs, err := mail.List(context.Background(), a.DB, 10)
	require.NoError(t, err)
	require.Contains(t, msgs[0].Body, "http://nofx.example.org/invites/")
	require.NotContains(t, msgs[0].Body, "evil.example")
}

// sessionCookieOf signs up through a request with header set, and returns
// the session cookie as the server set it, and the response.
func signUpWith(t *testing.T, a *app, email string, header http.Header) (*http.Cookie, response) {
	t.Helper()
	c := a.client()
	get, err := http.NewRequest(http.MethodGet, a.URL+"/signup", nil)
	require.NoError(t, err)
	get.Header = header.Clone()
	page := c.do(get)
	require.Equal(t, http.StatusOK, page.StatusCode)
	token, _ := page.Doc(t).Find(`input[name="_csrf"]`).Attr("value")
	// The jar will not send __Host- cookies over http; copy the visitor
	// cookie by hand, as a browser would over https.
	post, err := http.NewRequest(http.MethodPost, a.URL+"/signup", strings.NewReader(url.Values{"_csrf": {token}, "email": {email}, "password": {password}}.Encode()))
	require.NoError(t, err)
	post.Header = header.Clone()
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, ck := range page.Cookies() {
		post.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
	}
	res := c.do(post)
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	for _, ck := range res.Cookies() {
		if strings.HasSuffix(ck.Name, "nofx_session") {
			return ck, res
		}
	}
	t.Fatal("no session cookie")
	return nil, res
}

// X-Forwarded-Proto is believed from a trusted proxy only: a client cannot
// turn on HSTS, and over TLS the cookies are Secure with the __Host- prefix.
func TestTLSFromTrustedProxyOnly(t *testing.T) {
	t.Parallel()
	https := http.Header{"X-Forwarded-Proto": {"https"}}

	plain := limited(t, nil)
	ck, res := signUpWith(t, plain, "plain@example.com", https)
	require.Equal(t, "nofx_session", ck.Name)
	require.False(t, ck.Secure)
	require.Empty(t, res.Header.Get("Strict-Transport-Security"))

	proxied := limited(t, func(c *config.Config) { c.TrustedProxies = loopbackProxy() })
	ck, res = signUpWith(t, proxied, "proxied@example.com", https)
	require.Equal(t, "__Host-nofx_session", ck.Name)
	require.True(t, ck.Secure)
	require.Equal(t, "/", ck.Path)
	require.Empty(t, ck.Domain)
	require.NotEmpty(t, res.Header.Get("Strict-Transport-Security"))
	for _, c := range res.Cookies() {
		require.True(t, c.Secure, "%s is Secure over TLS", c.Name)
	}

	// Without the header the proxy says the request was plain http.
	_, res = signUpWith(t, proxied, "proxied-plain@example.com", http.Header{})
	require.Empty(t, res.Header.Get("Strict-Transport-Security"))

	// An https base URL means TLS whatever the request says.
	based := limited(t, func(c *config.Config) { c.BaseURL = "https://nofx.example.com" })
	ck, res = signUpWith(t, based, "based@example.com", http.Header{})
	require.Equal(t, "__Host-nofx_session", ck.Name)
	require.True(t, ck.Secure)
	require.NotEmpty(t, res.Header.Get("Strict-Transport-Security"))
}

func TestInvitationTokensStayOutOfTheLogs(t *testing.T) {
	t.Parallel()
	var logs logtest.Buffer
	a := newAppWith(t, dbtest.SQLiteURL(t), slog.New(slog.NewTextHandler(&logs, nil)), nil)
	owner := a.newAPIClient("inviter@example.com", teams.RoleOwner)
	res := owner.do(http.MethodPost, "/api/v1/invites", `{"email":"guest@example.com","role":"member"}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	path := invitePath(t, a, "guest@example.com")
	token := path[strings.LastIndex(path, "/")+1:]

	guest := a.client()
	require.Equal(t, http.StatusOK, guest.get(path).StatusCode)
	guest.get("/invites/" + token + "/unknown")
	guest.postForm(path+"/accept", url.Values{})
	require.Eventually(t, func() bool { return strings.Count(logs.String(), "/invites/:token") >= 3 }, 5*time.Second, 10*time.Millisecond,
		"logs:\n%s", logs.String())
	require.NotContains(t, logs.String(), token)
}
