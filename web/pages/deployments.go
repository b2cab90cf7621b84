package pages

// Deployment pages: a template's deployments and the team's index of them.

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/deployments"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/templates"
	"github.com/nofxhq/nofx/internal/validation"
	view "github.com/nofxhq/nofx/views/deployments"
	templatesview "github.com/nofxhq/nofx/views/templates"
	"github.com/nofxhq/nofx/web/httpx"
)

// deploymentsState is what a deployments page shows besides the saved
// state: a form that came back with errors, or a secret just made.
type deploymentsState struct {
	deploy view.DeployForm
	env    string        // the environment forms belongs to
	forms  view.EnvForms // a form of env that came back with errors
	secret *view.Secret
}

// DeploymentsIndex lists every deployment of the team.
func (s *Pages) DeploymentsIndex(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	list, err := s.deploys.All(c.Request().Context(), a)
	if err != nil {
		return err
	}
	return s.Render(c, http.StatusOK, Page{Title: "Deployments", Nav: "deployments", Content: view.Index(list)})
}

func (s *Pages) DeploymentsPage(c echo.Context) error {
	return s.renderDeployments(c, http.StatusOK, deploymentsState{})
}

// renderDeployments shows the deployments page of the template :slug.
func (s *Pages) renderDeployments(c echo.Context, status int, st deploymentsState) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	t, versions, err := s.templates.Versions(ctx, a, c.Param("slug"))
	if err != nil {
		return err
	}
	list, err := s.deploys.List(ctx, a, t.Slug)
	if err != nil {
		return err
	}
	// A version pinned long ago may be older than the newest the list
	// holds: read it too, for its webhook example and the deploy form.
	for _, dep := range list {
		if !slices.ContainsFunc(versions, func(v templates.Version) bool { return v.Number == dep.Version }) {
			_, v, err := s.templates.Version(ctx, a, t.Slug, dep.Version)
			if err != nil {
				return err
			}
			versions = append(versions, v)
		}
	}
	slices.SortFunc(versions, func(x, y templates.Version) int { return y.Number - x.Number }) // newest first
	tz := httpx.Who(c).Team.TimeZone
	loc, err := teams.LoadLocation(tz)
	if err != nil {
		tz, loc = "UTC", time.UTC
	}
	d := view.Data{Template: t, Versions: versions, CanDeploy: access.Allowed(a.Role, access.TemplatesDeploy),
		CanRun:   access.Allowed(a.Role, access.RunsCreate),
		TimeZone: tz, Location: loc, Deploy: st.deploy, Secret: st.secret}
	for _, env := range deployments.Environments {
		e := view.Env{Name: env}
		for i := range list {
			if list[i].Environment == env {
				e.Deployment = &list[i]
				e.WebhookURL = httpx.WebhookURL(s.baseURL(c), list[i].WebhookToken)
				if e.Refusals, err = s.deploys.Refusals(ctx, a, t.Slug, env); err != nil {
					return err
				}
			}
		}
		if env == st.env {
			e.Forms = st.forms
		}
		d.Envs = append(d.Envs, e)
	}
	return s.Render(c, status, Page{Title: t.Name + " · Deployments", Nav: "templates", Content: view.Page(d)})
}

// DeployTemplate pins the chosen version to the chosen environment. A new
// deployment's webhook secret is shown on this response only.
func (s *Pages) DeployTemplate(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	form := view.DeployForm{Environment: c.FormValue("environment"), Version: strings.TrimSpace(c.FormValue("version"))}
	version := 0
	if form.Version != "" {
		if version, err = strconv.Atoi(form.Version); err != nil {
			form.Errors = validation.Errors{"version": "Choose a version of the template."}
			return s.renderDeployments(c, http.StatusUnprocessableEntity, deploymentsState{deploy: form})
		}
	}
	slug := c.Param("slug")
	out, err := s.deploys.Deploy(c.Request().Context(), a, slug, form.Environment, version)
	var verrs validation.Errors
	if errors.As(err, &verrs) {
		form.Errors = verrs
		return s.renderDeployments(c, http.StatusUnprocessableEntity, deploymentsState{deploy: form})
	}
	if err != nil {
		return err
	}
	if out.Created {
		c.Response().Header().Set("Cache-Control", "no-store")
		return s.renderDeployments(c, http.StatusOK, deploymentsState{secret: &view.Secret{
			Environment: form.Environment, Secret: out.Secret, URL: httpx.WebhookURL(s.baseURL(c), out.Deployment.WebhookToken), Created: true,
		}})
	}
	s.addFlash(c, "success", fmt.Sprintf("Version %d is deployed to %s.", out.Deployment.Version, form.Environment))
	return redirect(c, view.Path(slug))
}

func (s *Pages) PauseDeployment(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	slug, env := c.Param("slug"), c.Param("env")
	if err := s.deploys.Pause(c.Request().Context(), a, slug, env); err != nil {
		return err
	}
	s.addFlash(c, "success", "The "+env+" deployment is paused: its API, webhook and schedule start nothing until you resume it.")
	return redirect(c, view.Path(slug)+"#env-"+env)
}

func (s *Pages) ResumeDeployment(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	slug, env := c.Param("slug"), c.Param("env")
	err = s.deploys.Resume(c.Request().Context(), a, slug, env)
	var verrs validation.Errors
	if errors.As(err, &verrs) { // its schedule could not run: say so at the schedule
		return s.renderDeployments(c, http.StatusUnprocessableEntity, deploymentsState{env: env,
			forms: view.EnvForms{ScheduleError: verrs["schedule"]}})
	}
	if err != nil {
		return err
	}
	s.addFlash(c, "success", "The "+env+" deployment is active again.")
	return redirect(c, view.Path(slug)+"#env-"+env)
}

func (s *Pages) SetDeploymentSchedule(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	slug, env, expr := c.Param("slug"), c.Param("env"), c.FormValue("schedule")
	d, err := s.deploys.SetSchedule(c.Request().Context(), a, slug, env, expr)
	var verrs validation.Errors
	if errors.As(err, &verrs) {
		return s.renderDeployments(c, http.StatusUnprocessableEntity, deploymentsState{env: env,
			forms: view.EnvForms{Schedule: &expr, ScheduleError: verrs["schedule"]}})
	}
	if err != nil {
		return err
	}
	msg := "The " + env + " schedule is cleared."
	if d.Schedule != "" {
		msg = "The " + env + " schedule is saved."
	}
	s.addFlash(c, "success", msg)
	return redirect(c, view.Path(slug)+"#env-"+env)
}

func (s *Pages) SetDeploymentInputMap(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	slug, env, raw := c.Param("slug"), c.Param("env"), c.FormValue("input_map")
	err = s.deploys.SetInputMap(c.Request().Context(), a, slug, env, raw)
	var verrs validation.Errors
	if errors.As(err, &verrs) {
		return s.renderDeployments(c, http.StatusUnprocessableEntity, deploymentsState{env: env,
			forms: view.EnvForms{InputMap: &raw, InputMapError: verrs["input_map"]}})
	}
	if err != nil {
		return err
	}
	s.addFlash(c, "success", "The "+env+" webhook input map is saved.")
	return redirect(c, view.Path(slug)+"#env-"+env)
}

// RotateWebhookSecret replaces a deployment's webhook secret and shows the
// new one on this response only.
func (s *Pages) RotateWebhookSecret(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	slug, env := c.Param("slug"), c.Param("env")
	ctx := c.Request().Context()
	secret, err := s.deploys.RotateSecret(ctx, a, slug, env)
	if err != nil {
		return err
	}
	d, err := s.deploys.Get(ctx, a, slug, env)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return s.renderDeployments(c, http.StatusOK, deploymentsState{secret: &view.Secret{
		Environment: env, Secret: secret, URL: httpx.WebhookURL(s.baseURL(c), d.WebhookToken),
	}})
}

// DeploymentRunPage is the run form of a deployment's pinned version.
func (s *Pages) DeploymentRunPage(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	d, err := s.deploymentRunForm(c, a)
	if err != nil {
		return err
	}
	return s.showRunForm(c, d)
}

// StartDeploymentRun starts a run of a deployment's pinned version from its
// run form, recorded as started by hand.
func (s *Pages) StartDeploymentRun(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	slug, env := c.Param("slug"), c.Param("env")
	return s.submitRunForm(c,
		func(values map[string]any, key string) (runs.Run, bool, error) {
			return s.deploys.RunNow(c.Request().Context(), a, slug, env, values, key)
		},
		func() (templatesview.RunData, error) { return s.deploymentRunForm(c, a) })
}

// deploymentRunForm reads a deployment and its pinned version for its run form.
func (s *Pages) deploymentRunForm(c echo.Context, a access.Actor) (templatesview.RunData, error) {
	ctx := c.Request().Context()
	d, v, err := s.deploys.Pinned(ctx, a, c.Param("slug"), c.Param("env"))
	if err != nil {
		return templatesview.RunData{}, err
	}
	t, _, err := s.templates.Get(ctx, a, d.Template)
	if err != nil {
		return templatesview.RunData{}, err
	}
	spec, err := v.Spec(t.Slug)
	if err != nil {
		return templatesview.RunData{}, err
	}
	return templatesview.RunData{Template: t, Spec: spec, Values: map[string]string{}, Deployment: d.Environment, Version: v.Number}, nil
}
