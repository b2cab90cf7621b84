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
	"github.com/nofxhq/nofx/web/httpx"
)

// contentSecurityPolicy allows no inline script and nothing from elsewhere.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"

// securityHeaders sets the headers every response carries; HSTS only when
// the instance is served over TLS (never on a client's say-so).
func (s *Server) securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		if s.cookies.Secure(c) {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		return next(c)
	}
}

// isAPI reports whether the request is for the JSON API, or is an inbound
// webhook, which answers in the API's JSON too.
func isAPI(c echo.Context) bool {
	return strings.HasPrefix(c.Request().URL.Path, "/api/") || isWebhook(c)
}

// isWebhook reports whether the request is an inbound webhook delivery
// (/hooks/{token}, or Stripe's), authenticated by its signature alone.
func isWebhook(c echo.Context) bool {
	p := c.Request().URL.Path
	return strings.HasPrefix(p, "/hooks/") || p == StripeWebhookPath
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

// loadSession finds the signed-in user from the session cookie, and the team
// they are working in.
func (s *Server) loadSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		cookie, err := c.Cookie(s.cookies.Name(c, httpx.SessionCookie))
		if err != nil || cookie.Value == "" {
			return next(c)
		}
		ctx := c.Request().Context()
		sess, user, err := s.auth.ResolveSession(ctx, cookie.Value)
		if errors.Is(err, db.ErrNotFound) {
			s.cookies.ClearSession(c)
			return next(c)
		}
		if err != nil {
			return err
		}
		p := httpx.Who(c)
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
		m, err := teams.MembershipOf(ctx, s.db.Reader(), sess.TeamID.Int64, userID)
		if err == nil {
			return &m, nil
		}
		if !errors.Is(err, db.ErrNotFound) {
			return nil, err
		}
	}
	ms, err := teams.ForUser(ctx, s.db.Reader(), userID)
	if err != nil || len(ms) == 0 {
		return nil, err
	}
	return &ms[0], nil
}

// requireUser lets signed-in users through; others are sent to log in.
func (s *Server) requireUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if httpx.Who(c).User != nil {
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
		if u := httpx.Who(c).User; u != nil && u.IsSiteAdmin {
			return next(c)
		}
		return echo.NewHTTPError(http.StatusForbidden, "Only site admins can see this page.")
	}
}

// requireAPIAuth lets through requests with a valid API key, or a session.
func (s *Server) requireAPIAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p := httpx.Who(c)
		if token, ok := bearerToken(c); ok {
			key, team, err := apikeys.Authenticate(c.Request().Context(), s.db, token)
			if errors.Is(err, apikeys.ErrInvalid) {
				// Wrong keys count against the client's address, so that
				// guessing is limited like any other request.
				if err := s.allow(c, s.limits.General, []string{ipKey(c)}); err != nil {
					return err
				}
				return echo.NewHTTPError(http.StatusUnauthorized, "The API key is unknown, revoked or expired.")
			}
			if err != nil {
				return err
			}
			*p = httpx.Principal{APIKey: &key, Team: &teams.Membership{Team: team, Role: key.Role}}
			return next(c)
		}
		if p.User != nil {
			return next(c)
		}
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="nofx"`)
		return echo.NewHTTPError(http.StatusUnauthorized, "Send an API key as \"Authorization: Bearer nofx_...\".")
	}
}

// tokenPaths are the path prefixes whose next segment is a secret token.
var tokenPaths = []string{"/hooks/", "/invites/"}

// logPath is the path a request is logged under: the route pattern of a
// path that carries a secret token (a webhook's, an invitation's), with the
// token masked even when no route matched, or else the path.
func logPath(c echo.Context) string {
	path := c.Request().URL.Path
	for _, prefix := range tokenPaths {
		if !strings.HasPrefix(path, prefix) {
			continue
		}
		if route := c.Path(); strings.HasPrefix(route, prefix) && strings.Contains(route, ":token") {
			return route
		}
		rest := strings.TrimPrefix(path, prefix)
		if _, tail, ok := strings.Cut(rest, "/"); ok {
			return prefix + ":token/" + tail
		}
		return prefix + ":token"
	}
	return path
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
		if p := httpx.Who(c); c.Response().Status < 500 && (p.User != nil || p.APIKey != nil) {
			s.dbOutage.Observe(nil) // its session or key was read: the database answers
		}
		s.metrics.HTTPRequests.WithLabelValues(method, route, strconv.Itoa(c.Response().Status)).Inc()
		s.metrics.HTTPDuration.WithLabelValues(method, route).Observe(time.Since(start).Seconds())
		return nil
	}
}
