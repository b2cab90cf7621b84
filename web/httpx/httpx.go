// Package httpx is what every handler of NOFX's HTTP edge reads from a
// request, the pages and the JSON API alike: who makes it (a signed-in
// user or an API key, in one team), the row a path names, and a strict
// JSON body.
package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/apikeys"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/invites"
	"github.com/nofxhq/nofx/internal/teams"
)

// Principal is who is making a request: a signed-in user, or an API key.
type Principal struct {
	User         *auth.User
	SessionToken string
	// Team is the team the request acts in, with the role held there: the
	// session's current team, or the API key's team and role.
	Team   *teams.Membership
	APIKey *apikeys.Key
}

const principalKey = "nofx.principal"

// Who returns the request's principal, which the server's middleware fills
// in; it is never nil.
func Who(c echo.Context) *Principal {
	if p, ok := c.Get(principalKey).(*Principal); ok {
		return p
	}
	p := &Principal{}
	c.Set(principalKey, p)
	return p
}

// Actor is the principal as the services see it: who acts, in which team,
// with which role. A user without a team cannot act on team resources.
func Actor(c echo.Context) (access.Actor, error) {
	p := Who(c)
	if p.Team == nil {
		return access.Actor{}, echo.NewHTTPError(http.StatusForbidden, "You are not a member of any team.")
	}
	a := access.Actor{TeamID: p.Team.ID, Role: p.Team.Role}
	switch {
	case p.APIKey != nil:
		a.APIKeyID = p.APIKey.ID
	case p.User != nil:
		a.UserID = p.User.ID
	default:
		return access.Actor{}, echo.NewHTTPError(http.StatusUnauthorized, "Log in first.")
	}
	return a, nil
}

// CurrentTeam returns the team the request acts in; a user without any
// team cannot use team pages.
func CurrentTeam(c echo.Context) (*teams.Membership, error) {
	if t := Who(c).Team; t != nil {
		return t, nil
	}
	return nil, echo.NewHTTPError(http.StatusForbidden, "You are not a member of any team.")
}

// PathID reads a path parameter that names a row by its id; a malformed id
// is not found, as a missing row is.
func PathID(c echo.Context, name string) (int64, error) {
	id, err := strconv.ParseInt(c.Param(name), 10, 64)
	if err != nil || id < 1 {
		return 0, db.ErrNotFound
	}
	return id, nil
}

// FormInt64 reads a whole number from a form field; anything else is a 400.
func FormInt64(c echo.Context, name string) (int64, error) {
	n, err := strconv.ParseInt(c.FormValue(name), 10, 64)
	if err != nil {
		return 0, echo.NewHTTPError(http.StatusBadRequest, name+" must be a number.")
	}
	return n, nil
}

// DecodeJSON reads a JSON body strictly: unknown fields and trailing data
// are a 400 that says what is wrong.
func DecodeJSON(c echo.Context, dst any) error {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return echo.ErrStatusRequestEntityTooLarge
		}
		return echo.NewHTTPError(http.StatusBadRequest, "Could not read the request body.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber() // inputs keep every digit: 9007199254740993 is not a float64
	if err := dec.Decode(dst); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "The body is not valid JSON for this request: "+err.Error())
	}
	if dec.More() {
		return echo.NewHTTPError(http.StatusBadRequest, "The body has data after the JSON object.")
	}
	return nil
}

// APIError is the JSON error shape of the API.
type APIError struct {
	Error APIErrorBody `json:"error"`
}

// APIErrorBody is an API error: a code, a message and field problems.
type APIErrorBody struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
}

// InviteLinks carries the instance's address (base) into the request's
// context, for the links of the invitation emails it sends.
func InviteLinks(c echo.Context, base string) echo.Context {
	req := c.Request()
	c.SetRequest(req.WithContext(invites.WithBaseURL(req.Context(), base)))
	return c
}

// ActorAndRun reads who acts and the run the path's :id names.
func ActorAndRun(c echo.Context) (access.Actor, int64, error) {
	a, err := Actor(c)
	if err != nil {
		return access.Actor{}, 0, err
	}
	id, err := PathID(c, "id")
	return a, id, err
}

// WebhookURL is the address a deployment's webhook deliveries go to, on
// the instance at base.
func WebhookURL(base, token string) string { return base + "/hooks/" + token }

// ErrNoStripe answers the Stripe routes of an instance that bills locally.
var ErrNoStripe = echo.NewHTTPError(http.StatusNotFound, "This instance does not bill through Stripe.")
