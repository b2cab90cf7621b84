package web

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/access"

	"github.com/nofxhq/nofx/internal/apikeys"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/teams"
)

// principal is who is making a request: a signed-in user, or an API key.
type principal struct {
	User         *auth.User
	SessionToken string
	// Team is the team the request acts in, with the role held there: the
	// session's current team, or the API key's team and role.
	Team   *teams.Membership
	APIKey *apikeys.Key
}

const principalKey = "nofx.principal"

// who returns the request's principal; it is never nil.
func who(c echo.Context) *principal {
	if p, ok := c.Get(principalKey).(*principal); ok {
		return p
	}
	p := &principal{}
	c.Set(principalKey, p)
	return p
}

// actor is the principal as the services see it: who acts, in which team,
// with which role. A user without a team cannot act on team resources.
func actor(c echo.Context) (access.Actor, error) {
	p := who(c)
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

// pathID reads a path parameter that names a row by its id; a malformed id
// is not found, as a missing row is.
func pathID(c echo.Context, name string) (int64, error) {
	id, err := strconv.ParseInt(c.Param(name), 10, 64)
	if err != nil || id < 1 {
		return 0, db.ErrNotFound
	}
	return id, nil
}
