// Package pages is NOFX's dashboard: the HTML pages and their forms, each
// calling one service, and the shell (layout, flash messages) they render
// in. The server (package web) registers the routes, with their access, in
// its one route table, and renders its error pages through Render.
package pages

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/ai"
	"github.com/nofxhq/nofx/internal/apikeys"
	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/billing"
	"github.com/nofxhq/nofx/internal/comparisons"
	"github.com/nofxhq/nofx/internal/config"
	"github.com/nofxhq/nofx/internal/deployments"
	"github.com/nofxhq/nofx/internal/engine"
	"github.com/nofxhq/nofx/internal/health"
	"github.com/nofxhq/nofx/internal/instance"
	"github.com/nofxhq/nofx/internal/invites"
	"github.com/nofxhq/nofx/internal/live"
	"github.com/nofxhq/nofx/internal/members"
	"github.com/nofxhq/nofx/internal/providerkeys"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/templates"
	"github.com/nofxhq/nofx/web/httpx"
)

// Pages answers the dashboard's requests.
type Pages struct {
	cfg       *config.Config
	maxBody   int64 // bytes; see NOFX_MAX_BODY
	log       *slog.Logger
	audit     *audit.Service
	auth      *auth.Service
	runs      *runs.Service
	engine    *engine.Engine
	broker    live.Broker
	ai        *ai.Registry
	circuits  *ai.Circuits
	keys      *providerkeys.Service
	invites   *invites.Service
	templates *templates.Service
	deploys   *deployments.Service
	billing   *billing.Service
	stripe    *billing.Stripe // nil: local billing
	health    *health.Checker
	compare   *comparisons.Service
	members   *members.Service
	apiKeys   *apikeys.Service
	instance  *instance.Service
	flash     *sessions.CookieStore
	cookies   httpx.Cookies
	// stopping closes when the server shuts down; keepalive is how often
	// an idle event stream sends a comment.
	stopping  <-chan struct{}
	keepalive time.Duration
	edge      Edge
}

// Edge is what the pages take from the server around them.
type Edge interface {
	// BaseURL is the instance's address, for the links pages show.
	BaseURL(c echo.Context) string
	// FollowRun streams a run's news to the browser until it leaves.
	FollowRun(c echo.Context, actor access.Actor, runID, after int64, f httpx.RunFollower) error
	// HoldStream takes one of the actor's event-stream slots, or refuses
	// with 429 when all are taken; release gives it back.
	HoldStream(c echo.Context, actor access.Actor) (release func(), err error)
}

// Deps is what the pages are built from.
type Deps struct {
	Config      *config.Config
	Audit       *audit.Service
	Logger      *slog.Logger
	Auth        *auth.Service
	Runs        *runs.Service
	Engine      *engine.Engine
	Broker      live.Broker
	Providers   *ai.Registry
	Circuits    *ai.Circuits
	Keys        *providerkeys.Service
	Invites     *invites.Service
	Templates   *templates.Service
	Deployments *deployments.Service
	Billing     *billing.Service
	Stripe      *billing.Stripe // nil: local billing
	Health      *health.Checker
	Comparisons *comparisons.Service
	Members     *members.Service
	APIKeys     *apikeys.Service
	Instance    *instance.Service
	Cookies     httpx.Cookies
	Stopping    <-chan struct{}
	Keepalive   time.Duration
	Edge        Edge
}

// New builds the pages.
func New(d Deps) *Pages {
	s := &Pages{
		cfg:       d.Config,
		maxBody:   d.Config.BodyLimit(),
		audit:     d.Audit,
		log:       d.Logger,
		auth:      d.Auth,
		runs:      d.Runs,
		engine:    d.Engine,
		broker:    d.Broker,
		ai:        d.Providers,
		circuits:  d.Circuits,
		keys:      d.Keys,
		invites:   d.Invites,
		templates: d.Templates,
		deploys:   d.Deployments,
		billing:   d.Billing,
		stripe:    d.Stripe,
		health:    d.Health,
		compare:   d.Comparisons,
		members:   d.Members,
		apiKeys:   d.APIKeys,
		instance:  d.Instance,
		flash:     sessions.NewCookieStore(d.Config.SessionSecret),
		cookies:   d.Cookies,
		stopping:  d.Stopping,
		keepalive: d.Keepalive,
		edge:      d.Edge,
	}
	s.flash.Options = &sessions.Options{Path: "/", MaxAge: 300, HttpOnly: true, SameSite: http.SameSiteLaxMode}
	return s
}

func (s *Pages) baseURL(c echo.Context) string { return s.edge.BaseURL(c) }

func (s *Pages) followRun(c echo.Context, actor access.Actor, runID, after int64, f httpx.RunFollower) error {
	return s.edge.FollowRun(c, actor, runID, after, f)
}

func (s *Pages) holdStream(c echo.Context, actor access.Actor) (release func(), err error) {
	return s.edge.HoldStream(c, actor)
}
