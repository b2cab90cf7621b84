package pages

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/ai"
	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/instance"
	"github.com/nofxhq/nofx/internal/pricing"
	"github.com/nofxhq/nofx/internal/validation"
	"github.com/nofxhq/nofx/internal/version"
	"github.com/nofxhq/nofx/views/admin"
	"github.com/nofxhq/nofx/web/httpx"
)

// auditEntry starts an audit entry for the request's user, for changes
// that belong to no team (the instance's own settings).
func auditEntry(c echo.Context, action, target, summary string) audit.Entry {
	e := audit.Entry{Action: action, Target: target, Summary: summary}
	if u := httpx.Who(c).User; u != nil {
		e.ActorUserID, e.Actor = &u.ID, u.Email
	}
	return e
}

// siteAdminOf is the request's site admin as the audit log names them (the
// admin routes let only site admins through).
func siteAdminOf(c echo.Context) instance.Admin {
	u := httpx.Who(c).User
	return instance.Admin{UserID: u.ID, Email: u.Email}
}

// AdminPage is the instance's overview: its sizes and last days.
func (s *Pages) AdminPage(c echo.Context) error {
	ctx := c.Request().Context()
	counts, err := s.instance.Counts(ctx)
	if err != nil {
		return err
	}
	activity, err := s.instance.Activity(ctx)
	if err != nil {
		return err
	}
	o := admin.Overview{Version: version.String(), Database: s.instance.Database(), GeneratedSecret: s.cfg.SessionSecretGenerated,
		SchemaVersion: counts.SchemaVersion, Users: counts.Users, Teams: counts.Teams, ActiveSessions: counts.ActiveSessions, Activity: activity}
	return s.Render(c, http.StatusOK, Page{Title: "Admin", Nav: "admin", Content: admin.Page(o)})
}

func (s *Pages) CircuitsPage(c echo.Context) error {
	r, err := s.instance.CircuitReport(c.Request().Context())
	if err != nil {
		return err
	}
	return s.Render(c, http.StatusOK, Page{Title: "Provider circuits", Nav: "admin",
		Content: admin.Circuits(admin.CircuitsData{Circuits: r.States, Teams: r.Teams, Resets: r.Resets, Now: db.Now()})})
}

// ResetCircuit closes a circuit now, in every process. The form names the
// circuit by its scope and base URL; without a scope every circuit of the
// provider is reset.
func (s *Pages) ResetCircuit(c echo.Context) error {
	key := ai.CircuitKey{Provider: c.Param("provider"), Scope: strings.TrimSpace(c.FormValue("scope")), BaseURL: strings.TrimSpace(c.FormValue("base_url"))}
	by := siteAdminOf(c)
	target, err := s.instance.ResetCircuit(c.Request().Context(), by, key)
	if errors.Is(err, ai.ErrNoCircuit) {
		return echo.NewHTTPError(http.StatusNotFound, "There is no such circuit.")
	}
	if err != nil {
		return err
	}
	s.log.Warn("circuit reset by hand", "circuit", target, "by", by.Email)
	s.addFlash(c, "success", "The "+target+" circuit is closed again.")
	return redirect(c, "/admin/circuits")
}

func (s *Pages) PricesPage(c echo.Context) error {
	return s.renderPrices(c, http.StatusOK, admin.PriceForm{})
}

func (s *Pages) renderPrices(c echo.Context, status int, form admin.PriceForm) error {
	prices, err := s.instance.Prices(c.Request().Context())
	if err != nil {
		return err
	}
	return s.Render(c, status, Page{Title: "Model prices", Nav: "admin", Content: admin.Prices(prices, form)})
}

// SetPrice adds or changes a model's price.
func (s *Pages) SetPrice(c echo.Context) error {
	form := admin.PriceForm{
		Provider: strings.TrimSpace(c.FormValue("provider")), Model: strings.TrimSpace(c.FormValue("model")),
		Input: c.FormValue("input"), Output: c.FormValue("output"),
	}
	errs := validation.Errors{}
	input, err := pricing.ParseDollars(form.Input)
	if err != nil {
		errs.Add("input", sentence(err))
	}
	output, err := pricing.ParseDollars(form.Output)
	if err != nil {
		errs.Add("output", sentence(err))
	}
	if err := errs.Err(); err == nil {
		err = s.instance.SetPrice(c.Request().Context(), siteAdminOf(c), form.Provider, form.Model, input, output)
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

// OutboxPage shows the mail kept instead of sent.
func (s *Pages) OutboxPage(c echo.Context) error {
	msgs, err := s.instance.Outbox(c.Request().Context(), 50)
	if err != nil {
		return err
	}
	return s.Render(c, http.StatusOK, Page{Title: "Outbox", Nav: "admin", Content: admin.Outbox(msgs)})
}

// sentence is an error message as a sentence: capitalised, with a full stop.
func sentence(err error) string {
	msg := err.Error()
	return strings.ToUpper(msg[:1]) + msg[1:] + "."
}
