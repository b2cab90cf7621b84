package web_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/apikeys"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/teams"
)

const password = "long enough pw"

func sessionCookie(c *client) string {
	u, _ := url.Parse(c.app.URL)
	for _, ck := range c.http.Jar.Cookies(u) {
		if ck.Name == "nofx_session" {
			return ck.Value
		}
	}
	return ""
}

func TestSignUpLandsOnDashboard(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.client()

	res := c.signUp("ada@example.com", password)
	require.Equal(t, "/runs", res.Header.Get("Location"))
	var session *http.Cookie
	for _, ck := range res.Cookies() {
		if ck.Name == "nofx_session" {
			session = ck
		}
	}
	require.NotNil(t, session, "sign-up signs the user in")
	require.True(t, session.HttpOnly)
	require.Equal(t, http.SameSiteLaxMode, session.SameSite)
	require.False(t, session.Secure, "plain HTTP: not Secure")

	page := c.get("/runs")
	require.Equal(t, http.StatusOK, page.StatusCode)
	doc := page.Doc(t)
	require.Equal(t, 1, doc.Find(`[data-testid=dashboard]`).Length())
	require.Contains(t, doc.Find(`[data-testid=flash]`).Text(), "Welcome")
	require.Contains(t, doc.Find(`[data-testid=user-menu]`).Text(), "ada@example.com")
	require.Contains(t, doc.Find(`nav a[href="/admin"]`).Text(), "Admin", "the first user is the site admin")

	again := c.get("/runs")
	require.Zero(t, again.Doc(t).Find(`[data-testid=flash]`).Length(), "a flash shows once")

	second := a.client()
	second.signUp("bob@example.com", password)
	doc = second.get("/runs").Doc(t)
	require.Zero(t, doc.Find(`nav a[href="/admin"]`).Length(), "later users are not site admins")
	require.Equal(t, http.StatusForbidden, second.get("/admin").StatusCode)
	require.Equal(t, http.StatusOK, c.get("/admin").StatusCode)
}

func TestSignUpErrorsShowNextToFields(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.client().signUp("taken@example.com", password)

	for _, tc := range []struct {
		name, email, password, field, message string
	}{
		{"duplicate email", "taken@example.com", password, "email", "already exists"},
		{"duplicate email in other case", "TAKEN@Example.COM", password, "email", "already exists"},
		{"too-short password", "new@example.com", "short", "password", "at least 10"},
		{"bad email", "not-an-email", password, "email", "email address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := a.client()
			res := c.submit("/signup", "/signup", url.Values{"email": {tc.email}, "password": {tc.password}, "name": {"Kept"}})
			require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
			doc := res.Doc(t)
			require.Contains(t, doc.Find(`[data-testid=error-`+tc.field+`]`).Text(), tc.message)
			require.Equal(t, "true", doc.Find(`#`+tc.field).AttrOr("aria-invalid", ""))
			require.Equal(t, "Kept", doc.Find(`#name`).AttrOr("value", ""), "what was typed is kept")
			require.Empty(t, doc.Find(`#password`).AttrOr("value", ""), "passwords are never echoed back")
			require.Empty(t, sessionCookie(c), "no session for a refused sign-up")
		})
	}

	n, err := auth.CountUsers(context.Background(), a.DB)
	require.NoError(t, err)
	require.Equal(t, 1, n)
}

func TestLogInAndOut(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.client()
	c.signUp("grace@example.com", password)
	first := sessionCookie(c)

	res := c.submit("/runs", "/logout", url.Values{})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "/login", res.Header.Get("Location"))
	require.Empty(t, sessionCookie(c), "log-out clears the cookie")
	login := c.get("/login")
	require.Contains(t, login.Doc(t).Find(`[data-testid=flash]`).Text(), "logged out")

	res = c.get("/runs")
	require.Equal(t, http.StatusSeeOther, res.StatusCode, "signed out: /runs asks to log in")
	require.Equal(t, "/login?next=%2Fruns", res.Header.Get("Location"))

	// The old session id is dead on the server too, not only in this jar.
	replay := a.client()
	u, _ := url.Parse(a.URL)
	replay.http.Jar.SetCookies(u, []*http.Cookie{{Name: "nofx_session", Value: first}})
	require.Equal(t, http.StatusSeeOther, replay.get("/runs").StatusCode)

	res = c.logIn("GRACE@example.com", password)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "/runs", res.Header.Get("Location"))
	second := sessionCookie(c)
	require.NotEmpty(t, second)
	require.NotEqual(t, first, second)
	require.Equal(t, http.StatusOK, c.get("/runs").StatusCode)
}

func TestLogInRotatesSessionID(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.client()
	c.signUp("rot@example.com", password)
	before := sessionCookie(c)

	res := c.submit("/runs", "/login", url.Values{"email": {"rot@example.com"}, "password": {password}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	after := sessionCookie(c)
	require.NotEqual(t, before, after)

	_, _, err := (&auth.Service{DB: a.DB}).ResolveSession(context.Background(), before)
	require.ErrorIs(t, err, db.ErrNotFound, "the session from before log-in is ended")
}

func TestWrongPasswordIsGeneric(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.client().signUp("lin@example.com", password)

	for _, tc := range []struct{ name, email, password string }{
		{"wrong password", "lin@example.com", "not the password"},
		{"unknown email", "nobody@example.com", password},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := a.client()
			res := c.logIn(tc.email, tc.password)
			require.Equal(t, http.StatusUnauthorized, res.StatusCode)
			doc := res.Doc(t)
			require.Equal(t, "Wrong email or password.", strings.TrimSpace(doc.Find(`[data-testid=form-error]`).Text()))
			require.Equal(t, tc.email, doc.Find(`#email`).AttrOr("value", ""))
			require.Empty(t, sessionCookie(c))
		})
	}
}

func TestLoginNextStaysOnSite(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.client().signUp("nx@example.com", password)

	for next, want := range map[string]string{
		"/team":                "/team",
		"//evil.example.com":   "/runs",
		"https://evil.example": "/runs",
		"/\\evil.example":      "/runs",
	} {
		c := a.client()
		res := c.submit("/login?next="+url.QueryEscape(next), "/login", url.Values{"email": {"nx@example.com"}, "password": {password}, "next": {next}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		require.Equal(t, want, res.Header.Get("Location"), "next=%q", next)
	}
}

func TestMissingCSRFTokenIsForbidden(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.client()
	c.get("/signup") // gets the CSRF cookie, but the form below lacks the field

	res := c.postForm("/signup", url.Values{"email": {"csrf@example.com"}, "password": {password}})
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	require.Contains(t, res.Body, "did not come from this site")

	res = c.postForm("/signup", url.Values{"email": {"csrf@example.com"}, "password": {password}, "_csrf": {"forged"}})
	require.Equal(t, http.StatusForbidden, res.StatusCode)

	n, err := auth.CountUsers(context.Background(), a.DB)
	require.NoError(t, err)
	require.Zero(t, n, "nothing was written")

	// A cross-site browser request is refused even with a token.
	token := c.csrf("/signup")
	req, _ := http.NewRequest(http.MethodPost, a.URL+"/signup", strings.NewReader(url.Values{"_csrf": {token}, "email": {"x@example.com"}, "password": {password}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	require.Equal(t, http.StatusForbidden, c.do(req).StatusCode)
}

func TestOversizeBodyIs413(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.client()
	token := c.csrf("/signup")
	big := strings.Repeat("x", 2<<20)
	res := c.postForm("/signup", url.Values{"_csrf": {token}, "email": {"big@example.com"}, "password": {big}})
	require.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode)

	req, _ := http.NewRequest(http.MethodGet, a.URL+"/api/v1/me", strings.NewReader(big))
	req.Header.Set("Authorization", "Bearer nofx_whatever")
	res = c.do(req)
	require.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode)
	require.Equal(t, "request_too_large", apiErrorCode(t, res))
	require.Contains(t, res.Body, "larger than 1 MB", "the API states the limit")

	// A signed-in person pasting 2 MB into a prompt keeps the layout, is
	// told the limit, and that the text is still in their form.
	c.signUp("big-prompt@example.com", password)
	res = c.submit("/runs/new", "/runs", url.Values{"prompt": {big}})
	require.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode)
	doc := res.Doc(t)
	require.Contains(t, doc.Find(`[data-testid=user-menu]`).Text(), "big-prompt@example.com", "the 413 page is signed in")
	lead := doc.Find(`[data-testid=error-page] .lead`).Text()
	require.Contains(t, lead, "larger than 1 MB")
	require.Contains(t, lead, "still in the form")
	require.Contains(t, doc.Find("h1").Text(), "Too large")

	// A body that no form sent is not said to be in one.
	req, _ = http.NewRequest(http.MethodPost, a.URL+"/runs", strings.NewReader(big))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("X-CSRF-Token", c.csrf("/runs/new"))
	res = c.do(req)
	require.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode)
	lead = res.Doc(t).Find(`[data-testid=error-page] .lead`).Text()
	require.Contains(t, lead, "larger than 1 MB")
	require.NotContains(t, lead, "still in the form")
}

func TestUnknownRouteIs404Page(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.client()
	res := c.get("/no/such/page")
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	require.Contains(t, res.Header.Get("Content-Type"), "text/html")
	doc := res.Doc(t)
	require.Equal(t, 1, doc.Find(`[data-testid=error-page]`).Length())
	require.Contains(t, doc.Find("h1").Text(), "Page not found")
	require.Contains(t, doc.Find("title").Text(), "Page not found")

	require.Equal(t, http.StatusNotFound, c.get("/static/css/").StatusCode, "no directory listings")
	require.Equal(t, http.StatusNotFound, c.get("/static/nope.css").StatusCode)

	c.signUp("lost@example.com", password)
	res = c.get("/no/such/page")
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	require.Contains(t, res.Doc(t).Find(`[data-testid=user-menu]`).Text(), "lost@example.com", "the 404 page keeps the navigation")
}

func TestAClientAskingForJSONGetsJSONErrors(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.client()
	for _, accept := range []string{"application/json", "application/json; charset=UTF-8", "Application/JSON"} {
		req, err := http.NewRequest(http.MethodGet, a.URL+"/no/such/page", nil)
		require.NoError(t, err)
		req.Header.Set("Accept", accept)
		res := c.do(req)
		require.Equal(t, http.StatusNotFound, res.StatusCode, accept)
		require.Equal(t, "not_found", apiErrorCode(t, res), accept)
	}
	for _, accept := range []string{"text/html", "text/html, application/json", ""} {
		req, err := http.NewRequest(http.MethodGet, a.URL+"/no/such/page", nil)
		require.NoError(t, err)
		req.Header.Set("Accept", accept)
		res := c.do(req)
		require.Equal(t, http.StatusNotFound, res.StatusCode, accept)
		require.Contains(t, res.Header.Get("Content-Type"), "text/html", "%q: a browser's list gets the page", accept)
	}
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	res := a.client().get("/login")
	csp := res.Header.Get("Content-Security-Policy")
	require.Contains(t, csp, "script-src 'self'")
	require.NotContains(t, csp, "unsafe-inline")
	require.Contains(t, csp, "frame-ancestors 'none'")
	require.Equal(t, "DENY", res.Header.Get("X-Frame-Options"))
	require.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
	require.NotEmpty(t, res.Header.Get("Referrer-Policy"))
	require.NotEmpty(t, res.Header.Get("X-Request-Id"))

	doc := res.Doc(t)
	doc.Find("script").Each(func(_ int, s *goquery.Selection) {
		require.NotEmpty(t, s.AttrOr("src", ""), "no inline scripts")
	})
}

func TestStaticAssetsAreServed(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.client()
	doc := c.get("/login").Doc(t)
	for _, sel := range []string{`link[rel=stylesheet]`, `script[src*="htmx.min.js"]`, `script[src*="htmx-sse"]`, `script[src*="app.js"]`} {
		node := doc.Find(sel)
		require.Equal(t, 1, node.Length(), sel)
		src := node.AttrOr("href", node.AttrOr("src", ""))
		res := c.get(src)
		require.Equal(t, http.StatusOK, res.StatusCode, src)
		require.Contains(t, res.Header.Get("Cache-Control"), "immutable", src)
		require.Greater(t, len(res.Body), 100, src)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.client()
	require.Equal(t, http.StatusOK, c.get("/healthz").StatusCode)
	res := c.get("/readyz")
	require.Equal(t, http.StatusOK, res.StatusCode)
	var body struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	require.NoError(t, json.Unmarshal([]byte(res.Body), &body))
	require.Equal(t, "ready", body.Status)
	require.Equal(t, "ok", body.Checks["database"])
	require.Equal(t, "ok", body.Checks["migrations"])
	require.Equal(t, "ok: 2", body.Checks["workers"])

	require.NoError(t, a.DB.Close())
	res = c.get("/readyz")
	require.Equal(t, http.StatusServiceUnavailable, res.StatusCode)

	metrics := c.get("/metrics")
	require.Equal(t, http.StatusOK, metrics.StatusCode)
	require.Contains(t, metrics.Body, `nofx_http_requests_total{code="200",method="GET",route="/healthz"}`)
}

// TestMetricsToken checks that with NOFX_METRICS_TOKEN set, /metrics
// answers only requests that bear it.
func TestMetricsToken(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.App.Config.MetricsToken = "metrics-token-0123456789"
	get := func(header string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, a.URL+"/metrics", nil)
		require.NoError(t, err)
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		return res.StatusCode, string(body)
	}
	for _, header := range []string{"", "Bearer wrong-token-0123456789", "metrics-token-0123456789", "Bearer metrics-token-012345678"} {
		status, body := get(header)
		require.Equal(t, http.StatusUnauthorized, status, "Authorization: %q", header)
		require.NotContains(t, body, "nofx_http_requests_total")
	}
	status, body := get("Bearer metrics-token-0123456789")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "nofx_http_requests_total")
}

func apiErrorCode(t *testing.T, res response) string {
	t.Helper()
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal([]byte(res.Body), &body), res.Body)
	require.NotEmpty(t, body.Error.Message)
	return body.Error.Code
}

func TestAPIAuthentication(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := context.Background()
	c := a.client()
	c.signUp("api@example.com", password)

	user, err := auth.UserByEmail(ctx, a.DB, "api@example.com")
	require.NoError(t, err)
	ms, err := teams.ForUser(ctx, a.DB, user.ID)
	require.NoError(t, err)
	key, secret, err := apikeys.Create(ctx, a.DB, ms[0].ID, "test", teams.RoleMember, user.ID, nil)
	require.NoError(t, err)

	bearer := func(token string) response {
		req, _ := http.NewRequest(http.MethodGet, a.URL+"/api/v1/me", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return a.client().do(req)
	}

	res := bearer(secret)
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	var me struct {
		APIKey struct{ Name string } `json:"api_key"`
		Team   struct {
			Slug string
			Role string
		} `json:"team"`
	}
	require.NoError(t, json.Unmarshal([]byte(res.Body), &me))
	require.Equal(t, "test", me.APIKey.Name)
	require.Equal(t, ms[0].Slug, me.Team.Slug)
	require.Equal(t, "member", me.Team.Role)

	for _, bad := range []string{"", "nofx_nope", "garbage"} {
		res := bearer(bad)
		require.Equal(t, http.StatusUnauthorized, res.StatusCode)
		require.Equal(t, "unauthorized", apiErrorCode(t, res))
	}

	require.NoError(t, apikeys.Revoke(ctx, a.DB, ms[0].ID, key.ID))
	require.Equal(t, http.StatusUnauthorized, bearer(secret).StatusCode, "a revoked key is refused at once")

	// The session cookie works on the API too.
	res = c.get("/api/v1/me")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, res.Body, "api@example.com")

	res = c.get("/api/v1/nope")
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	require.Equal(t, "not_found", apiErrorCode(t, res))
}

func TestChangePassword(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.client()
	c.signUp("pw@example.com", password)
	other := a.client()
	require.Equal(t, http.StatusSeeOther, other.logIn("pw@example.com", password).StatusCode)

	res := c.submit("/account", "/account/password", url.Values{"current_password": {"wrong one!!"}, "new_password": {"short"}})
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	doc := res.Doc(t)
	require.Contains(t, doc.Find(`[data-testid=error-current_password]`).Text(), "not your current password")
	require.Contains(t, doc.Find(`[data-testid=error-new_password]`).Text(), "at least 10")

	res = c.submit("/account", "/account/password", url.Values{"current_password": {password}, "new_password": {"a brand new password"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Contains(t, c.get("/account").Doc(t).Find(`[data-testid=flash]`).Text(), "changed")
	require.Equal(t, http.StatusSeeOther, other.get("/runs").StatusCode, "other sessions are signed out")

	fresh := a.client()
	require.Equal(t, http.StatusUnauthorized, fresh.logIn("pw@example.com", password).StatusCode)
	require.Equal(t, http.StatusSeeOther, fresh.logIn("pw@example.com", "a brand new password").StatusCode)
}

func TestTeamSwitcher(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := context.Background()
	c := a.client()
	c.signUp("sw@example.com", password)
	a.client().signUp("other@example.com", password)

	user, err := auth.UserByEmail(ctx, a.DB, "sw@example.com")
	require.NoError(t, err)
	shared, err := teams.Create(ctx, a.DB, "Shared Crew", "shared-crew", false)
	require.NoError(t, err)
	require.NoError(t, teams.AddMember(ctx, a.DB, shared.ID, user.ID, teams.RoleMember))
	otherUser, err := auth.UserByEmail(ctx, a.DB, "other@example.com")
	require.NoError(t, err)
	otherTeams, err := teams.ForUser(ctx, a.DB, otherUser.ID)
	require.NoError(t, err)

	doc := c.get("/runs").Doc(t)
	require.Equal(t, 2, doc.Find(`[data-testid=team-switcher] option`).Length())

	res := c.submit("/runs", "/teams/switch", url.Values{"team_id": {itoa(shared.ID)}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	doc = c.get("/team").Doc(t)
	require.Contains(t, doc.Find("h1").Text(), "Shared Crew")
	require.Equal(t, "Shared Crew", strings.TrimSpace(doc.Find(`[data-testid=team-switcher] option[selected]`).Text()))

	res = c.submit("/runs", "/teams/switch", url.Values{"team_id": {itoa(otherTeams[0].ID)}})
	require.Equal(t, http.StatusNotFound, res.StatusCode, "another user's team is not found")
	res = c.submit("/runs", "/teams/switch", url.Values{"team_id": {"abc"}})
	require.Equal(t, http.StatusBadRequest, res.StatusCode)
}

func TestPagesRenderForSignedInUser(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.client()
	c.signUp("pages@example.com", password)
	for path, nav := range map[string]string{
		"/runs":      "/runs",
		"/templates": "/templates",
		"/team":      "/team",
		"/billing":   "/billing",
		"/admin":     "/admin",
		"/account":   "",
	} {
		res := c.get(path)
		require.Equal(t, http.StatusOK, res.StatusCode, path)
		if nav != "" {
			require.Equal(t, "page", res.Doc(t).Find(`nav a[href="`+nav+`"]`).AttrOr("aria-current", ""), path)
		}
	}
	require.Contains(t, c.get("/team").Doc(t).Find(`[data-testid=members]`).Text(), "pages@example.com")
}

func TestHTMXRequestGetsFragment(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.client()
	c.signUp("hx@example.com", password)
	req, _ := http.NewRequest(http.MethodGet, a.URL+"/runs", nil)
	req.Header.Set("HX-Request", "true")
	res := c.do(req)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.NotContains(t, res.Body, "<html")
	require.Contains(t, res.Body, `data-testid="dashboard"`)

	req.Header.Set("HX-Boosted", "true")
	require.Contains(t, c.do(req).Body, "<html", "boosted requests get the whole page")
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestServerErrorPages(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.client()
	c.signUp("boom@example.com", password)
	require.NoError(t, a.DB.Close()) // every query now fails

	res := c.get("/team")
	require.Equal(t, http.StatusInternalServerError, res.StatusCode)
	doc := res.Doc(t)
	require.Contains(t, doc.Find("h1").Text(), "Something went wrong")
	require.NotContains(t, res.Body, "sql: database is closed", "internal errors stay in the log")

	req, _ := http.NewRequest(http.MethodGet, a.URL+"/api/v1/me", nil)
	req.Header.Set("Authorization", "Bearer nofx_anything")
	res = c.do(req)
	require.Equal(t, http.StatusInternalServerError, res.StatusCode)
	require.Equal(t, "internal", apiErrorCode(t, res))
	require.NotContains(t, res.Body, "closed")
}

// TestRunOfAnotherTeamOffersTheSwitch checks that a run of one of your
// other teams answers 404 with a button that switches to its team and comes
// back to it, and that a stranger's run is a plain 404.
func TestRunOfAnotherTeamOffersTheSwitch(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.client()
	c.signUp("two-teams@example.com", password)
	a.client().signUp("stranger@example.com", password)
	res := c.submit("/teams/new", "/teams", url.Values{"name": {"Night Shift"}}) // now the current team
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	nightShift, err := teams.BySlug(context.Background(), a.DB, "night-shift")
	require.NoError(t, err)
	night := a.keyClient(nightShift.ID, teams.RoleOwner)
	res = night.do(http.MethodPost, "/api/v1/runs", `{"prompt":"a night shift run"}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	id := decode[apiRun](t, res).ID
	stranger := &apiClient{t: t, app: a, key: a.keyFor("stranger@example.com")}
	res = stranger.do(http.MethodPost, "/api/v1/runs", `{"prompt":"not yours"}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	strangers := decode[apiRun](t, res).ID

	personal := a.teamOf("two-teams@example.com") // the personal team, first
	res = c.submit("/runs", "/teams/switch", url.Values{"team_id": {itoa(personal.ID)}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)

	path := "/runs/" + itoa(id)
	res = c.get(path)
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	doc := res.Doc(t)
	require.Contains(t, doc.Find("h1").Text(), "is in Night Shift")
	form := doc.Find(`[data-testid=switch-to-team]`)
	require.Contains(t, form.Find("button").Text(), "Switch to Night Shift")
	require.Equal(t, path, form.Find(`input[name=next]`).AttrOr("value", ""))
	require.NotEmpty(t, form.Find(`input[name=_csrf]`).AttrOr("value", ""), "the form can be sent")
	res = c.postForm("/teams/switch", url.Values{"_csrf": {form.Find(`input[name=_csrf]`).AttrOr("value", "")},
		"team_id": {form.Find(`input[name=team_id]`).AttrOr("value", "")}, "next": {path}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	require.Equal(t, path, res.Header.Get("Location"), "back to the run")
	require.Equal(t, http.StatusOK, c.get(path).StatusCode)

	res = c.get("/runs/" + itoa(strangers))
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	require.Zero(t, res.Doc(t).Find(`[data-testid=switch-to-team]`).Length(), "a stranger's run says nothing of its team")
	require.NotContains(t, res.Body, "stranger")
}
