package api

// Deployments JSON API.

import (
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/deployments"
	"github.com/nofxhq/nofx/internal/pricing"
	"github.com/nofxhq/nofx/web/httpx"
)

// deploymentJSON is a deployment in the API; its webhook secret is shown
// only in the response that creates it (deployResponse).
type deploymentJSON struct {
	Template    string            `json:"template"`
	Environment string            `json:"environment"`
	Version     int               `json:"version"`
	Status      string            `json:"status"` // active or paused
	Schedule    string            `json:"schedule"`
	NextRunAt   *time.Time        `json:"next_run_at"`
	InputMap    map[string]string `json:"input_map"`
	WebhookURL  string            `json:"webhook_url"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
	Stats       *statsJSON        `json:"stats,omitempty"`
	RecentRuns  []recentRunJSON   `json:"recent_runs,omitempty"`
}

// statsJSON sums up a deployment's runs of the last 30 days.
type statsJSON struct {
	Runs          int      `json:"runs"`
	Finished      int      `json:"finished"`
	Succeeded     int      `json:"succeeded"`
	SuccessRate   *float64 `json:"success_rate"` // null until a run finishes
	AvgCostMicros int64    `json:"avg_cost_micros"`
	AvgCost       string   `json:"avg_cost"`
}

// recentRunJSON is one of a deployment's latest runs.
type recentRunJSON struct {
	ID           int64      `json:"id"`
	Status       string     `json:"status"`
	TriggeredBy  string     `json:"triggered_by"`
	CostMicros   int64      `json:"cost_micros"`
	ScheduledFor *time.Time `json:"scheduled_for,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	FinishedAt   *time.Time `json:"finished_at"`
}

// deployResponse is the answer to a deploy: the webhook secret appears
// only when the deployment was just created, never again.
type deployResponse struct {
	Deployment    deploymentJSON `json:"deployment"`
	Created       bool           `json:"created"`
	WebhookSecret string         `json:"webhook_secret,omitempty"`
}

// deployRequest is the body of POST /api/v1/templates/{slug}/deploy;
// version 0 or absent deploys the current version.
type deployRequest struct {
	Environment string `json:"environment"`
	Version     int    `json:"version"`
}

// triggerRequest is the body of POST /api/v1/deployments/{slug}/{env}/runs.
type triggerRequest struct {
	Inputs map[string]any `json:"inputs"`
}

func (s *API) toDeploymentJSON(c echo.Context, d deployments.Deployment) deploymentJSON {
	status := "active"
	if d.Paused {
		status = "paused"
	}
	return deploymentJSON{
		Template: d.Template, Environment: d.Environment, Version: d.Version, Status: status,
		Schedule: d.Schedule, NextRunAt: d.NextRunAt, InputMap: d.InputMap(), WebhookURL: httpx.WebhookURL(s.baseURL(c), d.WebhookToken),
		CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
	}
}

func (s *API) DeployTemplate(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	var req deployRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	out, err := s.deploys.Deploy(c.Request().Context(), a, c.Param("slug"), req.Environment, req.Version)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if out.Created {
		status = http.StatusCreated
		c.Response().Header().Set("Cache-Control", "no-store")
	}
	return c.JSON(status, deployResponse{Deployment: s.toDeploymentJSON(c, out.Deployment), Created: out.Created, WebhookSecret: out.Secret})
}

func (s *API) ListDeployments(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	list, err := s.deploys.List(c.Request().Context(), a, c.Param("slug"))
	if err != nil {
		return err
	}
	out := make([]deploymentJSON, 0, len(list))
	for _, o := range list {
		d := s.toDeploymentJSON(c, o.Deployment)
		d.Stats = &statsJSON{Runs: o.Stats.Runs, Finished: o.Stats.Finished, Succeeded: o.Stats.Succeeded,
			SuccessRate: o.Stats.SuccessRate, AvgCostMicros: o.Stats.AvgCostMicros, AvgCost: pricing.FormatDollars(o.Stats.AvgCostMicros)}
		d.RecentRuns = make([]recentRunJSON, 0, len(o.Recent))
		for _, r := range o.Recent {
			d.RecentRuns = append(d.RecentRuns, recentRunJSON(r))
		}
		out = append(out, d)
	}
	return c.JSON(http.StatusOK, deploymentsResponse{Deployments: out})
}

func (s *API) TriggerDeployment(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	var req triggerRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	run, replayed, err := s.deploys.Trigger(c.Request().Context(), a, c.Param("slug"), c.Param("env"), req.Inputs,
		c.Request().Header.Get("Idempotency-Key"))
	if err != nil {
		return err
	}
	if replayed {
		c.Response().Header().Set("Idempotent-Replayed", "true")
	}
	c.Response().Header().Set(echo.HeaderLocation, fmt.Sprintf("/api/v1/runs/%d", run.ID))
	return c.JSON(http.StatusCreated, toRunJSON(run, nil))
}

func (s *API) PauseDeployment(c echo.Context) error {
	return s.setPaused(c, true)
}

func (s *API) ResumeDeployment(c echo.Context) error {
	return s.setPaused(c, false)
}

// setPaused pauses or resumes a deployment and answers with it.
func (s *API) setPaused(c echo.Context, paused bool) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	ctx, slug, env := c.Request().Context(), c.Param("slug"), c.Param("env")
	if paused {
		err = s.deploys.Pause(ctx, a, slug, env)
	} else {
		err = s.deploys.Resume(ctx, a, slug, env)
	}
	if err != nil {
		return err
	}
	d, err := s.deploys.Get(ctx, a, slug, env)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, deploymentResponse{Deployment: s.toDeploymentJSON(c, d)})
}
