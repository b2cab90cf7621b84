package pages

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/billing"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/validation"
	"github.com/nofxhq/nofx/views/admin"
	"github.com/nofxhq/nofx/web/httpx"
)

// PlansPage lists the plans, each with a form to change it.
func (s *Pages) PlansPage(c echo.Context) error {
	return s.renderPlans(c, http.StatusOK, admin.PlanForm{})
}

func (s *Pages) renderPlans(c echo.Context, status int, form admin.PlanForm) error {
	plans, err := s.billing.Plans(c.Request().Context())
	if err != nil {
		return err
	}
	return s.Render(c, status, Page{Title: "Plans", Nav: "admin", Content: admin.Plans(plans, form)})
}

// planFields are the fields of a plan's form, as billing.ParsePlanChange
// reads them.
var planFields = []string{"name", "monthly", "yearly", "stripe_price_monthly", "stripe_price_yearly", "runs", "spend",
	"concurrency", "members", "api_per_minute"}

// SavePlan changes a plan's prices and limits; every field of the form is
// sent, and a problem keeps what was typed next to its field.
func (s *Pages) SavePlan(c echo.Context) error {
	id := c.Param("id")
	typed := map[string]string{}
	for _, f := range planFields {
		typed[f] = c.FormValue(f)
	}
	typed["instance_keys"] = strconv.FormatBool(c.FormValue("instance_keys") == "on")
	change, err := billing.ParsePlanChange(func(field string) (string, bool) { v, ok := typed[field]; return v, ok })
	if err == nil {
		_, err = s.billing.UpdatePlan(c.Request().Context(), auditEntry(c, "", "", ""), id, change)
	}
	var errs validation.Errors
	switch {
	case errors.Is(err, billing.ErrUnknownPlan):
		return echo.NewHTTPError(http.StatusNotFound, "There is no such plan.")
	case errors.As(err, &errs):
		return s.renderPlans(c, http.StatusUnprocessableEntity, admin.PlanForm{ID: id, Values: typed, Errors: errs})
	case err != nil:
		return err
	}
	s.addFlash(c, "success", "Plan "+id+" saved. Teams on it have its new limits now.")
	return redirect(c, "/admin/plans#plan-"+id)
}

// TeamsPage lists the teams with their plan, owner, usage this period and
// last activity; q searches names and owners' emails; pages by name.
func (s *Pages) TeamsPage(c echo.Context) error {
	ctx := c.Request().Context()
	q := billing.TeamQuery{Search: c.QueryParam("q"), AfterName: c.QueryParam("after_name")}
	if after := c.QueryParam("after"); after != "" {
		id, err := strconv.ParseInt(after, 10, 64)
		if err != nil || id < 1 {
			return echo.NewHTTPError(http.StatusBadRequest, "after must be a team id.")
		}
		q.AfterID = id
	}
	p, err := s.billing.Teams(ctx, q)
	if err != nil {
		return err
	}
	plans, err := s.billing.Plans(ctx)
	if err != nil {
		return err
	}
	return s.Render(c, http.StatusOK, Page{Title: "Teams", Nav: "admin", Content: admin.Teams(admin.TeamsData{Page: p, Plans: plans, Search: q.Search})})
}

// SetTeamPlan moves a team to a plan by hand.
func (s *Pages) SetTeamPlan(c echo.Context) error {
	id, err := httpx.PathID(c, "id")
	if err != nil {
		return err
	}
	planID := strings.TrimSpace(c.FormValue("plan"))
	err = s.billing.SetTeamPlan(c.Request().Context(), auditEntry(c, "", "", ""), id, planID)
	var errs validation.Errors
	switch {
	case errors.Is(err, db.ErrNotFound):
		return echo.NewHTTPError(http.StatusNotFound, "There is no such team.")
	case errors.As(err, &errs):
		s.addFlash(c, "error", "Choose one of the plans.")
		return redirect(c, "/admin/teams")
	case err != nil:
		return err
	}
	s.addFlash(c, "success", "The team is on the "+s.planName(c, planID)+" plan now.")
	return redirect(c, "/admin/teams")
}
