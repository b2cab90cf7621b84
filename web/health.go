package web

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nofxhq/nofx/internal/health"
	"github.com/nofxhq/nofx/web/httpx"
)

// healthz answers while the process is up.
func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readiness is the body of /readyz.
type readiness struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// readyz answers 200 when the database answers, its schema is current and
// the workers (if this node has any) are running; with ?verbose=1 it adds
// every health check (status, message, fix) by name.
func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	r := readiness{Status: "ready", Checks: map[string]string{}}
	if err := s.db.PingContext(ctx); err != nil {
		r.Checks["database"] = "unreachable: " + err.Error()
		r.Status = "unavailable"
	} else {
		r.Checks["database"] = "ok"
		current, latest, err := s.db.MigrationVersions(ctx)
		switch {
		case err != nil:
			r.Checks["migrations"] = "unknown: " + err.Error()
			r.Status = "unavailable"
		case current < latest:
			r.Checks["migrations"] = "behind: run nofx migrate"
			r.Status = "unavailable"
		default:
			r.Checks["migrations"] = "ok"
		}
	}
	switch {
	case s.engine.Workers() == 0:
		r.Checks["workers"] = "none: a web-only node (NOFX_WORKERS=0)"
	case s.engine.Running():
		r.Checks["workers"] = fmt.Sprintf("ok: %d", s.engine.Workers())
	default:
		r.Checks["workers"] = "stopped"
		r.Status = "unavailable"
	}
	status := http.StatusOK
	if r.Status != "ready" {
		status = http.StatusServiceUnavailable
	}
	if c.QueryParam("verbose") == "" || s.health == nil {
		return c.JSON(status, r)
	}
	// Every check of Admin → Health, for scripts and monitors, within the
	// general rate limit (it reads more than the plain probe); the status
	// code stays the plain readiness above. Anyone sees each check's status;
	// what it says (hosts, addresses, errors) only a site admin or a
	// scraper with NOFX_METRICS_TOKEN.
	if err := s.allow(c, s.limits.General, principalKeys(c)); err != nil {
		return err
	}
	report := s.health.Report(ctx)
	detail := s.mayReadHealth(c)
	checks := map[string]health.Check{}
	for _, ch := range report.Checks {
		if !detail {
			ch = health.Check{Name: ch.Name, Status: ch.Status}
		}
		checks[ch.Name] = ch
	}
	return c.JSON(status, map[string]any{"status": r.Status, "health": report.Worst(), "checks": checks})
}

// mayReadHealth reports whether the request may read what health checks
// say: a signed-in site admin, or the metrics token when one is set.
func (s *Server) mayReadHealth(c echo.Context) bool {
	if u := httpx.Who(c).User; u != nil && u.IsSiteAdmin {
		return true
	}
	want := s.cfg.MetricsToken
	got, ok := strings.CutPrefix(c.Request().Header.Get(echo.HeaderAuthorization), "Bearer ")
	return want != "" && ok && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// serveMetrics answers GET /metrics in the Prometheus text format; with
// NOFX_METRICS_TOKEN set, only to requests that bear that token.
func (s *Server) serveMetrics() echo.HandlerFunc {
	metrics := promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{})
	return func(c echo.Context) error {
		if want := s.cfg.MetricsToken; want != "" {
			got, ok := strings.CutPrefix(c.Request().Header.Get(echo.HeaderAuthorization), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
				c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="metrics"`)
				return echo.NewHTTPError(http.StatusUnauthorized, "Send the metrics token as Authorization: Bearer <NOFX_METRICS_TOKEN>.")
			}
		}
		metrics.ServeHTTP(c.Response(), c.Request())
		return nil
	}
}
