package web

// Inbound webhooks: a signed delivery starts a run of a deployment, and
// Stripe's events change a team's plan.

import (
	"errors"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/stripe/stripe-go/v82"

	"github.com/nofxhq/nofx/internal/billing"
	"github.com/nofxhq/nofx/internal/deployments"
	"github.com/nofxhq/nofx/web/httpx"
)

// receiveWebhook starts a run of the deployment whose webhook URL was
// called, when the delivery is signed (see deployments.Service.Receive):
// 202 with the run's id and status.
func (s *Server) receiveWebhook(c echo.Context) error {
	req := c.Request()
	run, err := s.deploys.Receive(req.Context(), c.Param("token"),
		req.Header.Get(deployments.TimestampHeader), req.Header.Get(deployments.SignatureHeader), req.Body)
	if err != nil {
		return webhookError(err)
	}
	return c.JSON(http.StatusAccepted, map[string]any{"id": run.ID, "status": run.Status})
}

// webhookError gives a refused delivery its status; the error handler
// maps the rest (404, 409, 422) as everywhere.
func webhookError(err error) error {
	switch {
	case errors.Is(err, deployments.ErrBodyTooLarge):
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge).SetInternal(err)
	case errors.Is(err, deployments.ErrStale):
		return echo.NewHTTPError(http.StatusUnauthorized, "The delivery is stale: "+deployments.TimestampHeader+
			" must be within 5 minutes of now. Sign each delivery when you send it.").SetInternal(err)
	case errors.Is(err, deployments.ErrBadSignature):
		return echo.NewHTTPError(http.StatusUnauthorized, "The signature does not match. Send "+deployments.TimestampHeader+
			" (Unix seconds) and "+deployments.SignatureHeader+": sha256= and the hex HMAC-SHA256 of the timestamp, a dot and the body, keyed with the webhook secret.").SetInternal(err)
	case errors.Is(err, deployments.ErrMalformedBody):
		return echo.NewHTTPError(http.StatusBadRequest, "The body must be one JSON object, with nothing after it.").SetInternal(err)
	}
	return err
}

// StripeWebhookPath is where Stripe sends its events.
const StripeWebhookPath = "/webhooks/stripe"

// maxStripeEvent caps a Stripe event's body; Stripe's are far smaller.
const maxStripeEvent = 512 << 10

// receiveStripeEvent applies one of Stripe's events. A bad signature
// answers 400 and changes nothing; 200 means the effect is committed (or a
// replay had none); anything else makes Stripe send it again.
func (s *Server) receiveStripeEvent(c echo.Context) error {
	if s.stripeHook == nil {
		return httpx.ErrNoStripe
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
