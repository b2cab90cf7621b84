package pages

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/validation"
	billingview "github.com/nofxhq/nofx/views/billing"
	"github.com/nofxhq/nofx/web/httpx"
)

// BillingPage shows the team's plan, its period's usage against each
// limit, runs and cost by day, the costliest templates, and the plans.
func (s *Pages) BillingPage(c echo.Context) error {
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
	return s.Render(c, http.StatusOK, Page{Title: "Billing", Nav: "billing", Content: billingview.Page(d)})
}

// stripeEnabled reports whether Stripe bills this instance's plans.
func (s *Pages) stripeEnabled() bool { return s.stripe != nil }

// errStripeBilled refuses a change that Stripe checkout makes when Stripe
// bills the instance.
var errStripeBilled = &runs.ConflictError{Message: "Plans on this instance are bought through Stripe checkout."}

// ChangePlan moves the team to another plan under local billing: the
// owner chooses, and nothing is charged.
func (s *Pages) ChangePlan(c echo.Context) error {
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
func (s *Pages) planName(c echo.Context, id string) string {
	if p, err := s.billing.Plan(c.Request().Context(), id); err == nil {
		return p.Name
	}
	return id
}
