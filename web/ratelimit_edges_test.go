package web_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/config"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/logtest"
	"github.com/nofxhq/nofx/internal/teams"
)

// Every account form is in the auth tier: sign-up, password change and
// invitation accept count against the address, and each is refused once
// it is spent.
func TestAuthTierCoversEveryAccountForm(t *testing.T) {
	t.Parallel()
	a := limited(t, func(c *config.Config) { c.RateAuth = config.Rate{N: 4, Per: time.Hour} })
	owner := a.newAPIClient("tier-owner@example.com", teams.RoleOwner) // 1: a sign-up
	res := owner.do(http.MethodPost, "/api/v1/invites", `{"email":"tier-guest@example.com","role":"member"}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	link := invitePath(t, a, "tier-guest@example.com")

	guest := a.client()
	require.Equal(t, http.StatusSeeOther, guest.signUp("tier-guest@example.com", password).StatusCode) // 2
	res = guest.submit("/account", "/account/password", url.Values{"current_password": {"wrong one!!"}, "new_password": {"a brand new password"}})
	require.NotEqual(t, http.StatusTooManyRequests, res.StatusCode) // 3
	res = guest.submit(link, link+"/accept", url.Values{})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body) // 4: the invitation is used

	requireLimited(t, guest.submit("/account", "/account/password", url.Values{"current_password": {password}, "new_password": {"a brand new password"}}), false)
	requireLimited(t, guest.submit("/account", link+"/accept", url.Values{}), false)
	requireLimited(t, a.client().submit("/signup", "/signup", url.Values{"email": {"tier-third@example.com"}, "password": {password}}), false)
}

// A request refused by one bucket takes nothing from the buckets after it:
// an address that has spent its tries cannot use up, or fill memory with,
// the buckets of emails it names.
func TestRefusalTakesFromNoFurtherBucket(t *testing.T) {
	t.Parallel()
	a := limited(t, func(c *config.Config) {
		c.RateAuth = config.Rate{N: 2, Per: time.Hour}
		c.TrustedProxies = loopbackProxy()
	})
	c := a.client()
	loginFrom := func(ip, email string) response {
		token := c.csrf("/login")
		req, err := http.NewRequest(http.MethodPost, a.URL+"/login", strings.NewReader(url.Values{"_csrf": {token}, "email": {email}, "password": {"wrong password!"}}.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", ip)
		return c.do(req)
	}
	require.Equal(t, http.StatusUnauthorized, loginFrom("198.51.100.7", "one@example.com").StatusCode)
	require.Equal(t, http.StatusUnauthorized, loginFrom("198.51.100.7", "two@example.com").StatusCode)
	for range 3 {
		requireLimited(t, loginFrom("198.51.100.7", "victim@example.com"), false)
	}
	res := loginFrom("203.0.113.9", "victim@example.com")
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	require.Equal(t, "1", res.Header.Get("RateLimit-Remaining"), "the victim's email still has its own tries")
}

// Emails become buckets by their hash, and only while the address may
// still try: a flood of huge emails from one address keeps memory flat.
// (Not parallel: it measures the heap.)
func TestAuthBucketsStaySmallWhateverTheEmail(t *testing.T) {
	a := limited(t, func(c *config.Config) { c.RateAuth = config.Rate{N: 10, Per: time.Hour} })
	c := a.client()
	token := c.csrf("/signup")
	huge := strings.Repeat("a", 900<<10)
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	for i := range 60 {
		req, err := http.NewRequest(http.MethodPost, a.URL+"/signup", strings.NewReader(url.Values{
			"_csrf": {token}, "email": {strconv.Itoa(i) + huge + "@example.com"}, "password": {password}}.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		res := c.do(req)
		require.Contains(t, []int{http.StatusUnprocessableEntity, http.StatusRequestEntityTooLarge, http.StatusTooManyRequests}, res.StatusCode)
	}
	grown := int64(heap()) - int64(before)
	require.Less(t, grown, int64(16<<20), "60 sign-ups with 900 KiB emails grew the heap by %d bytes", grown)
}

// A refusal is logged once per key and window, not once per request.
func TestRefusalsAreLoggedOncePerKeyAndWindow(t *testing.T) {
	t.Parallel()
	var logs logtest.Buffer
	a := newAppWith(t, dbtest.SQLiteURL(t), slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		func(c *config.Config) { c.RateGeneral = config.Rate{N: 2, Per: time.Hour} })
	key := a.newAPIClient("logged@example.com", teams.RoleOwner)
	for range 2 {
		require.Equal(t, http.StatusOK, key.do(http.MethodGet, "/api/v1/me", "").StatusCode)
	}
	for range 5 {
		requireLimited(t, key.do(http.MethodGet, "/api/v1/me", ""), true)
	}
	var limitedLines, failedLines int
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `msg="rate limited"`) {
			limitedLines++
		}
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "status=429") {
			failedLines++
		}
	}
	require.Equal(t, 1, limitedLines, logs.String())
	require.Zero(t, failedLines, "no line per refused request:\n%s", logs.String())
}

// postFromHost submits a form of page to path with the Host header host.
func postFromHost(t *testing.T, c *client, page, path, host string, values url.Values) response {
	t.Helper()
	values.Set("_csrf", c.csrf(page))
	req, err := http.NewRequest(http.MethodPost, c.app.URL+path, strings.NewReader(values.Encode()))
	require.NoError(t, err)
	req.Host = host
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, ck := range c.http.Jar.Cookies(req.URL) { // the client sends the jar's cookies only for the URL's own host
		req.AddCookie(ck)
	}
	return c.do(req)
}

// Checkout and the billing portal build return links and start paid
// sessions: they refuse foreign hosts and are in the expensive tier, as are
// the deployment forms whose pages show webhook links.
func TestBillingSessionsAreGuardedLikeOtherLinks(t *testing.T) {
	t.Parallel()
	a := limited(t, func(c *config.Config) {
		c.AllowedHosts = []string{"nofx.example.com"}
		c.RateExpensive = config.Rate{N: 2, Per: time.Hour}
	})
	owner := a.client()
	owner.signUp("guarded@example.com", password)
	for _, path := range []string{"/billing/checkout", "/billing/portal"} {
		res := postFromHost(t, owner, "/billing", path, "evil.example", url.Values{"plan": {"starter"}, "interval": {"month"}})
		require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s: %s", path, res.Body)
	}
	for _, path := range []string{"/templates/summary/deployments/production/schedule", "/templates/summary/deployments/production/input-map"} {
		res := postFromHost(t, owner, "/templates/summary/deployments", path, "evil.example", url.Values{})
		require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s: %s", path, res.Body)
	}

	for range 2 {
		res := owner.submit("/billing", "/billing/checkout", url.Values{"plan": {"starter"}, "interval": {"month"}})
		require.NotEqual(t, http.StatusTooManyRequests, res.StatusCode)
	}
	requireLimited(t, owner.submit("/billing", "/billing/portal", url.Values{}), false)
}

// Over TLS the CSRF cookie, set on the first page, is __Host- and Secure
// like the session's.
func TestCSRFCookieIsSecureOverTLS(t *testing.T) {
	t.Parallel()
	a := limited(t, func(c *config.Config) { c.TrustedProxies = loopbackProxy() })
	req, err := http.NewRequest(http.MethodGet, a.URL+"/login", nil)
	require.NoError(t, err)
	req.Header.Set("X-Forwarded-Proto", "https")
	res := a.client().do(req)
	require.Equal(t, http.StatusOK, res.StatusCode)
	var names []string
	for _, ck := range res.Cookies() {
		names = append(names, ck.Name)
		require.True(t, ck.Secure, "%s is Secure", ck.Name)
		require.Equal(t, "/", ck.Path)
	}
	require.Contains(t, names, "__Host-nofx_csrf")
}

// The lock-out in the database answers through the log-in form like a
// wrong password, even for the right one, and names nothing.
func TestLockoutThroughTheLogInForm(t *testing.T) {
	t.Parallel()
	a := limited(t, func(c *config.Config) { c.LoginLockout = config.Rate{N: 3, Per: time.Hour} })
	a.client().signUp("locked@example.com", password)
	c := a.client()
	var wrong string
	for range 3 {
		res := c.logIn("locked@example.com", "wrong password!")
		require.Equal(t, http.StatusUnauthorized, res.StatusCode)
		wrong = res.Doc(t).Find("main").Text()
	}
	res := c.logIn("locked@example.com", password)
	require.Equal(t, http.StatusUnauthorized, res.StatusCode, "the right password is refused during the lock-out")
	require.Equal(t, wrong, res.Doc(t).Find("main").Text(), "the same answer as a wrong password")
	require.Empty(t, c.get("/runs").Header.Get("Set-Cookie"))
	require.Equal(t, http.StatusSeeOther, c.get("/runs").StatusCode, "not signed in")
}

// A signed-in session guessing its account's password on the profile form
// spends the account's tries, whatever new email and address each guess
// names.
func TestProfileGuessesCountAgainstTheAccount(t *testing.T) {
	t.Parallel()
	a := limited(t, func(c *config.Config) {
		c.RateAuth = config.Rate{N: 3, Per: time.Hour}
		c.TrustedProxies = loopbackProxy()
	})
	c := a.client()
	require.Equal(t, http.StatusSeeOther, c.signUp("guessed@example.com", password).StatusCode) // 1 of the account's 3
	guess := func(i int) response {
		token := c.csrf("/account")
		form := url.Values{"_csrf": {token}, "name": {""}, "email": {fmt.Sprintf("fresh%d@example.com", i)}, "current_password": {fmt.Sprintf("guess number %d", i)}}
		req, err := http.NewRequest(http.MethodPost, a.URL+"/account/profile", strings.NewReader(form.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i+1))
		return c.do(req)
	}
	for i := range 2 {
		res := guess(i)
		require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, "guess %d is answered", i)
	}
	requireLimited(t, guess(2), false)
}
