package httpx

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/auth"
)

// SessionCookie holds a signed-in browser's session token.
const SessionCookie = "nofx_session"

// Cookies names and sets the cookies NOFX keeps in browsers.
type Cookies struct {
	// TLS is whether the instance's address (NOFX_BASE_URL) is https.
	TLS bool
}

// Secure reports whether the instance is served over TLS for this request:
// NOFX_BASE_URL is https, the connection is TLS, or a trusted proxy says so.
func (k Cookies) Secure(c echo.Context) bool {
	return k.TLS || c.Scheme() == "https"
}

// Name is the name of a cookie for this request: with the __Host- prefix
// over TLS, so that it is Secure, host-only and on every path.
func (k Cookies) Name(c echo.Context, name string) string {
	if k.Secure(c) {
		return "__Host-" + name
	}
	return name
}

// SetSession keeps a session token in the browser.
func (k Cookies) SetSession(c echo.Context, token string) {
	c.SetCookie(&http.Cookie{
		Name:     k.Name(c, SessionCookie),
		Value:    token,
		Path:     "/",
		MaxAge:   int(auth.SessionTTL / time.Second),
		HttpOnly: true,
		Secure:   k.Secure(c),
		SameSite: http.SameSiteLaxMode,
	})
}

// ClearSession removes the session cookie.
func (k Cookies) ClearSession(c echo.Context) {
	c.SetCookie(&http.Cookie{Name: k.Name(c, SessionCookie), Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: k.Secure(c), SameSite: http.SameSiteLaxMode})
}

const csrfKey = "nofx.csrf"

// SetCSRFToken keeps the token the request's forms carry; the server's
// CSRF middleware sets it.
func SetCSRFToken(c echo.Context, token string) { c.Set(csrfKey, token) }

// CSRFToken returns the token to put in forms.
func CSRFToken(c echo.Context) string {
	s, _ := c.Get(csrfKey).(string)
	return s
}
