package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/web/httpx"
)

// meResponse says who the API sees.
type meResponse struct {
	User   *meUser `json:"user,omitempty"`
	APIKey *meKey  `json:"api_key,omitempty"`
	Team   *meTeam `json:"team,omitempty"`
}

type meUser struct {
	ID          int64  `json:"id"`
	Email       string `json:"email"`
	Name        string `json:"name"`
	IsSiteAdmin bool   `json:"is_site_admin"`
}

type meKey struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	Prefix string `json:"prefix"`
}

type meTeam struct {
	ID   int64      `json:"id"`
	Slug string     `json:"slug"`
	Name string     `json:"name"`
	Role teams.Role `json:"role"`
}

// Me returns the caller: the user or API key, and the team it acts in.
func (s *API) Me(c echo.Context) error {
	p := httpx.Who(c)
	var out meResponse
	if p.User != nil {
		out.User = &meUser{ID: p.User.ID, Email: p.User.Email, Name: p.User.Name, IsSiteAdmin: p.User.IsSiteAdmin}
	}
	if p.APIKey != nil {
		out.APIKey = &meKey{ID: p.APIKey.ID, Name: p.APIKey.Name, Prefix: p.APIKey.Prefix}
	}
	if p.Team != nil {
		out.Team = &meTeam{ID: p.Team.ID, Slug: p.Team.Slug, Name: p.Team.Name, Role: p.Team.Role}
	}
	return c.JSON(http.StatusOK, out)
}
