package web

import (
	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/apikeys"
	"github.com/nofxhq/nofx/internal/auth"
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
