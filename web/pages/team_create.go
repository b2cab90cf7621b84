package pages

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/validation"
	"github.com/nofxhq/nofx/views/team"
	"github.com/nofxhq/nofx/web/httpx"
)

func (s *Pages) NewTeamPage(c echo.Context) error {
	return s.renderNewTeam(c, http.StatusOK, team.NewData{})
}

func (s *Pages) renderNewTeam(c echo.Context, status int, d team.NewData) error {
	return s.Render(c, status, Page{Title: "New team", Nav: "team", Content: team.NewPage(d)})
}

// CreateTeam creates a team owned by the signed-in user and makes it the
// session's current team.
func (s *Pages) CreateTeam(c echo.Context) error {
	p := httpx.Who(c)
	ctx := c.Request().Context()
	name := c.FormValue("name")
	t, err := s.auth.CreateTeam(ctx, p.User.ID, name)
	var verrs validation.Errors
	if errors.As(err, &verrs) {
		return s.renderNewTeam(c, http.StatusUnprocessableEntity, team.NewData{Name: name, Errors: verrs})
	}
	if err != nil {
		return err
	}
	if err := s.auth.SwitchTeam(ctx, p.SessionToken, p.User.ID, t.ID); err != nil {
		return err
	}
	s.addFlash(c, "success", "Team "+t.Name+" created.")
	return redirect(c, "/team")
}
