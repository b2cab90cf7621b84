package web

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/nofxhq/nofx/internal/apikeys"
	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/teams"
)

const sessionCookie = "nofx_session"

// contentSecurityPolicy allows no inline script and nothing from elsewhere.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"

// securityHeaders sets the headers every response carries.
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		if isTLS(c) {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		return next(c)
	}
}

func isTLS(c echo.Context) bool { return c.Scheme() == "https" }

// isAPI reports whether the request is for the JSON API, or is an inbound
// webhook, which answers in the API's JSON too.
func isAPI(c echo.Context) bool {
	return strings.HasPrefix(c.Request().URL.Path, "/api/") || isWebhook(c)
}

// isWebhook reports whether the request is an inbound webhook delivery
// (/hooks/{token}), authenticated by its signature alone.
func isWebhook(c echo.Context) bool {
	return strings.HasPrefix(c.Request().URL.Path, "/hooks/")
}

// bearerToken returns the token of an "Authorization: Bearer" header.
func bearerToken(c echo.Context) (string, bool) {
	h := c.Request().Header.Get(echo.HeaderAuthorization)
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(token), true
}

// auditRequest lets audit entries written while handling the request
// record where it came from.
func auditRequest(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		ctx := audit.WithRequest(req.Context(), audit.RequestInfo{
			IP: c.RealIP(), UserAgent: req.UserAgent(), RequestID: c.Response().Header().Get(echo.HeaderXRequestID),
		})
		c.SetRequest(req.WithContext(ctx))
		return next(c)
	}
}

// csrf protects every state-changing request made with the session cookie.
// API requests that carry their own Bearer key, or no session at all, have
// no ambient credentials for another site to use, so they skip it (and get
// a plain 401 when they are not authenticated). Webhook deliveries never
// use the session, so a cookie that comes along grants them nothing.
func (s *Server) csrf() echo.MiddlewareFunc {
	return middleware.CSRFWithConfig(middleware.CSRFConfig{
		Skipper: func(c echo.Context) bool {
			if isWebhook(c) {
				return true
			}
			if !isAPI(c) {
				return false
			}
			_, bearer := bearerToken(c)
			_, err := c.Cookie(sessionCookie)
			return bearer || err != nil
		},
		TokenLookup:    "header:X-CSRF-Token,form:_csrf",
		CookieName:     "nofx_csrf",
		CookiePath:     "/",
		CookieHTTPOnly: true,
		CookieSameSite: http.SameSiteLaxMode,
		ErrorHandler: func(err error, c echo.Context) error {
			return echo.NewHTTPError(http.StatusForbidden, "The form expired or did not come from this site. Reload the page and try again.").SetInternal(err)
		},
	})
}

// csrfToken returns the token to put in forms.
func csrfToken(c echo.Context) string {
	s, _ := c.Get("csrf").(string)
	return s
}

// loadSession finds the signed-in user from the session cookie, and the team
// they are working in.
func (s *Server) loadSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		cookie, err := c.Cookie(sessionCookie)
		if err != nil || cookie.Value == "" {
			return next(c)
		}
		ctx := c.Request().Context()
		sess, user, err := s.auth.ResolveSession(ctx, cookie.Value)
		if errors.Is(err, db.ErrNotFound) {
			s.clearSessionCookie(c)
			return next(c)
		}
		if err != nil {
			return err
		}
		p := who(c)
		p.User = &user
		p.SessionToken = cookie.Value
		if team, err := s.currentTeam(c, sess, user.ID); err != nil {
			return err
		} else if team != nil {
			p.Team = team
		}
		return next(c)
	}
}

// currentTeam returns the session's team, or the user's first team when the
// session has none or the user has left it.
func (s *Server) currentTeam(c echo.Context, sess auth.Session, userID int64) (*teams.Membership, error) {
	ctx := c.Request().Context()
	if sess.TeamID.Valid {
		m, err := teams.MembershipOf(ctx, s.db, sess.TeamID.Int64, userID)
		if err == nil {
			return &m, nil
		}
		if !errors.Is(err, db.ErrNotFound) {
			return nil, err
		}
	}
	ms, err := teams.ForUser(ctx, s.db, userID)
	if err != nil || len(ms) == 0 {
		return nil, err
	}
	return &ms[0], nil
}

func (s *Server) setSessionCookie(c echo.Context, token string) {
	c.SetCookie(&http.Cookie{
		Name:     sessionCookie,
		Value:    token,
		Path:     "/",
		MaxAge:   int(auth.SessionTTL / time.Second),
		HttpOnly: true,
		Secure:   isTLS(c),
		SameSite: http.SameSiteLaxMode,
	})
}

func (s *Server) clearSessionCookie(c echo.Context) {
	c.SetCookie(&http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: isTLS(c), SameSite: http.SameSiteLaxMode})
}

// requireUser lets signed-in users through; others are sent to log in.
func (s *Server) requireUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if who(c).User != nil {
			return next(c)
		}
		if c.Request().Method == http.MethodGet && !isAPI(c) {
			return c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(c.Request().URL.RequestURI()))
		}
		return echo.NewHTTPError(http.StatusUnauthorized, "Log in first.")
	}
}

// requireSiteAdmin lets site admins through.
func (s *Server) requireSiteAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if u := who(c).User; u != nil && u.IsSiteAdmin {
			return next(c)
		}
		return echo.NewHTTPError(http.StatusForbidden, "Only site admins can see this page.")
	}
}

// requireAPIAuth lets through requests with a valid API key, or a session.
func (s *Server) requireAPIAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p := who(c)
		if token, ok := bearerToken(c); ok {
			key, err := apikeys.Authenticate(c.Request().Context(), s.db, token)
			if errors.Is(err, apikeys.ErrInvalid) {
				return echo.NewHTTPError(http.StatusUnauthorized, "The API key is unknown, revoked or expired.")
			}
			if err != nil {
				return err
			}
			team, err := teams.ByID(c.Request().Context(), s.db, key.TeamID)
			if err != nil {
				return err
			}
			*p = principal{APIKey: &key, Team: &teams.Membership{Team: team, Role: key.Role}}
			return next(c)
		}
		if p.User != nil {
			return next(c)
		}
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="nofx"`)
		return echo.NewHTTPError(http.StatusUnauthorized, "Send an API key as \"Authorization: Bearer nofx_...\".")
	}
}

// logPath is the path a request is logged under: a webhook's route
// pattern, since its path carries the secret token, or else the path.
func logPath(c echo.Context) string {
	if isWebhook(c) {
		if route := c.Path(); strings.HasPrefix(route, "/hooks/") {
			return route
		}
		return "/hooks/:token"
	}
	return c.Request().URL.Path
}

// logRequests writes one log line per request.
func (s *Server) logRequests() echo.MiddlewareFunc {
	return middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogStatus:    true,
		LogMethod:    true,
		LogURIPath:   true,
		LogLatency:   true,
		LogRequestID: true,
		LogRemoteIP:  true,
		HandleError:  true,
		Skipper: func(c echo.Context) bool {
			p := c.Request().URL.Path
			return p == "/healthz" || p == "/readyz" || p == "/metrics" || strings.HasPrefix(p, "/static/")
		},
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			s.log.LogAttrs(c.Request().Context(), slog.LevelInfo, "request",
				slog.String("method", v.Method),
				slog.String("path", logPath(c)),
				slog.Int("status", v.Status),
				slog.Duration("latency", v.Latency),
				slog.String("request_id", v.RequestID),
				slog.String("ip", v.RemoteIP),
			)
			return nil
		},
	})
}

// recordMetrics counts requests and their durations by route.
func (s *Server) recordMetrics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		s.metrics.HTTPInFlight.Inc()
		defer s.metrics.HTTPInFlight.Dec()
		err := next(c)
		if err != nil {
			c.Error(err) // writes the status we count
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		method := c.Request().Method
		s.metrics.HTTPRequests.WithLabelValues(method, route, strconv.Itoa(c.Response().Status)).Inc()
		s.metrics.HTTPDuration.WithLabelValues(method, route).Observe(time.Since(start).Seconds())
		return nil
	}
}
