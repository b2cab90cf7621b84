package web

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/instance"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/version"
	"github.com/nofxhq/nofx/views/admin"
)

// currentTeam returns the team the signed-in user is working in; a user
// without any team cannot use team pages.
func currentTeam(c echo.Context) (*teams.Membership, error) {
	if t := who(c).Team; t != nil {
		return t, nil
	}
	return nil, echo.NewHTTPError(http.StatusForbidden, "You are not a member of any team.")
}

func (s *Server) adminPage(c echo.Context) error {
	ctx := c.Request().Context()
	o := admin.Overview{Version: version.String(), Database: string(s.db.Dialect), GeneratedSecret: s.cfg.SessionSecretGenerated}
	var err error
	if o.SchemaVersion, _, err = s.db.MigrationVersions(ctx); err != nil {
		return err
	}
	if o.Users, err = auth.CountUsers(ctx, s.db); err != nil {
		return err
	}
	if err := db.Get(ctx, s.db, &o.Teams, `SELECT COUNT(*) FROM teams`); err != nil {
		return err
	}
	if err := db.Get(ctx, s.db, &o.ActiveSessions, `SELECT COUNT(*) FROM sessions WHERE expires_at > ?`, db.Now()); err != nil {
		return err
	}
	if o.Activity, err = instance.Read(ctx, s.db, db.Now()); err != nil {
		return err
	}
	return s.render(c, http.StatusOK, page{Title: "Admin", Nav: "admin", Content: admin.Page(o)})
}

// formInt64 reads a whole number from a form field; anything else is a 400.
func formInt64(c echo.Context, name string) (int64, error) {
	n, err := strconv.ParseInt(c.FormValue(name), 10, 64)
	if err != nil {
		return 0, echo.NewHTTPError(http.StatusBadRequest, name+" must be a number.")
	}
	return n, nil
}
