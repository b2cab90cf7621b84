package pages

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/validation"
	view "github.com/nofxhq/nofx/views/apikeys"
	"github.com/nofxhq/nofx/web/httpx"
)

func (s *Pages) APIKeysPage(c echo.Context) error {
	return s.renderAPIKeys(c, http.StatusOK, view.Data{})
}

// renderAPIKeys shows the API keys page around d, which carries a form that
// came back with errors or a key just created.
func (s *Pages) renderAPIKeys(c echo.Context, status int, d view.Data) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	if d.Keys, err = s.apiKeys.List(c.Request().Context(), a); err != nil {
		return err
	}
	d.Now = db.Now()
	d.Team = *httpx.Who(c).Team
	d.Roles = grantableRoles(a.Role)
	return s.Render(c, status, Page{Title: "API keys", Nav: "team", Content: view.Page(d)})
}

// grantableRoles are the roles an actor with role may give a key.
func grantableRoles(role teams.Role) []teams.Role {
	var out []teams.Role
	for _, r := range teams.Roles {
		if role.AtLeast(r) {
			out = append(out, r)
		}
	}
	return out
}

// CreateAPIKey makes a key from the form and shows its secret on this
// response only: it is never put in a flash cookie or a redirect.
func (s *Pages) CreateAPIKey(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	form := view.Form{Name: c.FormValue("name"), Role: c.FormValue("role"), ExpiresAt: strings.TrimSpace(c.FormValue("expires_at"))}
	var expires *time.Time
	if form.ExpiresAt != "" {
		t, err := time.Parse(time.DateOnly, form.ExpiresAt)
		if err != nil {
			form.Errors = validation.Errors{"expires_at": "Use a date like 2026-01-31."}
			return s.renderAPIKeys(c, http.StatusUnprocessableEntity, view.Data{Form: form})
		}
		expires = &t
	}
	key, secret, err := s.apiKeys.CreateKey(c.Request().Context(), a, form.Name, teams.Role(form.Role), expires)
	var verrs validation.Errors
	if errors.As(err, &verrs) {
		form.Errors = verrs
		return s.renderAPIKeys(c, http.StatusUnprocessableEntity, view.Data{Form: form})
	}
	if err != nil {
		return err
	}
	return s.renderAPIKeys(c, http.StatusOK, view.Data{Created: &key, Secret: secret})
}

// RevokeAPIKey ends a key of the team at once.
func (s *Pages) RevokeAPIKey(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	id, err := httpx.PathID(c, "id")
	if err != nil {
		return err
	}
	if err := s.apiKeys.RevokeKey(c.Request().Context(), a, id); err != nil {
		return err
	}
	s.addFlash(c, "success", "The key is revoked; requests with it are refused from now on.")
	return redirect(c, "/team/api-keys")
}
