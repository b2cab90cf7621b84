package web_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/ai"
	nofx "github.com/nofxhq/nofx/internal/app"
	"github.com/nofxhq/nofx/internal/config"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
)

// app is a running NOFX server for one test, on its own database.
type app struct {
	t   *testing.T
	DB  *db.DB
	URL string
	App *nofx.App
}

// newApp starts the real router and engine on a fresh SQLite database.
func newApp(t *testing.T) *app {
	t.Helper()
	return newAppAt(t, dbtest.SQLiteURL(t))
}

// newAppAt starts the real router and engine on the database at url.
func newAppAt(t *testing.T, url string) *app {
	t.Helper()
	return newAppLogging(t, url, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// newAppLogging starts the real router and engine on the database at url,
// logging to log.
func newAppLogging(t *testing.T, url string, log *slog.Logger) *app {
	t.Helper()
	return newAppWith(t, url, log, nil)
}

// newAppWith starts the real router and engine on the database at url,
// logging to log, with the test configuration changed by configure (when
// not nil): rate limits, proxies and hosts are off or empty unless it sets
// them.
func newAppWith(t *testing.T, url string, log *slog.Logger, configure func(*config.Config)) *app {
	t.Helper()
	return newAppTuned(t, url, log, configure, nil)
}

// newAppTuned is newAppWith whose test timings are also changed by tune
// (when not nil).
func newAppTuned(t *testing.T, url string, log *slog.Logger, configure func(*config.Config), tune func(*nofx.Tuning)) *app {
	t.Helper()
	cfg := &config.Config{
		DatabaseURL:   url,
		DataDir:       t.TempDir(),
		Workers:       2,
		SessionSecret: []byte("test-session-secret-0123456789abcdef"),
		SecretKey:     []byte("test-secret-key-0123456789abcdef"),
		LogFormat:     "text",
		LogLevel:      "error",
		RunsListCache: config.DefaultRunsListCache,
	}
	if configure != nil {
		configure(cfg)
	}
	tuning := nofx.Tuning{
		Lease: 5 * time.Second, RescueEvery: time.Second, ShutdownGrace: time.Second,
		PollInterval: 20 * time.Millisecond, RetryBase: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond,
		ProviderRetry: ai.RetryPolicy{Attempts: 2, Base: time.Millisecond, Max: 5 * time.Millisecond, MaxRetryAfter: 10 * time.Millisecond},
		JobAttempts:   2, // a failing step job is a dead letter after one retry (River waits about a second)
	}
	if tune != nil {
		tune(&tuning)
	}
	a, err := nofx.New(context.Background(), cfg, log, true, tuning)
	require.NoError(t, err)
	require.NoError(t, a.Start(context.Background()))
	ts := httptest.NewServer(a.Web.Handler())
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
		require.NoError(t, a.Close(context.Background()))
	})
	return &app{t: t, DB: a.DB, URL: ts.URL, App: a}
}

// client is a browser-like HTTP client with a cookie jar that does not
// follow redirects, so tests can see them.
type client struct {
	t    *testing.T
	app  *app
	http *http.Client
}

func (a *app) client() *client {
	jar, err := cookiejar.New(nil)
	require.NoError(a.t, err)
	return &client{t: a.t, app: a, http: &http.Client{
		Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}}
}

// response is a finished response with its body read.
type response struct {
	*http.Response
	Body string
}

// Doc parses the body as HTML.
func (r response) Doc(t *testing.T) *goquery.Document {
	t.Helper()
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(r.Body))
	require.NoError(t, err)
	return doc
}

func (c *client) do(req *http.Request) response {
	c.t.Helper()
	res, err := c.http.Do(req)
	require.NoError(c.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(c.t, err)
	checkAgainstOpenAPI(c.t, req, res, string(b)) // every API answer of every test matches the document
	return response{Response: res, Body: string(b)}
}

func (c *client) get(path string) response {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.app.URL+path, nil)
	require.NoError(c.t, err)
	return c.do(req)
}

// csrf loads page and returns the CSRF token of its first form.
func (c *client) csrf(page string) string {
	c.t.Helper()
	res := c.get(page)
	require.Equal(c.t, http.StatusOK, res.StatusCode, "GET %s", page)
	token, ok := res.Doc(c.t).Find(`form input[name="_csrf"]`).First().Attr("value")
	require.True(c.t, ok, "no _csrf field on %s", page)
	require.NotEmpty(c.t, token)
	return token
}

// postForm posts values to path as a form, without adding a CSRF token.
func (c *client) postForm(path string, values url.Values) response {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.app.URL+path, strings.NewReader(values.Encode()))
	require.NoError(c.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

// submit posts values to path with the CSRF token read from page's form.
func (c *client) submit(page, path string, values url.Values) response {
	c.t.Helper()
	values.Set("_csrf", c.csrf(page))
	return c.postForm(path, values)
}

// signUp creates an account through the sign-up form and stays signed in.
func (c *client) signUp(email, password string) response {
	c.t.Helper()
	res := c.submit("/signup", "/signup", url.Values{"email": {email}, "password": {password}})
	require.Equal(c.t, http.StatusSeeOther, res.StatusCode, "sign up %s: %s", email, res.Body)
	return res
}

// logIn signs in through the log-in form.
func (c *client) logIn(email, password string) response {
	c.t.Helper()
	return c.submit("/login", "/login", url.Values{"email": {email}, "password": {password}})
}
