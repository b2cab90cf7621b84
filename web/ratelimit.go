package web

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/billing"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/ratelimit"
	"github.com/nofxhq/nofx/web/httpx"
)

// Rate limits: each route names its tiers where it is registered (routes.go);
// every request also goes through the general tier. The keys say whose
// bucket a request takes from.

// ipKey is the bucket of the client's address. An IPv6 client is keyed by
// its /64, the block one host or site is given, so that it cannot take a
// fresh bucket per address.
func ipKey(c echo.Context) string {
	ip := net.ParseIP(c.RealIP())
	if ip == nil {
		return "ip:" + c.RealIP()
	}
	if ip.To4() == nil {
		return "ip:" + (&net.IPNet{IP: ip.Mask(net.CIDRMask(64, 128)), Mask: net.CIDRMask(64, 128)}).String()
	}
	return "ip:" + ip.String()
}

// ipKeys is the bucket of the client's address alone.
func ipKeys(c echo.Context) []string { return []string{ipKey(c)} }

// principalKeys is the bucket of the signed-in user or API key, else of
// the client's address.
func principalKeys(c echo.Context) []string {
	p := httpx.Who(c)
	switch {
	case p.APIKey != nil:
		return []string{"key:" + strconv.FormatInt(p.APIKey.ID, 10)}
	case p.User != nil:
		return []string{"user:" + strconv.FormatInt(p.User.ID, 10)}
	}
	return []string{ipKey(c)}
}

// starterKeys is the bucket of whoever starts work: the signed-in user, or
// for an API key the user who made it, so that minting more keys gives no
// more runs; else the client's address.
func starterKeys(c echo.Context) []string {
	if k := httpx.Who(c).APIKey; k != nil && k.CreatedBy.Valid {
		return []string{"user:" + strconv.FormatInt(k.CreatedBy.Int64, 10)}
	}
	return principalKeys(c)
}

// authKeys are the buckets of an account form: the client's address, the
// email the form names, and the signed-in user's own, so that neither many
// addresses nor many accounts get more guesses. The user's own bucket
// counts even when the form names another email (a new one on the profile
// form), so that a session cannot guess its account's password by naming
// a fresh email each time.
func authKeys(c echo.Context) []string {
	keys := []string{ipKey(c)}
	email := auth.NormalizeEmail(c.FormValue("email"))
	if email != "" {
		keys = append(keys, emailKey(email))
	}
	if u := httpx.Who(c).User; u != nil && u.Email != email {
		keys = append(keys, emailKey(u.Email))
	}
	return keys
}

// emailKey is the bucket of an account's email, hashed so that a key's size
// does not depend on what a client sends.
func emailKey(email string) string {
	sum := sha256.Sum256([]byte(email))
	return "email:" + hex.EncodeToString(sum[:16])
}

// webhookKeys is the bucket of a webhook's token (hashed: buckets are logged).
func webhookKeys(c echo.Context) []string {
	sum := sha256.Sum256([]byte(c.Param("token")))
	return []string{"hook:" + hex.EncodeToString(sum[:8])}
}

// limit is a route's middleware for tier l, taking from the buckets keys
// names.
func (s *Server) limit(l *ratelimit.Limiter, keys func(echo.Context) []string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if err := s.allow(c, l, keys(c)); err != nil {
				return err
			}
			return next(c)
		}
	}
}

// limitGeneral puts every request through the general tier, by user or
// client address. Requests to the JSON API with a Bearer key are limited by
// their key once it is known (limitGeneralAPI; a wrong key by the client's
// address); probes and assets are not limited.
func (s *Server) limitGeneral(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		path := c.Request().URL.Path
		if path == "/healthz" || path == "/readyz" || strings.HasPrefix(path, "/static/") {
			return next(c)
		}
		if _, bearer := bearerToken(c); bearer && strings.HasPrefix(path, "/api/v1/") && strings.HasPrefix(c.Path(), "/api/v1/") {
			return next(c)
		}
		if err := s.allow(c, s.limits.General, principalKeys(c)); err != nil {
			return err
		}
		return next(c)
	}
}

// limitGeneralAPI puts an authenticated API request with a Bearer key
// through the general tier by its key, then every API request through its
// team's plan's requests per minute.
func (s *Server) limitGeneralAPI(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p := httpx.Who(c)
		if p.APIKey != nil {
			if err := s.allow(c, s.limits.General, principalKeys(c)); err != nil {
				return err
			}
		}
		if p.Team != nil {
			if err := s.allowPlan(c, p.Team.ID); err != nil {
				return err
			}
		}
		return next(c)
	}
}

// planRateFor is how long a team's plan's API rate is remembered: a plan
// change reaches the limiter within it.
const planRateFor = 10 * time.Second

// allowPlan takes one API request of team teamID at its plan's rate.
func (s *Server) allowPlan(c echo.Context, teamID int64) error {
	perMinute, ok := s.planRates.Get(teamID)
	if !ok {
		plan, err := billing.TeamPlan(c.Request().Context(), s.db.Reader(), teamID)
		if err != nil && !errors.Is(err, db.ErrNotFound) {
			return err
		}
		perMinute = plan.APIPerMinute // a team without a plan is not limited here
		s.planRates.Set(teamID, perMinute, planRateFor)
	}
	d := s.planLimits.Allow(teamID, perMinute)
	if d.Allowed {
		return nil
	}
	if d.FirstRefusal {
		s.log.Warn("rate limited", "tier", ratelimit.Plan, "key", fmt.Sprintf("team:%d", teamID), "limit", fmt.Sprintf("%d/1m", perMinute),
			"path", logPath(c), "request_id", c.Response().Header().Get(echo.HeaderXRequestID))
	}
	h := c.Response().Header()
	h.Set("RateLimit-Limit", strconv.Itoa(d.Limit))
	h.Set("RateLimit-Remaining", "0")
	h.Set("RateLimit-Reset", strconv.Itoa(retryAfterSeconds(d.Reset)))
	s.metrics.Refused(ratelimit.Plan)
	return &tooManyRequests{retryAfter: d.RetryAfter, message: fmt.Sprintf(
		"Your team's plan allows %d API requests a minute. Please wait %s and try again, or upgrade the plan.", perMinute, humanWait(d.RetryAfter))}
}

// allow takes one request from each of keys' buckets in tier l. It sets the
// RateLimit-* headers from the emptiest bucket, and refuses with 429 when
// any bucket is empty, logging a refusal once per key and period and
// counting every one.
func (s *Server) allow(c echo.Context, l *ratelimit.Limiter, keys []string) error {
	if l == nil {
		return nil
	}
	var tightest ratelimit.Decision
	refusedKey := ""
	for i, key := range keys {
		d := l.Allow(key)
		if !d.Allowed {
			refusedKey, tightest = key, d
			if d.FirstRefusal {
				s.log.Warn("rate limited", "tier", l.Tier(), "key", key, "limit", l.Rate().String(),
					"path", logPath(c), "request_id", c.Response().Header().Get(echo.HeaderXRequestID))
			}
			break // the buckets after a refusal are not taken from, nor made
		}
		if i == 0 || d.Remaining < tightest.Remaining {
			tightest = d
		}
	}
	h := c.Response().Header()
	h.Set("RateLimit-Limit", strconv.Itoa(tightest.Limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(tightest.Remaining))
	h.Set("RateLimit-Reset", strconv.Itoa(retryAfterSeconds(tightest.Reset)))
	if refusedKey == "" {
		return nil
	}
	s.metrics.Refused(l.Tier())
	return &tooManyRequests{retryAfter: tightest.RetryAfter, message: limitMessage(l.Tier(), tightest.RetryAfter)}
}

// limitMessage tells a refused client what happened and when to come back.
func limitMessage(tier string, wait time.Duration) string {
	what := "Too many requests"
	switch tier {
	case ratelimit.Auth:
		what = "Too many attempts"
	case ratelimit.Expensive:
		what = "Too many runs started"
	}
	return fmt.Sprintf("%s in a short time. Please wait %s and try again.", what, humanWait(wait))
}

// humanWait writes a wait such as "1 second", "40 seconds" or "2 minutes".
func humanWait(d time.Duration) string {
	secs := retryAfterSeconds(d)
	switch {
	case secs == 1:
		return "1 second"
	case secs < 90:
		return fmt.Sprintf("%d seconds", secs)
	default:
		return fmt.Sprintf("%d minutes", (secs+59)/60)
	}
}
