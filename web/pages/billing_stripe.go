package pages

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/stripe/stripe-go/v82"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/billing"
	"github.com/nofxhq/nofx/internal/validation"
	"github.com/nofxhq/nofx/web/httpx"
)

// stripeOwner returns the acting owner of a Stripe action (the route has
// checked the role), refusing instances without Stripe.
func (s *Pages) stripeOwner(c echo.Context) (access.Actor, error) {
	a, err := httpx.Actor(c)
	if err != nil {
		return access.Actor{}, err
	}
	if s.stripe == nil {
		return access.Actor{}, httpx.ErrNoStripe
	}
	return a, nil
}

// stripeFailed turns Stripe's refusal or silence into a 502 that says
// nothing was changed; the cause is logged by the error handler.
func stripeFailed(err error) error {
	var (
		se     *stripe.Error
		netErr *url.Error
	)
	if errors.As(err, &se) || errors.As(err, &netErr) {
		return echo.NewHTTPError(http.StatusBadGateway, "Stripe did not accept the request, so nothing changed. Please try again in a minute.").SetInternal(err)
	}
	return err
}

// StartCheckout sends the owner to Stripe Checkout for a plan and interval.
func (s *Pages) StartCheckout(c echo.Context) error {
	a, err := s.stripeOwner(c)
	if err != nil {
		return err
	}
	base := s.baseURL(c)
	to, err := s.stripe.Checkout(c.Request().Context(), a, strings.TrimSpace(c.FormValue("plan")), c.FormValue("interval"),
		base+"/billing/checkout/success?session_id={CHECKOUT_SESSION_ID}", base+"/billing/checkout/cancel")
	var verrs validation.Errors
	if errors.As(err, &verrs) {
		for _, msg := range verrs {
			s.addFlash(c, "error", msg)
		}
		return redirect(c, "/billing")
	}
	if errors.Is(err, billing.ErrSubscribed) {
		s.addFlash(c, "error", "The team has a subscription already: change its plan in Manage billing, on the same subscription, so that nothing is billed twice.")
		return redirect(c, "/billing")
	}
	if err != nil {
		return stripeFailed(err)
	}
	return c.Redirect(http.StatusSeeOther, to)
}

// CheckoutDone is where Stripe sends the owner back after paying.
func (s *Pages) CheckoutDone(c echo.Context) error {
	s.addFlash(c, "success", "Checkout is complete. The plan changes as soon as Stripe confirms the subscription, usually within seconds; reload this page to see it.")
	return redirect(c, "/billing")
}

// CheckoutCancelled is where Stripe sends the owner back when they leave
// Checkout without paying.
func (s *Pages) CheckoutCancelled(c echo.Context) error {
	s.addFlash(c, "info", "Checkout was cancelled: nothing was charged and the plan is unchanged.")
	return redirect(c, "/billing")
}

// OpenPortal sends the owner to Stripe's billing portal.
func (s *Pages) OpenPortal(c echo.Context) error {
	a, err := s.stripeOwner(c)
	if err != nil {
		return err
	}
	to, err := s.stripe.Portal(c.Request().Context(), a, s.baseURL(c)+"/billing")
	if errors.Is(err, billing.ErrNoSubscription) {
		s.addFlash(c, "error", "There is no subscription to manage yet: choose a plan first.")
		return redirect(c, "/billing")
	}
	if err != nil {
		return stripeFailed(err)
	}
	return c.Redirect(http.StatusSeeOther, to)
}

// CancelSubscription ends the subscription at the end of its period.
func (s *Pages) CancelSubscription(c echo.Context) error {
	return s.setCancel(c, true, "The subscription ends at the end of this period; until then the plan stays as it is.")
}

// ResumeSubscription undoes a cancellation before the period ends.
func (s *Pages) ResumeSubscription(c echo.Context) error {
	return s.setCancel(c, false, "The subscription goes on: it renews at the end of this period.")
}

func (s *Pages) setCancel(c echo.Context, cancel bool, done string) error {
	a, err := s.stripeOwner(c)
	if err != nil {
		return err
	}
	err = s.stripe.SetCancelAtPeriodEnd(c.Request().Context(), a, cancel)
	if errors.Is(err, billing.ErrNoSubscription) {
		s.addFlash(c, "error", "The team has no current subscription.")
		return redirect(c, "/billing")
	}
	if err != nil {
		return stripeFailed(err)
	}
	s.addFlash(c, "success", done)
	return redirect(c, "/billing")
}
