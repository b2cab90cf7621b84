package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/billing"
	"github.com/nofxhq/nofx/web/httpx"
)

// The JSON API of the team's plan and usage.

// billingJSON is GET /api/v1/billing.
type billingJSON struct {
	Plan     planJSON          `json:"plan"`
	Period   billing.Period    `json:"period"`
	Limits   limitsJSON        `json:"limits"`
	Usage    billing.Usage     `json:"usage"`
	Warnings []warningJSON     `json:"warnings"`
	Billing  string            `json:"billing"` // "local" or "stripe"
	Plans    []planSummaryJSON `json:"plans"`
}

type planJSON struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	MonthlyCents int64  `json:"monthly_cents"` // -1: by contract
	YearlyCents  int64  `json:"yearly_cents"`
}

type planSummaryJSON struct {
	planJSON
	Limits limitsJSON `json:"limits"`
}

// limitsJSON are a plan's limits; -1 is unlimited.
type limitsJSON struct {
	RunsPerMonth int64 `json:"runs_per_month"`
	SpendMicros  int64 `json:"spend_micros"`
	Concurrency  int   `json:"concurrency"`
	Members      int   `json:"members"`
	APIPerMinute int   `json:"api_per_minute"`
	InstanceKeys bool  `json:"instance_keys"`
}

type warningJSON struct {
	billing.Warning
	Message string `json:"message"`
}

func toPlanJSON(p billing.Plan) planJSON {
	return planJSON{ID: p.ID, Name: p.Name, MonthlyCents: p.MonthlyCents, YearlyCents: p.YearlyCents}
}

func toLimitsJSON(p billing.Plan) limitsJSON {
	return limitsJSON{RunsPerMonth: p.Runs, SpendMicros: p.SpendMicros, Concurrency: p.Concurrency, Members: p.Members,
		APIPerMinute: p.APIPerMinute, InstanceKeys: p.InstanceKeys}
}

// Billing returns the team's plan, period, limits, usage and warnings.
func (s *API) Billing(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	o, err := s.billing.Overview(c.Request().Context(), a)
	if err != nil {
		return err
	}
	out := billingJSON{Plan: toPlanJSON(o.Plan), Period: o.Period, Limits: toLimitsJSON(o.Plan), Usage: o.Usage,
		Warnings: []warningJSON{}, Billing: "local"}
	if s.stripeEnabled() {
		out.Billing = "stripe"
	}
	for _, w := range o.Warnings {
		out.Warnings = append(out.Warnings, warningJSON{Warning: w, Message: w.Message()})
	}
	for _, p := range o.Plans {
		out.Plans = append(out.Plans, planSummaryJSON{planJSON: toPlanJSON(p), Limits: toLimitsJSON(p)})
	}
	return c.JSON(http.StatusOK, out)
}
