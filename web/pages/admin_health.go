package pages

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/views/admin"
)

// HealthPage is Admin → Health: the database, the nodes, the queue, the
// providers, mail and rate limits, each saying what is wrong, with the fix.
func (s *Pages) HealthPage(c echo.Context) error {
	report := s.health.Report(c.Request().Context())
	return s.Render(c, http.StatusOK, Page{Title: "Health", Nav: "admin",
		Content: admin.Health(admin.HealthData{Report: report, Circuits: s.circuits.States()})})
}
