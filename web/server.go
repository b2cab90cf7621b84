// Package web is NOFX's HTTP server: the one route table with each route's
// access, the middleware, error pages and event streams around the
// dashboard (package pages) and the /api/v1 JSON API (package api).
//
// Its tests drive the whole server through its router, one file per
// feature, the pages' and the API's alike: HTTP tests on both databases and
// browser tests in headless Chromium (harness_test.go, browser_test.go).
package web

import (
	"cmp"
	"log/slog"
	"net/http"
	"sync"
	"time"

	cache "github.com/go-pkgz/expirable-cache/v3"
	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/ai"
	"github.com/nofxhq/nofx/internal/apikeys"
	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/billing"
	"github.com/nofxhq/nofx/internal/comparisons"
	"github.com/nofxhq/nofx/internal/config"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/deployments"
	"github.com/nofxhq/nofx/internal/engine"
	"github.com/nofxhq/nofx/internal/health"
	"github.com/nofxhq/nofx/internal/instance"
	"github.com/nofxhq/nofx/internal/invites"
	"github.com/nofxhq/nofx/internal/live"
	"github.com/nofxhq/nofx/internal/members"
	"github.com/nofxhq/nofx/internal/metrics"
	"github.com/nofxhq/nofx/internal/providerkeys"
	"github.com/nofxhq/nofx/internal/ratelimit"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/templates"
	"github.com/nofxhq/nofx/web/api"
	"github.com/nofxhq/nofx/web/httpx"
	"github.com/nofxhq/nofx/web/pages"
)

// Deps is what the server is built from.
type Deps struct {
	Config    *config.Config
	DB        *db.DB
	Logger    *slog.Logger
	Metrics   *metrics.Metrics
	Auth      *auth.Service
	Runs      *runs.Service
	Engine    *engine.Engine
	Broker    live.Broker
	Providers *ai.Registry
	Circuits  *ai.Circuits
	Keys      *providerkeys.Service
	Invites   *invites.Service
	Templates *templates.Service
	// Deployments pins template versions and triggers their runs.
	Deployments *deployments.Service
	// Billing reads and changes plans and what teams use of them.
	Billing *billing.Service
	// Stripe and StripeHook sell plans through Stripe; nil for local billing.
	Stripe     *billing.Stripe
	StripeHook *billing.Webhook
	// Health gathers Admin → Health and /readyz?verbose=1.
	Health *health.Checker
	// Comparisons replays finished steps on other models.
	Comparisons *comparisons.Service
	Members     *members.Service
	APIKeys     *apikeys.Service
	// Instance reads the admin overview and changes instance settings.
	Instance *instance.Service
	// Audit reads a team's audit log.
	Audit *audit.Service
	// StreamKeepalive is how often an idle event stream sends a comment and
	// reads its run again; sseKeepalive when 0 (tests make it short).
	StreamKeepalive time.Duration
}

// Server answers NOFX's HTTP requests.
type Server struct {
	cfg        *config.Config
	maxBody    int64 // bytes; see NOFX_MAX_BODY
	db         *db.DB
	log        *slog.Logger
	metrics    *metrics.Metrics
	auth       *auth.Service
	runs       *runs.Service
	engine     *engine.Engine
	broker     live.Broker
	deploys    *deployments.Service
	stripeHook *billing.Webhook // nil: local billing
	health     *health.Checker
	cookies    httpx.Cookies
	// limits are the rate limit tiers; csrfKey signs CSRF tokens.
	limits  ratelimit.Set
	csrfKey []byte
	// planLimits limit each team's API requests to its plan's rate, read
	// through planRates (team id → requests a minute).
	planLimits ratelimit.Plans
	planRates  cache.Cache[int64, int]
	// streams counts the open event streams per user or key.
	streams openStreams
	// stopping closes when the server shuts down, so that event streams end
	// instead of holding the shutdown up.
	stopping chan struct{}
	// keepalive is how often an idle event stream sends a comment.
	keepalive time.Duration
	// dbOutage logs requests refused while the database is away once.
	dbOutage *db.Outage
	stopOnce sync.Once
	echo     *echo.Echo
	// table is every route with its access, as routes registers them.
	table []Route
	// api answers /api/v1; pages answers the dashboard.
	api   *api.API
	pages *pages.Pages
}

// New builds the server and its routes.
func New(d Deps) *Server {
	s := &Server{
		cfg:        d.Config,
		maxBody:    d.Config.BodyLimit(),
		db:         d.DB,
		log:        d.Logger,
		metrics:    d.Metrics,
		auth:       d.Auth,
		runs:       d.Runs,
		engine:     d.Engine,
		broker:     d.Broker,
		deploys:    d.Deployments,
		stripeHook: d.StripeHook,
		health:     d.Health,
		cookies:    httpx.Cookies{TLS: d.Config.TLS()},
		limits:     ratelimit.FromConfig(d.Config),
		csrfKey:    csrfKey(d.Config.SessionSecret),
		planRates:  cache.NewCache[int64, int]().WithMaxKeys(100_000),
		stopping:   make(chan struct{}),
		keepalive:  cmp.Or(d.StreamKeepalive, sseKeepalive),
		dbOutage:   &db.Outage{Log: d.Logger, What: "requests"},
	}

	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.handleError
	e.IPExtractor = ipExtractor(d.Config.TrustedProxies)
	e.SchemeExtractor = schemeExtractor(d.Config.TrustedProxies)
	s.echo = e
	s.api = api.New(api.Deps{Log: d.Logger, Auth: d.Auth, Runs: d.Runs, Templates: d.Templates, Deployments: d.Deployments,
		Comparisons: d.Comparisons, Members: d.Members, Invites: d.Invites, APIKeys: d.APIKeys, Billing: d.Billing, Stripe: d.Stripe,
		Edge: edge{s}})
	s.pages = pages.New(pages.Deps{Config: d.Config, Audit: d.Audit, Logger: d.Logger, Auth: d.Auth, Runs: d.Runs, Engine: d.Engine,
		Broker: d.Broker, Providers: d.Providers, Circuits: d.Circuits, Keys: d.Keys, Invites: d.Invites, Templates: d.Templates,
		Deployments: d.Deployments, Billing: d.Billing, Stripe: d.Stripe, Health: d.Health, Comparisons: d.Comparisons,
		Members: d.Members, APIKeys: d.APIKeys, Instance: d.Instance, Cookies: s.cookies, Stopping: s.stopping,
		Keepalive: s.keepalive, Edge: edge{s}})
	s.routes()
	return s
}

// edge is what the API and the pages take from the server: its address and
// its event streams.
type edge struct{ s *Server }

func (e edge) BaseURL(c echo.Context) string { return e.s.baseURL(c) }

func (e edge) FollowRun(c echo.Context, actor access.Actor, runID, after int64, f httpx.RunFollower) error {
	return e.s.followRun(c, actor, runID, after, f)
}

func (e edge) HoldStream(c echo.Context, actor access.Actor) (release func(), err error) {
	return e.s.holdStream(c, actor)
}

// StopStreams ends every open event stream; call it when shutdown begins
// (http.Server.RegisterOnShutdown).
func (s *Server) StopStreams() {
	s.stopOnce.Do(func() { close(s.stopping) })
}

// Handler returns the server as an http.Handler.
func (s *Server) Handler() http.Handler { return s.echo }

// Routes lists every registered method and path, for tests that walk them.
func (s *Server) Routes() []*echo.Route { return s.echo.Routes() }
