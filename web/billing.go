package web

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/billing"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/validation"
	billingview "github.com/nofxhq/nofx/views/billing"
	"github.com/nofxhq/nofx/web/httpx"
)

// billingPage shows the team's plan, its period's usage against each
// limit, runs and cost by day, the costliest templates, and the plans.
func (s *Server) billingPage(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	o, err := s.billing.Overview(ctx, a)
	if err != nil {
		return err
	}
	totals, err := s.runs.Totals(ctx, a, o.Period.Start, o.Period.End)
	if err != nil {
		return err
	}
	t, err := httpx.CurrentTeam(c)
	if err != nil {
		return err
	}
	d := billingview.Data{
		TeamName: t.Name, Overview: o, Totals: totals, Now: time.Now(),
		CanManage: access.Allowed(a.Role, access.BillingManage), Stripe: s.stripeEnabled(),
	}
	if s.stripe != nil {
		if d.Subscription, err = s.stripe.SubscriptionOf(ctx, a); err != nil {
			return err
		}
		// The page stands without them: Stripe may be slow or down.
		if d.Invoices, err = s.stripe.Invoices(ctx, a); err != nil {
			s.log.Warn("billing page: invoices", "team_id", a.TeamID, "error", err)
			d.Invoices, d.InvoicesError = nil, "Stripe did not answer, so the invoices cannot be shown now."
		}
	}
	return s.render(c, http.StatusOK, page{Title: "Billing", Nav: "billing", Content: billingview.Page(d)})
}

// stripeEnabled reports whether Stripe bills this instance's plans.
func (s *Server) stripeEnabled() bool { return s.stripe != nil }

// errStripeBilled refuses a change that Stripe checkout makes when Stripe
// bills the instance.
var errStripeBilled = &runs.ConflictError{Message: "Plans on this instance are bought through Stripe checkout."}

// changePlan moves the team to another plan under local billing: the
// owner chooses, and nothing is charged.
func (s *Server) changePlan(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	if s.stripeEnabled() {
		return errStripeBilled
	}
	planID := strings.TrimSpace(c.FormValue("plan"))
	err = s.billing.ChangePlan(c.Request().Context(), a, planID)
	var verrs validation.Errors
	if errors.As(err, &verrs) {
		s.addFlash(c, "error", "Choose one of the plans on this page.")
		return redirect(c, "/billing")
	}
	if err != nil {
		return err
	}
	s.addFlash(c, "success", "The team is on the "+s.planName(c, planID)+" plan now.")
	return redirect(c, "/billing")
}

// planName is a plan's name for a message, or its id when it cannot be read.
func (s *Server) planName(c echo.Context, id string) string {
	if p, err := billing.GetPlan(c.Request().Context(), s.db.Reader(), id); err == nil {
		return p.Name
	}
	return id
}

// billingJSON is GET /api/v1/billing.
type billingJSON struct {
	Plan     planJSON          `json:"plan"`
	Period   billing.Period    `json:"period"`
	Limits   limitsJSON        `json:"limits"`
	Usage    billing.Usage     `json:"usage"`
	Warnings []warningJSON     `json:"warnings"`
	Billing  string            `json:"billing"` // "local" or "stripe"
	Plans    []planSummaryJSON `json:"plans"`
}

type planJSON struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	MonthlyCents int64  `json:"monthly_cents"` // -1: by contract
	YearlyCents  int64  `json:"yearly_cents"`
}

type planSummaryJSON struct {
	planJSON
	Limits limitsJSON `json:"limits"`
}

// limitsJSON are a plan's limits; -1 is unlimited.
type limitsJSON struct {
	RunsPerMonth int64 `json:"runs_per_month"`
	SpendMicros  int64 `json:"spend_micros"`
	Concurrency  int   `json:"concurrency"`
	Members      int   `json:"members"`
	APIPerMinute int   `json:"api_per_minute"`
	InstanceKeys bool  `json:"instance_keys"`
}

type warningJSON struct {
	billing.Warning
	Message string `json:"message"`
}

func toPlanJSON(p billing.Plan) planJSON {
	return planJSON{ID: p.ID, Name: p.Name, MonthlyCents: p.MonthlyCents, YearlyCents: p.YearlyCents}
}

func toLimitsJSON(p billing.Plan) limitsJSON {
	return limitsJSON{RunsPerMonth: p.Runs, SpendMicros: p.SpendMicros, Concurrency: p.Concurrency, Members: p.Members,
		APIPerMinute: p.APIPerMinute, InstanceKeys: p.InstanceKeys}
}

// apiBilling returns the team's plan, period, limits, usage and warnings.
func (s *Server) apiBilling(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	o, err := s.billing.Overview(c.Request().Context(), a)
	if err != nil {
		return err
	}
	out := billingJSON{Plan: toPlanJSON(o.Plan), Period: o.Period, Limits: toLimitsJSON(o.Plan), Usage: o.Usage,
		Warnings: []warningJSON{}, Billing: "local"}
	if s.stripeEnabled() {
		out.Billing = "stripe"
	}
	for _, w := range o.Warnings {
		out.Warnings = append(out.Warnings, warningJSON{Warning: w, Message: w.Message()})
	}
	for _, p := range o.Plans {
		out.Plans = append(out.Plans, planSummaryJSON{planJSON: toPlanJSON(p), Limits: toLimitsJSON(p)})
	}
	return c.JSON(http.StatusOK, out)
}
