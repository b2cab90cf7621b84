// Package api is NOFX's JSON API, /api/v1: its handlers, each calling one
// service, and its OpenAPI document. The server (package web) registers
// the routes, with their access, in its one route table, and answers every
// error in the API's JSON error shape.
package api

import (
	"log/slog"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/apikeys"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/billing"
	"github.com/nofxhq/nofx/internal/comparisons"
	"github.com/nofxhq/nofx/internal/deployments"
	"github.com/nofxhq/nofx/internal/invites"
	"github.com/nofxhq/nofx/internal/members"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/templates"
	"github.com/nofxhq/nofx/web/httpx"
)

// API answers the JSON API's requests.
type API struct {
	log       *slog.Logger
	auth      *auth.Service
	runs      *runs.Service
	templates *templates.Service
	deploys   *deployments.Service
	compare   *comparisons.Service
	members   *members.Service
	invites   *invites.Service
	apiKeys   *apikeys.Service
	billing   *billing.Service
	stripe    *billing.Stripe
	edge      Edge
}

// Edge is what the API takes from the server around it.
type Edge interface {
	// BaseURL is the instance's address, for the links the API returns.
	BaseURL(c echo.Context) string
	// FollowRun streams a run's news to the client until it leaves.
	FollowRun(c echo.Context, actor access.Actor, runID, after int64, f httpx.RunFollower) error
}

// Deps is what the API is built from.
type Deps struct {
	Log         *slog.Logger
	Auth        *auth.Service
	Runs        *runs.Service
	Templates   *templates.Service
	Deployments *deployments.Service
	Comparisons *comparisons.Service
	Members     *members.Service
	Invites     *invites.Service
	APIKeys     *apikeys.Service
	Billing     *billing.Service
	Stripe      *billing.Stripe // nil: local billing
	Edge        Edge
}

// New builds the API.
func New(d Deps) *API {
	return &API{log: d.Log, auth: d.Auth, runs: d.Runs, templates: d.Templates, deploys: d.Deployments, compare: d.Comparisons,
		members: d.Members, invites: d.Invites, apiKeys: d.APIKeys, billing: d.Billing, stripe: d.Stripe, edge: d.Edge}
}

func (s *API) stripeEnabled() bool { return s.stripe != nil }

func (s *API) baseURL(c echo.Context) string { return s.edge.BaseURL(c) }

func (s *API) followRun(c echo.Context, actor access.Actor, runID, after int64, f httpx.RunFollower) error {
	return s.edge.FollowRun(c, actor, runID, after, f)
}
