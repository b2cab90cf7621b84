// Package ratelimit holds NOFX's request rate limits: token buckets per key
// (a user, an API key, a client IP, an email or a webhook token), one set of
// buckets per tier, kept in this process's memory.
package ratelimit

import (
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/didip/tollbooth/v7"
	"github.com/didip/tollbooth/v7/limiter"
	cache "github.com/go-pkgz/expirable-cache/v3"

	"github.com/nofxhq/nofx/internal/config"
)

// The tiers, as named in metrics and logs.
const (
	General   = "general"
	Auth      = "auth"
	Expensive = "expensive"
	Admin     = "admin"
	Webhooks  = "webhooks"
)

// bucketLife is how long a bucket is kept after it is made, in periods of
// its rate. An idle bucket is full again after one period, so forgetting it
// loses nothing; a bucket in use is forgotten (and starts full) at most once
// in bucketLife periods.
const bucketLife = 4

// sweepEvery is how often expired buckets are dropped, so that memory stays
// bounded by the keys seen in the last few periods.
const sweepEvery = time.Minute

// Limiter limits one tier: each key may make Rate.N requests at once, then
// Rate.N per Rate.Per, refilled steadily. A nil Limiter limits nothing.
type Limiter struct {
	tier string
	rate config.Rate
	lmt  *limiter.Limiter
	// refused remembers the keys refused in the current period, so that a
	// refusal is reported once per key and period.
	refused cache.Cache[string, struct{}]

	mu        sync.Mutex
	lastSweep time.Time
}

// Decision is the outcome of one request against a tier.
type Decision struct {
	Allowed bool
	// Limit is the tier's count; Remaining the requests left now.
	Limit     int
	Remaining int
	// Reset is how long until the bucket is full again.
	Reset time.Duration
	// RetryAfter, when refused, is how long until one more request is let in.
	RetryAfter time.Duration
	// FirstRefusal is true for the first refusal of this key in a period:
	// the one to log.
	FirstRefusal bool
}

// New returns the limiter of tier at rate r, or nil when r is off.
func New(tier string, r config.Rate) *Limiter {
	if r.Off() {
		return nil
	}
	perSecond := float64(r.N) / r.Per.Seconds()
	lmt := tollbooth.NewLimiter(perSecond, &limiter.ExpirableOptions{DefaultExpirationTTL: bucketLife * r.Per})
	lmt.SetBurst(r.N)
	// Keys are built by the caller from the peer address as the server
	// sees it; tollbooth never reads a header here.
	lmt.SetIPLookups([]string{"RemoteAddr"})
	return &Limiter{
		tier:      tier,
		rate:      r,
		lmt:       lmt,
		refused:   cache.NewCache[string, struct{}]().WithTTL(r.Per).WithMaxKeys(100_000),
		lastSweep: time.Now(),
	}
}

// Tier is the limiter's tier name.
func (l *Limiter) Tier() string { return l.tier }

// Rate is the limiter's rate.
func (l *Limiter) Rate() config.Rate { return l.rate }

// Allow takes one request for key from its bucket.
func (l *Limiter) Allow(key string) Decision {
	if l == nil {
		return Decision{Allowed: true}
	}
	l.sweep()
	refused := l.lmt.LimitReached(key)
	remaining := max(l.lmt.Tokens(key), 0)
	oneToken := time.Duration(float64(l.rate.Per) / float64(l.rate.N))
	d := Decision{
		Allowed:   !refused,
		Limit:     l.rate.N,
		Remaining: remaining,
		Reset:     time.Duration(math.Max(0, float64(l.rate.N-remaining))) * oneToken,
	}
	if refused {
		d.RetryAfter = oneToken
		if !l.refused.Contains(key) {
			l.refused.Add(key, struct{}{})
			d.FirstRefusal = true
		}
	}
	return d
}

// sweep drops expired buckets now and then.
func (l *Limiter) sweep() {
	l.mu.Lock()
	due := time.Since(l.lastSweep) >= sweepEvery
	if due {
		l.lastSweep = time.Now()
	}
	l.mu.Unlock()
	if due {
		l.lmt.DeleteExpiredTokenBuckets()
		l.refused.DeleteExpired()
	}
}

// Set is the limiter of every tier; a nil field is a tier that is off.
type Set struct {
	General, Auth, Expensive, Admin, Webhooks *Limiter
}

// FromConfig builds the tiers configured in cfg.
func FromConfig(cfg *config.Config) Set {
	return Set{
		General:   New(General, cfg.RateGeneral),
		Auth:      New(Auth, cfg.RateAuth),
		Expensive: New(Expensive, cfg.RateExpensive),
		Admin:     New(Admin, cfg.RateAdmin),
		Webhooks:  New(Webhooks, cfg.RateWebhooks),
	}
}

// Plan is the tier of the API requests a team's plan allows per minute.
const Plan = "plan"

// Plans limits each team's API requests to its plan's rate per minute: one
// limiter per rate, keyed by team, made when a plan with that rate is first
// seen. A team moved to another plan starts with a full bucket of it.
type Plans struct {
	mu     sync.Mutex
	byRate map[int]*Limiter
}

// Allow takes one API request of team teamID, whose plan allows perMinute
// a minute (zero or less: no limit).
func (p *Plans) Allow(teamID int64, perMinute int) Decision {
	if perMinute <= 0 {
		return Decision{Allowed: true}
	}
	p.mu.Lock()
	l, ok := p.byRate[perMinute]
	if !ok {
		if p.byRate == nil {
			p.byRate = map[int]*Limiter{}
		}
		l = New(Plan, config.Rate{N: perMinute, Per: time.Minute})
		p.byRate[perMinute] = l
	}
	p.mu.Unlock()
	return l.Allow("team:" + strconv.FormatInt(teamID, 10))
}
