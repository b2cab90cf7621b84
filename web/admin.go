package web

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/jmoiron/sqlx"
	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/ai"
	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/live"
	"github.com/nofxhq/nofx/internal/pricing"
	"github.com/nofxhq/nofx/internal/validation"
	"github.com/nofxhq/nofx/views/admin"
)

// auditEntry starts an audit entry for the request's user, for changes
// that belong to no team (the instance's own settings).
func auditEntry(c echo.Context, action, target, summary string) audit.Entry {
	e := audit.Entry{Action: action, Target: target, Summary: summary}
	if u := who(c).User; u != nil {
		e.ActorUserID, e.Actor = &u.ID, u.Email
	}
	return e
}

func (s *Server) circuitsPage(c echo.Context) error {
	resets, err := audit.Recent(c.Request().Context(), s.db, "circuit.reset", 20)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, page{Title: "Provider circuits", Nav: "admin",
		Content: admin.Circuits(admin.CircuitsData{Circuits: s.circuits.States(), Resets: resets, Now: db.Now()})})
}

// resetCircuit closes a provider's circuit now, and records who did it.
func (s *Server) resetCircuit(c echo.Context) error {
	provider := c.Param("provider")
	before := s.circuits.State(provider)
	err := db.WithTx(c.Request().Context(), s.db, func(tx *sqlx.Tx) error {
		if err := s.circuits.Reset(provider); err != nil {
			return err
		}
		return audit.Record(c.Request().Context(), tx, auditEntry(c, "circuit.reset", provider,
			"was "+before.State+", last error: "+orDefault(before.LastError, "none")))
	})
	if errors.Is(err, ai.ErrNoCircuit) {
		return echo.NewHTTPError(http.StatusNotFound, "There is no circuit for that provider.")
	}
	if err != nil {
		return err
	}
	// Every process keeps its own circuits: tell the others (on PostgreSQL).
	s.broker.Publish(context.WithoutCancel(c.Request().Context()), live.Message{RunID: live.SystemTopic, Kind: live.KindCircuitReset, Text: provider})
	s.log.Warn("circuit reset by hand", "provider", provider, "by", who(c).User.Email)
	s.addFlash(c, "success", "The "+provider+" circuit is closed again.")
	return redirect(c, "/admin/circuits")
}

func (s *Server) pricesPage(c echo.Context) error {
	return s.renderPrices(c, http.StatusOK, admin.PriceForm{})
}

func (s *Server) renderPrices(c echo.Context, status int, form admin.PriceForm) error {
	prices, err := pricing.List(c.Request().Context(), s.db)
	if err != nil {
		return err
	}
	return s.render(c, status, page{Title: "Model prices", Nav: "admin", Content: admin.Prices(prices, form)})
}

// setPrice adds or changes a model's price, and records who did it.
func (s *Server) setPrice(c echo.Context) error {
	form := admin.PriceForm{
		Provider: strings.TrimSpace(c.FormValue("provider")), Model: strings.TrimSpace(c.FormValue("model")),
		Input: c.FormValue("input"), Output: c.FormValue("output"),
	}
	errs := validation.Errors{}
	input, err := pricing.ParseDollars(form.Input)
	if err != nil {
		errs.Add("input", strings.ToUpper(err.Error()[:1])+err.Error()[1:]+".")
	}
	output, err := pricing.ParseDollars(form.Output)
	if err != nil {
		errs.Add("output", strings.ToUpper(err.Error()[:1])+err.Error()[1:]+".")
	}
	if err := errs.Err(); err == nil {
		err = db.WithTx(c.Request().Context(), s.db, func(tx *sqlx.Tx) error {
			if err := pricing.Set(c.Request().Context(), tx, form.Provider, form.Model, input, output, who(c).User.ID); err != nil {
				return err
			}
			return audit.Record(c.Request().Context(), tx, auditEntry(c, "price.set", form.Provider+"/"+form.Model,
				"input "+pricing.FormatDollars(input)+", output "+pricing.FormatDollars(output)+" per million tokens"))
		})
		if err == nil {
			s.addFlash(c, "success", "Price of "+form.Provider+"/"+form.Model+" saved.")
			return redirect(c, "/admin/prices")
		}
		if !errors.As(err, &errs) {
			return err
		}
	}
	form.Errors = errs
	return s.renderPrices(c, http.StatusUnprocessableEntity, form)
}
