package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/web/httpx"
)

// CSRF tokens are bound to who holds them: for a signed-in browser, an HMAC
// of its session (so the token changes at log-in, when the session id is
// rotated); before log-in, an HMAC of a random id kept in a cookie. Both are
// keyed by a key derived from NOFX_SESSION_SECRET, so a token cannot be made
// up for a cookie, and a cookie and field both set by an attacker fail.

const (
	csrfCookie = "nofx_csrf"
	csrfField  = "_csrf"
	csrfHeader = "X-CSRF-Token"
	// csrfVisitorTTL is how long a visitor id (before log-in) lasts.
	csrfVisitorTTL = 24 * 60 * 60
)

var errCSRF = errors.New("csrf: missing or wrong token")

// csrfKey derives the CSRF key from the session secret.
func csrfKey(sessionSecret []byte) []byte {
	m := hmac.New(sha256.New, sessionSecret)
	m.Write([]byte("nofx csrf v1"))
	return m.Sum(nil)
}

// csrfMAC is the token for a subject ("session:…" or "visitor:…").
func (s *Server) csrfMAC(subject string) string {
	m := hmac.New(sha256.New, s.csrfKey)
	m.Write([]byte(subject))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// csrfSubject is what this request's token is bound to: its session, or
// its visitor id, made (and set as a cookie) when it has none.
func (s *Server) csrfSubject(c echo.Context) (string, error) {
	if p := httpx.Who(c); p.SessionToken != "" {
		return "session:" + auth.HashToken(p.SessionToken), nil
	}
	name := s.cookies.Name(c, csrfCookie)
	if ck, err := c.Cookie(name); err == nil && len(ck.Value) == 43 {
		if _, err := base64.RawURLEncoding.DecodeString(ck.Value); err == nil {
			return "visitor:" + ck.Value, nil
		}
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	id := base64.RawURLEncoding.EncodeToString(b)
	c.SetCookie(&http.Cookie{
		Name: name, Value: id, Path: "/", MaxAge: csrfVisitorTTL,
		HttpOnly: true, Secure: s.cookies.Secure(c), SameSite: http.SameSiteLaxMode,
	})
	// Later reads in this request see the new id.
	c.Request().AddCookie(&http.Cookie{Name: name, Value: id})
	return "visitor:" + id, nil
}

// csrfSkipped reports whether a request carries no ambient credentials for
// another site to use: webhook deliveries (signed), and API requests with
// their own Bearer key or with no session cookie at all.
func (s *Server) csrfSkipped(c echo.Context) bool {
	if isWebhook(c) {
		return true
	}
	// Probes, metrics and assets change nothing and render no form: no
	// visitor cookie for them (a shared cache could hand one to everyone).
	switch path := c.Request().URL.Path; {
	case path == "/healthz", path == "/readyz", path == "/metrics", strings.HasPrefix(path, "/static/"):
		return true
	}
	if !isAPI(c) {
		return false
	}
	_, bearer := bearerToken(c)
	_, err := c.Cookie(s.cookies.Name(c, httpx.SessionCookie))
	return bearer || err != nil
}

// csrf protects every state-changing request made with the browser's
// cookies: its token (form field _csrf, or the X-CSRF-Token header that
// htmx sends) must be the one bound to this browser. It runs after the
// session is loaded.
func (s *Server) csrf(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.csrfSkipped(c) {
			return next(c)
		}
		subject, err := s.csrfSubject(c)
		if err != nil {
			return err
		}
		want := s.csrfMAC(subject)
		httpx.SetCSRFToken(c, want)
		switch c.Request().Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
			return next(c)
		}
		// A browser that says the request comes from another site is
		// refused whatever it carries.
		switch c.Request().Header.Get("Sec-Fetch-Site") {
		case "cross-site", "same-site":
			return echo.NewHTTPError(http.StatusForbidden, "The form expired or did not come from this site. Reload the page and try again.").SetInternal(errCSRF)
		}
		got := c.Request().Header.Get(csrfHeader)
		if got == "" {
			got = c.FormValue(csrfField)
		}
		if !hmac.Equal([]byte(got), []byte(want)) {
			return echo.NewHTTPError(http.StatusForbidden, "The form expired or did not come from this site. Reload the page and try again.").SetInternal(errCSRF)
		}
		return next(c)
	}
}
