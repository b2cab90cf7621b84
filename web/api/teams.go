package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/web/httpx"
)

// Creating a team from the JSON API.

// createTeamRequest is the body of POST /api/v1/teams.
type createTeamRequest struct {
	Name string `json:"name"`
}

// CreateTeam creates a team owned by the signed-in user. It leaves the
// session's current team as it is.
func (s *API) CreateTeam(c echo.Context) error {
	p := httpx.Who(c) // a user: the route refuses API keys
	var req createTeamRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	t, err := s.auth.CreateTeam(c.Request().Context(), p.User.ID, req.Name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, teamResponse{Team: t})
}
