package web

import (
	"context"
	"errors"
	"fmt"
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
	ctx := c.Request().Context()
	resets, err := audit.Recent(ctx, s.db, "circuit.reset", 20)
	if err != nil {
		return err
	}
	states := s.circuits.States()
	teams, err := s.circuitTeams(ctx, states)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, page{Title: "Provider circuits", Nav: "admin",
		Content: admin.Circuits(admin.CircuitsData{Circuits: states, Teams: teams, Resets: resets, Now: db.Now()})})
}

// circuitTeams returns the names of the teams whose keys have circuits, by id.
func (s *Server) circuitTeams(ctx context.Context, states []ai.CircuitState) (map[int64]string, error) {
	var ids []any
	for _, st := range states {
		if id, ok := st.Key.TeamID(); ok {
			ids = append(ids, id)
		}
	}
	names := map[int64]string{}
	if len(ids) == 0 {
		return names, nil
	}
	var rows []struct {
		ID   int64  `db:"id"`
		Name string `db:"name"`
	}
	query := `SELECT id, name FROM teams WHERE id IN (?` + strings.Repeat(", ?", len(ids)-1) + `)`
	if err := db.Select(ctx, s.db, &rows, query, ids...); err != nil {
		return nil, fmt.Errorf("admin: names of teams with circuits: %w", err)
	}
	for _, r := range rows {
		names[r.ID] = r.Name
	}
	return names, nil
}

// resetCircuit closes a circuit now, in this process and the others, and
// records who did it. The form names the circuit by its scope and base URL;
// without a scope every circuit of the provider is reset.
func (s *Server) resetCircuit(c echo.Context) error {
	ctx := c.Request().Context()
	key := ai.CircuitKey{Provider: c.Param("provider"), Scope: strings.TrimSpace(c.FormValue("scope")), BaseURL: strings.TrimSpace(c.FormValue("base_url"))}
	var (
		targets []ai.CircuitState
		message = key.Provider // what the other processes reset: a provider name means all its circuits
		target  = key.Provider
	)
	if key.Scope == "" {
		targets = s.circuits.ProviderStates(key.Provider)
	} else {
		targets = []ai.CircuitState{s.circuits.State(key)}
		message, target = key.Encode(), key.String()
	}
	err := db.WithTx(ctx, s.db, func(tx *sqlx.Tx) error {
		if len(targets) == 0 {
			return ai.ErrNoCircuit
		}
		summaries := make([]string, 0, len(targets))
		for _, before := range targets {
			if err := s.circuits.Reset(before.Key); err != nil {
				return err
			}
			summaries = append(summaries, "was "+before.State+", last error: "+orDefault(before.LastError, "none"))
		}
		summary := summaries[0]
		if len(targets) > 1 {
			summary = fmt.Sprintf("%d circuits; %s", len(targets), strings.Join(summaries, "; "))
		}
		return audit.Record(ctx, tx, auditEntry(c, "circuit.reset", target, summary))
	})
	if errors.Is(err, ai.ErrNoCircuit) {
		return echo.NewHTTPError(http.StatusNotFound, "There is no such circuit.")
	}
	if err != nil {
		return err
	}
	// Every process keeps its own circuits: tell the others (on PostgreSQL).
	s.broker.Publish(context.WithoutCancel(ctx), live.Message{RunID: live.SystemTopic, Kind: live.KindCircuitReset, Text: message})
	s.log.Warn("circuit reset by hand", "circuit", target, "by", who(c).User.Email)
	s.addFlash(c, "success", "The "+target+" circuit is closed again.")
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
