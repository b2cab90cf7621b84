package web

import (
	"errors"
	"io"
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

// StripeWebhookPath is where Stripe sends its events.
const StripeWebhookPath = "/webhooks/stripe"

// maxStripeEvent caps a Stripe event's body; Stripe's are far smaller.
const maxStripeEvent = 512 << 10

// errNoStripe answers the Stripe routes of an instance that bills locally.
var errNoStripe = echo.NewHTTPError(http.StatusNotFound, "This instance does not bill through Stripe.")

// stripeOwner returns the acting owner of a Stripe action (the route has
// checked the role), refusing instances without Stripe.
func (s *Server) stripeOwner(c echo.Context) (access.Actor, error) {
	a, err := httpx.Actor(c)
	if err != nil {
		return access.Actor{}, err
	}
	if s.stripe == nil {
		return access.Actor{}, errNoStripe
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

// startCheckout sends the owner to Stripe Checkout for a plan and interval.
func (s *Server) startCheckout(c echo.Context) error {
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

// checkoutDone is where Stripe sends the owner back after paying.
func (s *Server) checkoutDone(c echo.Context) error {
	s.addFlash(c, "success", "Checkout is complete. The plan changes as soon as Stripe confirms the subscription, usually within seconds; reload this page to see it.")
	return redirect(c, "/billing")
}

// checkoutCancelled is where Stripe sends the owner back when they leave
// Checkout without paying.
func (s *Server) checkoutCancelled(c echo.Context) error {
	s.addFlash(c, "info", "Checkout was cancelled: nothing was charged and the plan is unchanged.")
	return redirect(c, "/billing")
}

// openPortal sends the owner to Stripe's billing portal.
func (s *Server) openPortal(c echo.Context) error {
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

// cancelSubscription ends the subscription at the end of its period.
func (s *Server) cancelSubscription(c echo.Context) error {
	return s.setCancel(c, true, "The subscription ends at the end of this period; until then the plan stays as it is.")
}

// resumeSubscription undoes a cancellation before the period ends.
func (s *Server) resumeSubscription(c echo.Context) error {
	return s.setCancel(c, false, "The subscription goes on: it renews at the end of this period.")
}

func (s *Server) setCancel(c echo.Context, cancel bool, done string) error {
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

// receiveStripeEvent applies one of Stripe's events. A bad signature
// answers 400 and changes nothing; 200 means the effect is committed (or a
// replay had none); anything else makes Stripe send it again.
func (s *Server) receiveStripeEvent(c echo.Context) error {
	if s.stripeHook == nil {
		return errNoStripe
	}
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, maxStripeEvent+1))
	if err != nil {
		return err
	}
	if len(body) > maxStripeEvent {
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge)
	}
	err = s.stripeHook.Handle(c.Request().Context(), body, c.Request().Header.Get("Stripe-Signature"))
	if errors.Is(err, billing.ErrBadSignature) {
		return echo.NewHTTPError(http.StatusBadRequest, "The Stripe-Signature header is missing, wrong or more than 5 minutes old, or the event's API version is not "+
			stripe.APIVersion+".").SetInternal(err)
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]bool{"received": true})
}
