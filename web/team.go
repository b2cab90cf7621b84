package web

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/validation"
	"github.com/nofxhq/nofx/views/team"
)

func (s *Server) teamPage(c echo.Context) error {
	return s.renderTeam(c, http.StatusOK, team.KeysData{})
}

// renderTeam shows the team page; keys carries a provider key form that
// came back with errors.
func (s *Server) renderTeam(c echo.Context, status int, keys team.KeysData) error {
	t, err := currentTeam(c)
	if err != nil {
		return err
	}
	a, err := actor(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	members, err := teams.Members(ctx, s.db, t.ID)
	if err != nil {
		return err
	}
	if keys.Keys, err = s.keys.List(ctx, a); err != nil {
		return err
	}
	keys.Providers = s.keys.Providers
	keys.CanManage = access.Allowed(a.Role, access.TeamUpdate)
	return s.render(c, status, page{Title: t.Name, Nav: "team", Content: team.Page(team.Data{Team: *t, Members: members, Keys: keys})})
}

// saveProviderKey stores the team's own key for a provider.
func (s *Server) saveProviderKey(c echo.Context) error {
	a, err := actor(c)
	if err != nil {
		return err
	}
	provider := c.FormValue("provider")
	err = s.keys.Set(c.Request().Context(), a, provider, c.FormValue("key"))
	var verrs validation.Errors
	if errors.As(err, &verrs) {
		return s.renderTeam(c, http.StatusUnprocessableEntity, team.KeysData{Provider: provider, Errors: verrs})
	}
	if err != nil {
		return err
	}
	s.addFlash(c, "success", "The team's "+provider+" key is saved. Runs of this team now use it.")
	return redirect(c, "/team#provider-keys")
}

// deleteProviderKey removes the team's own key for a provider.
func (s *Server) deleteProviderKey(c echo.Context) error {
	a, err := actor(c)
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
