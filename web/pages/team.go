package pages

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/validation"
	"github.com/nofxhq/nofx/views/team"
	"github.com/nofxhq/nofx/web/httpx"
)

func (s *Pages) TeamPage(c echo.Context) error {
	return s.renderTeam(c, http.StatusOK, team.Data{})
}

// renderTeam shows the team page; d carries a provider key form (d.Keys)
// or a settings form (d.Settings) that came back with errors.
func (s *Pages) renderTeam(c echo.Context, status int, d team.Data) error {
	t, err := httpx.CurrentTeam(c)
	if err != nil {
		return err
	}
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	members, err := s.members.List(ctx, a)
	if err != nil {
		return err
	}
	if d.Keys.Keys, err = s.keys.List(ctx, a); err != nil {
		return err
	}
	d.Keys.Providers = s.keys.Providers
	d.Keys.CanManage = access.Allowed(a.Role, access.TeamUpdate)
	d.Team, d.Members = *t, members
	return s.Render(c, status, Page{Title: t.Name, Nav: "team", Content: team.Page(d)})
}

// SaveProviderKey stores the team's own key for a provider.
func (s *Pages) SaveProviderKey(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	provider := c.FormValue("provider")
	err = s.keys.Set(c.Request().Context(), a, provider, c.FormValue("key"))
	var verrs validation.Errors
	if errors.As(err, &verrs) {
		return s.renderTeam(c, http.StatusUnprocessableEntity, team.Data{Keys: team.KeysData{Provider: provider, Errors: verrs}})
	}
	if err != nil {
		return err
	}
	s.addFlash(c, "success", "The team's "+provider+" key is saved. Runs of this team now use it.")
	return redirect(c, "/team#provider-keys")
}

// DeleteProviderKey removes the team's own key for a provider.
func (s *Pages) DeleteProviderKey(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	provider := c.Param("provider")
	if err := s.keys.Delete(c.Request().Context(), a, provider); err != nil {
		return err
	}
	s.addFlash(c, "success", "The team's "+provider+" key is removed; the instance's key applies again.")
	return redirect(c, "/team#provider-keys")
}

// SaveTeamSettings sets the team's time zone, which its schedules use.
func (s *Pages) SaveTeamSettings(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	tz := strings.TrimSpace(c.FormValue("time_zone"))
	err = s.deploys.SetTimeZone(c.Request().Context(), a, tz)
	var verrs validation.Errors
	if errors.As(err, &verrs) {
		return s.renderTeam(c, http.StatusUnprocessableEntity, team.Data{Settings: team.Settings{TimeZone: tz, Error: verrs["time_zone"]}})
	}
	if err != nil {
		return err
	}
	s.addFlash(c, "success", "The team's time zone is "+tz+"; schedules run in it.")
	return redirect(c, "/team#settings")
}
