package web

// Inbound webhooks: a signed delivery starts a run of a deployment.

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/deployments"
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
