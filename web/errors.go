package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/billing"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/validation"
	"github.com/nofxhq/nofx/views/components"
	"github.com/nofxhq/nofx/views/errorpage"
	"github.com/nofxhq/nofx/web/httpx"
	"github.com/nofxhq/nofx/web/pages"
)

// problem is an error as the client sees it.
type problem struct {
	status  int
	code    string
	message string
	fields  map[string]string
	// outage is a database that does not answer (and nothing a handler
	// answered explicitly): logged once per outage, not per request.
	outage bool
}

// tooManyRequests is a request refused by a limit: it answers 429 with
// Retry-After (whole seconds, at least one).
type tooManyRequests struct {
	retryAfter time.Duration
	message    string
}

func (e *tooManyRequests) Error() string { return "rate limited: " + e.message }

// retryAfterSeconds is the Retry-After value for d: whole seconds, rounded
// up, at least one.
func retryAfterSeconds(d time.Duration) int {
	n := int((d + time.Second - 1) / time.Second)
	return max(n, 1)
}

// classify maps an error returned by a handler to what the client is told.
// Internal details never reach the client.
func classify(err error) problem {
	var (
		httpErr *echo.HTTPError
		verrs   validation.Errors
	)
	var limited *tooManyRequests
	var overPlan *billing.LimitError
	switch {
	case errors.As(err, &limited):
		return problem{status: http.StatusTooManyRequests, code: "rate_limited", message: limited.message}
	case errors.As(err, &overPlan):
		return problem{status: http.StatusPaymentRequired, code: "plan_limit", message: overPlan.Error(), fields: map[string]string{
			"limit": overPlan.Metric, "plan": overPlan.Plan.ID,
			"used": strconv.FormatInt(overPlan.Used, 10), "quota": strconv.FormatInt(overPlan.Quota, 10),
		}}
	case errors.As(err, &verrs):
		return problem{status: http.StatusUnprocessableEntity, code: "validation_failed", message: "Some fields need another look.", fields: verrs}
	case errors.Is(err, access.ErrForbidden):
		return problem{status: http.StatusForbidden, code: "forbidden", message: "Your role in this team does not allow that."}
	case errors.Is(err, runs.ErrIdempotencyKeyReused):
		return problem{status: http.StatusUnprocessableEntity, code: "idempotency_key_reused",
			message: "This Idempotency-Key was already used, within the last 24 hours, with a different request; send the same request to get its run, or use a new key to start another."}
	case errors.Is(err, runs.ErrConflict):
		return problem{status: http.StatusConflict, code: "conflict", message: err.Error()}
	case errors.Is(err, db.ErrNotFound):
		return problem{status: http.StatusNotFound, code: "not_found", message: "We could not find that."}
	case errors.Is(err, auth.ErrBusy):
		return problem{status: http.StatusServiceUnavailable, code: "unavailable", message: "Too many sign-ins are being checked right now. Please try again in a few seconds."}
	case errors.Is(err, auth.ErrInvalidCredentials):
		return problem{status: http.StatusUnauthorized, code: "unauthorized", message: "Wrong email or password."}
	case errors.As(err, &httpErr):
		p := problem{status: httpErr.Code, code: codeFor(httpErr.Code), message: http.StatusText(httpErr.Code)}
		// A message a handler wrote is shown; a 500's never is (it may
		// say more than a client should read).
		if msg, ok := httpErr.Message.(string); ok && msg != "" && httpErr != echo.ErrNotFound && httpErr.Code != http.StatusInternalServerError {
			p.message = msg
		}
		switch httpErr.Code {
		case http.StatusNotFound:
			if httpErr == echo.ErrNotFound {
				p.message = "There is nothing at this address."
			}
		}
		return p
	}
	// Last: an error a handler answered explicitly (502 from Stripe, say)
	// keeps its answer even when a network error lies under it.
	if db.Unavailable(err) {
		return problem{status: http.StatusServiceUnavailable, code: "unavailable",
			message: "The database is unavailable for the moment; NOFX keeps retrying. Please try again in a few seconds.", outage: true}
	}
	return problem{status: http.StatusInternalServerError, code: "internal", message: "Something went wrong on our side. It has been logged; please try again."}
}

func codeFor(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "bad_request"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusPaymentRequired:
		return "payment_required"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusConflict:
		return "conflict"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	case http.StatusUnprocessableEntity:
		return "validation_failed"
	case http.StatusTooManyRequests:
		return "rate_limited"
	case http.StatusServiceUnavailable:
		return "unavailable"
	}
	if status >= 500 {
		return "internal"
	}
	return "error"
}

// handleError is the one place errors become responses: the JSON error
// shape for the API, an HTML page otherwise. 5xx are logged as errors, 4xx
// as warnings, with the request id.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	// A client that went away mid-request is no failure of ours: nobody is
	// left to answer, and it is not logged as an error.
	if errors.Is(err, context.Canceled) && c.Request().Context().Err() != nil {
		s.log.Debug("client went away", "method", c.Request().Method, "path", logPath(c),
			"request_id", c.Response().Header().Get(echo.HeaderXRequestID))
		return
	}
	p := classify(err)
	if p.status == http.StatusRequestEntityTooLarge {
		p.message = fmt.Sprintf("The request is larger than %s, the most this instance accepts (NOFX_MAX_BODY).", components.FormatSize(s.maxBody))
	}
	var limited *tooManyRequests
	switch {
	case errors.As(err, &limited):
		c.Response().Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(limited.retryAfter)))
	case p.status == http.StatusServiceUnavailable:
		c.Response().Header().Set("Retry-After", "2")
	}
	level := slog.LevelWarn
	switch {
	case limited != nil:
		level = slog.LevelDebug // the limiter logs one line per key and window
	case p.outage:
		// Logged once per outage. Only this error is observed here: a 404 or
		// a refused form says nothing of whether the database answers.
		s.dbOutage.Observe(err)
		level = slog.LevelDebug
	case p.status >= 500:
		level = slog.LevelError
	}
	s.log.Log(c.Request().Context(), level, "request failed",
		"status", p.status,
		"method", c.Request().Method,
		"path", logPath(c),
		"request_id", c.Response().Header().Get(echo.HeaderXRequestID),
		"error", err.Error(),
	)

	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(p.status)
		return
	}
	if isAPI(c) || wantsJSON(c) {
		_ = c.JSON(p.status, httpx.APIError{Error: httpx.APIErrorBody{Code: p.code, Message: p.message, Fields: p.fields}})
		return
	}
	title := http.StatusText(p.status)
	switch p.status {
	case http.StatusNotFound:
		title = "Page not found"
	case http.StatusInternalServerError:
		title = "Something went wrong"
	case http.StatusForbidden:
		title = "Not allowed"
	case http.StatusTooManyRequests:
		title = "Slow down a moment"
	case http.StatusServiceUnavailable:
		title = "Busy for a moment"
	case http.StatusRequestEntityTooLarge:
		title = "Too large to send"
		if strings.HasPrefix(c.Request().Header.Get(echo.HeaderContentType), echo.MIMEApplicationForm) {
			p.message += " Your text is still in the form: go back with your browser, shorten it, and send it again."
		}
	}
	if rerr := s.pages.Render(c, p.status, pages.Page{Title: title, Content: errorpage.Page(p.status, title, p.message)}); rerr != nil {
		s.log.Error("render error page", "error", rerr)
		_ = c.String(p.status, p.message)
	}
}

// wantsJSON reports whether the client asked for JSON rather than HTML.
func wantsJSON(c echo.Context) bool {
	mediaType, _, _ := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderAccept)) // "" for a list or none
	return mediaType == echo.MIMEApplicationJSON
}
