package web

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/views/billing"
)

// billingPage shows the team's plan and this month's runs, tokens and cost.
func (s *Server) billingPage(c echo.Context) error {
	t, err := currentTeam(c)
	if err != nil {
		return err
	}
	a, err := actor(c)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	monthStart := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	totals, err := s.runs.Totals(c.Request().Context(), a, monthStart, monthStart.AddDate(0, 1, 0))
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, page{Title: "Billing", Nav: "billing", Content: billing.Page(billing.Data{
		TeamName: t.Name, Plan: t.Plan, Month: monthStart.Format("January 2006"), Totals: totals,
	})})
}
