package web_test

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/config"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/teams"
)

// limited starts an app whose tiers are set by configure.
func limited(t *testing.T, configure func(*config.Config)) *app {
	t.Helper()
	return newAppWith(t, dbtest.SQLiteURL(t), slog.New(slog.NewTextHandler(io.Discard, nil)), configure)
}

// requireLimited checks a 429: Retry-After in whole seconds, the RateLimit
// headers, and the JSON error shape or the friendly page.
func requireLimited(t *testing.T, res response, api bool) {
	t.Helper()
	require.Equal(t, http.StatusTooManyRequests, res.StatusCode, res.Body)
	retry, err := strconv.Atoi(res.Header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After is whole seconds: %q", res.Header.Get("Retry-After"))
	require.Positive(t, retry)
	require.NotEmpty(t, res.Header.Get("RateLimit-Limit"))
	require.Equal(t, "0", res.Header.Get("RateLimit-Remaining"))
	require.NotEmpty(t, res.Header.Get("RateLimit-Reset"))
	if api {
		requireAPIError(t, res, http.StatusTooManyRequests, "rate_limited", "")
		return
	}
	doc := res.Doc(t)
	require.Contains(t, doc.Find("main").Text(), "try again", "the page says what to do")
	require.Contains(t, res.Header.Get("Content-Type"), "text/html")
}

// waitAllowed repeats req until it is not refused, within deadline.
func waitAllowed(t *testing.T, deadline time.Duration, do func() response) response {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		res := do()
		if res.StatusCode != http.StatusTooManyRequests {
			return res
		}
		require.True(t, time.Now().Before(end), "still refused after %s", deadline)
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAuthTierLimitsLogInsPerAddressAndEmail(t *testing.T) {
	t.Parallel()
	a := limited(t, func(c *config.Config) {
		c.RateAuth = config.Rate{N: 3, Per: time.Hour}
		c.TrustedProxies = []*net.IPNet{{IP: net.IPv4(127, 0, 0, 1).To4(), Mask: net.CIDRMask(32, 32)}}
	})
	a.client().signUp("limited@example.com", password)

	// From one address: three wrong passwords are answered, the fourth is
	// refused with the friendly page, whatever the email.
	c := a.client()
	loginFrom := func(ip, email, pw string) response {
		token := c.csrf("/login")
		req, err := http.NewRequest(http.MethodPost, a.URL+"/login", strings.NewReader(url.Values{"_csrf": {token}, "email": {email}, "password": {pw}}.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", ip)
		return c.do(req)
	}
	for i := range 3 {
		res := loginFrom("198.51.100.1", "someone"+strconv.Itoa(i)+"@example.com", "wrong password!")
		require.Equal(t, http.StatusUnauthorized, res.StatusCode)
		require.Equal(t, strconv.Itoa(2-i), res.Header.Get("RateLimit-Remaining"))
	}
	requireLimited(t, loginFrom("198.51.100.1", "someone-else@example.com", "wrong password!"), false)

	// From many addresses: one email gets three tries in all (its sign-up
	// was the first).
	for i := range 2 {
		res := loginFrom("203.0.113."+strconv.Itoa(i+1), "limited@example.com", "wrong password!")
		require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	}
	requireLimited(t, loginFrom("203.0.113.50", "Limited@Example.com", password), false)
}

func TestAuthTierRefillsAfterTheWindow(t *testing.T) {
	t.Parallel()
	a := limited(t, func(c *config.Config) { c.RateAuth = config.Rate{N: 2, Per: 4 * time.Second} })
	a.client().signUp("refill@example.com", password) // the email's first try
	c := a.client()
	require.Equal(t, http.StatusUnauthorized, c.logIn("refill@example.com", "wrong password!").StatusCode)
	requireLimited(t, c.logIn("refill@example.com", password), false)
	res := waitAllowed(t, 8*time.Second, func() response { return c.logIn("refill@example.com", password) })
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
}

func TestGeneralTierPerKeyAndPerAddress(t *testing.T) {
	t.Parallel()
	a := limited(t, func(c *config.Config) { c.RateGeneral = config.Rate{N: 5, Per: 2 * time.Second} })
	key := a.newAPIClient("general@example.com", teams.RoleOwner)
	other := a.newAPIClient("other@example.com", teams.RoleOwner)

	for i := range 5 {
		res := key.do(http.MethodGet, "/api/v1/me", "")
		require.Equal(t, http.StatusOK, res.StatusCode, "request %d", i+1)
		require.Equal(t, "5", res.Header.Get("RateLimit-Limit"))
	}
	requireLimited(t, key.do(http.MethodGet, "/api/v1/me", ""), true)
	require.Equal(t, http.StatusOK, other.do(http.MethodGet, "/api/v1/me", "").StatusCode, "each key has its own bucket")

	// Wrong keys count against the address they come from.
	for range 5 {
		a.bearerMe("nofx_not_a_key")
	}
	requireLimited(t, a.bearerMe("nofx_not_a_key"), true)

	// Probes are never limited.
	for range 10 {
		require.Equal(t, http.StatusOK, a.client().get("/healthz").StatusCode)
	}

	res := waitAllowed(t, 5*time.Second, func() response { return key.do(http.MethodGet, "/api/v1/me", "") })
	require.Equal(t, http.StatusOK, res.StatusCode)
}

func TestExpensiveTierLimitsRunStarts(t *testing.T) {
	t.Parallel()
	a := limited(t, func(c *config.Config) { c.RateExpensive = config.Rate{N: 2, Per: time.Hour} })
	key := a.newAPIClient("runs@example.com", teams.RoleOwner)
	body := `{"prompt":"hello","provider":"simulated","model":"echo"}`
	for range 2 {
		require.Equal(t, http.StatusCreated, key.do(http.MethodPost, "/api/v1/runs", body).StatusCode)
	}
	before := a.countRuns()
	res := key.do(http.MethodPost, "/api/v1/runs", body)
	requireLimited(t, res, true)
	require.Equal(t, before, a.countRuns(), "a refused start writes nothing")
	require.Equal(t, http.StatusOK, key.do(http.MethodGet, "/api/v1/runs", "").StatusCode, "reading is not expensive")

	// The same bucket holds for the pages: the user's key and browser are
	// separate principals, so the browser still has its own two.
	c := a.client()
	c.signUp("pages@example.com", password)
	for range 2 {
		res := c.submit("/runs/new", "/runs", url.Values{"prompt": {"hi"}, "provider": {"simulated"}, "model": {"echo"}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	}
	requireLimited(t, c.submit("/runs/new", "/runs", url.Values{"prompt": {"hi"}, "provider": {"simulated"}, "model": {"echo"}}), false)
}

func TestAdminTier(t *testing.T) {
	t.Parallel()
	a := limited(t, func(c *config.Config) { c.RateAdmin = config.Rate{N: 2, Per: time.Hour} })
	admin := a.client()
	admin.signUp("admin@example.com", password) // the first user is the site admin
	for range 2 {
		require.Equal(t, http.StatusOK, admin.get("/admin").StatusCode)
	}
	requireLimited(t, admin.get("/admin/circuits"), false)
	require.Equal(t, http.StatusOK, admin.get("/runs").StatusCode, "other pages are not admin pages")
}

func TestWebhookTierPerToken(t *testing.T) {
	t.Parallel()
	a := limited(t, func(c *config.Config) { c.RateWebhooks = config.Rate{N: 3, Per: time.Hour} })
	owner := a.newAPIClient("hooks@example.com", teams.RoleOwner)
	res := owner.do(http.MethodPost, "/api/v1/templates/summary/deploy", `{"environment":"production"}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	hook := decode[apiDeployed](t, res).Deployment.WebhookURL

	for range 3 {
		require.Equal(t, http.StatusUnauthorized, a.deliver(hook, "wrong secret", time.Now().Unix(), `{}`).StatusCode)
	}
	requireLimited(t, a.deliver(hook, "wrong secret", time.Now().Unix(), `{}`), true)
	require.Equal(t, http.StatusNotFound, a.deliver(a.URL+"/hooks/another-token", "x", time.Now().Unix(), `{}`).StatusCode,
		"another token has its own bucket")
}

func TestRefusalsAreCountedInMetrics(t *testing.T) {
	t.Parallel()
	a := limited(t, func(c *config.Config) { c.RateAuth = config.Rate{N: 1, Per: time.Hour} })
	c := a.client()
	c.logIn("nobody@example.com", "wrong password!")
	requireLimited(t, c.logIn("nobody@example.com", "wrong password!"), false)
	requireLimited(t, c.logIn("nobody@example.com", "wrong password!"), false)
	body := a.client().get("/metrics").Body
	require.Contains(t, body, `nofx_rate_limited_total{tier="auth"} 2`)
}

// Without NOFX_TRUSTED_PROXIES, X-Forwarded-For is the client's own say:
// it neither picks a bucket nor reaches the audit log.
func TestForwardedForFromUntrustedPeersIsIgnored(t *testing.T) {
	t.Parallel()
	a := limited(t, func(c *config.Config) { c.RateAuth = config.Rate{N: 2, Per: time.Hour} })
	c := a.client()
	send := func(ip string) response {
		token := c.csrf("/login")
		req, err := http.NewRequest(http.MethodPost, a.URL+"/login", strings.NewReader(url.Values{"_csrf": {token}, "email": {"x" + ip + "@example.com"}, "password": {"wrong password!"}}.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", ip)
		req.Header.Set("X-Real-IP", ip)
		return c.do(req)
	}
	require.Equal(t, http.StatusUnauthorized, send("198.51.100.7").StatusCode)
	require.Equal(t, http.StatusUnauthorized, send("198.51.100.8").StatusCode)
	requireLimited(t, send("198.51.100.9"), false)

	var ips []string
	require.NoError(t, a.DB.SelectContext(t.Context(), &ips, `SELECT ip FROM audit_log WHERE action = 'user.login_failed'`))
	require.NotEmpty(t, ips)
	for _, ip := range ips {
		require.Equal(t, "127.0.0.1", ip, "the audit log records the peer, not a forged header")
	}
}

func TestForwardedForFromTrustedProxy(t *testing.T) {
	t.Parallel()
	a := limited(t, func(c *config.Config) {
		c.TrustedProxies = []*net.IPNet{{IP: net.IPv4(127, 0, 0, 1).To4(), Mask: net.CIDRMask(32, 32)}}
	})
	c := a.client()
	token := c.csrf("/login")
	req, err := http.NewRequest(http.MethodPost, a.URL+"/login", strings.NewReader(url.Values{"_csrf": {token}, "email": {"x@example.com"}, "password": {"wrong password!"}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// The client wrote the first address itself; the proxy appended the
	// address it saw. The nearest untrusted one is the client.
	req.Header.Set("X-Forwarded-For", "10.9.9.9, 198.51.100.20")
	require.Equal(t, http.StatusUnauthorized, c.do(req).StatusCode)

	var ip string
	require.NoError(t, a.DB.GetContext(t.Context(), &ip, `SELECT ip FROM audit_log WHERE action = 'user.login_failed'`))
	require.Equal(t, "198.51.100.20", ip)
}

// A Bearer header does not take a request outside the API out of the
// general tier (webhooks, unknown API paths).
func TestBearerHeaderDoesNotSkipTheGeneralTier(t *testing.T) {
	t.Parallel()
	a := limited(t, func(c *config.Config) { c.RateGeneral = config.Rate{N: 3, Per: time.Hour} })
	hook := func(path string) response {
		req, err := http.NewRequest(http.MethodPost, a.URL+path, strings.NewReader(`{}`))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer anything")
		req.Header.Set("Content-Type", "application/json")
		return a.client().do(req)
	}
	for i := range 3 {
		require.Equal(t, http.StatusNotFound, hook("/hooks/token-"+strconv.Itoa(i)).StatusCode)
	}
	requireLimited(t, hook("/hooks/token-x"), true)
	requireLimited(t, hook("/api/v2/anything"), true)
}

// An IPv6 client is one bucket per /64: it cannot take a fresh one per
// address of its block.
func TestIPv6ClientsAreLimitedByTheirBlock(t *testing.T) {
	t.Parallel()
	a := limited(t, func(c *config.Config) {
		c.RateAuth = config.Rate{N: 2, Per: time.Hour}
		c.TrustedProxies = loopbackProxy()
	})
	c := a.client()
	from := func(ip string) response {
		token := c.csrf("/login")
		req, err := http.NewRequest(http.MethodPost, a.URL+"/login", strings.NewReader(url.Values{"_csrf": {token}, "email": {ip + "@example.com"}, "password": {"wrong password!"}}.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", ip)
		return c.do(req)
	}
	require.Equal(t, http.StatusUnauthorized, from("2001:db8:1:2::1").StatusCode)
	require.Equal(t, http.StatusUnauthorized, from("2001:db8:1:2:ffff::9").StatusCode)
	requireLimited(t, from("2001:db8:1:2:abcd:1:2:3"), false)
	require.Equal(t, http.StatusUnauthorized, from("2001:db8:1:3::1").StatusCode, "another /64 is another client")
}

// A 429 page is a whole page: its forms (log out) carry their CSRF token.
func TestLimitedPageKeepsItsForms(t *testing.T) {
	t.Parallel()
	a := limited(t, func(c *config.Config) { c.RateGeneral = config.Rate{N: 2, Per: time.Hour} })
	c := a.client()
	c.signUp("forms@example.com", password) // the address's two; then the user's own bucket
	require.Equal(t, http.StatusOK, c.get("/runs").StatusCode)
	require.Equal(t, http.StatusOK, c.get("/runs").StatusCode)
	res := c.get("/runs")
	requireLimited(t, res, false)
	token, ok := res.Doc(t).Find(`form[action="/logout"] input[name="_csrf"]`).Attr("value")
	require.True(t, ok)
	require.NotEmpty(t, token)
}

// Keys are made freely, but the runs they start count against the user
// who made them.
func TestExpensiveTierIsPerKeyCreator(t *testing.T) {
	t.Parallel()
	a := limited(t, func(c *config.Config) { c.RateExpensive = config.Rate{N: 2, Per: time.Hour} })
	first := a.newAPIClient("creator@example.com", teams.RoleOwner)
	res := first.do(http.MethodPost, "/api/v1/api-keys", `{"name":"second","role":"owner"}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	second := &apiClient{t: t, app: a, key: decode[struct {
		Secret string `json:"secret"`
	}](t, res).Secret}
	require.NotEmpty(t, second.key)

	body := `{"prompt":"hello","provider":"simulated","model":"echo"}`
	require.Equal(t, http.StatusCreated, first.do(http.MethodPost, "/api/v1/runs", body).StatusCode)
	require.Equal(t, http.StatusCreated, second.do(http.MethodPost, "/api/v1/runs", body).StatusCode)
	requireLimited(t, second.do(http.MethodPost, "/api/v1/runs", body), true)
	requireLimited(t, first.do(http.MethodPost, "/api/v1/runs", body), true)
}

// Probes and assets get no visitor cookie: a shared cache could hand it to
// everyone.
func TestNoVisitorCookieOnAssetsAndProbes(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/static/css/app.css"} {
		res := a.client().get(path)
		require.Equal(t, http.StatusOK, res.StatusCode, path)
		require.Empty(t, res.Header.Values("Set-Cookie"), path)
	}
	require.NotEmpty(t, a.client().get("/login").Header.Values("Set-Cookie"), "a page with a form sets one")
}
