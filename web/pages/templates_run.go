package pages

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/billing"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/templates"
	"github.com/nofxhq/nofx/internal/validation"
	templatesview "github.com/nofxhq/nofx/views/templates"
	"github.com/nofxhq/nofx/web/httpx"
)

// TemplateRunPage is the form, generated from the current version's
// inputs, that starts a run; defaults are filled in.
func (s *Pages) TemplateRunPage(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	d, err := s.runFormData(c, a)
	if err != nil {
		return err
	}
	return s.showRunForm(c, d)
}

// runFormData reads the template and its current version for the run form.
func (s *Pages) runFormData(c echo.Context, a access.Actor) (templatesview.RunData, error) {
	t, v, err := s.templates.Get(c.Request().Context(), a, c.Param("slug"))
	if err != nil {
		return templatesview.RunData{}, err
	}
	spec, err := v.Spec(t.Slug)
	if err != nil {
		return templatesview.RunData{}, err
	}
	return templatesview.RunData{Template: t, Spec: spec, Values: map[string]string{}, Version: v.Number}, nil
}

// showRunForm renders a fresh run form: defaults filled in, and a new
// idempotency key.
func (s *Pages) showRunForm(c echo.Context, d templatesview.RunData) error {
	for _, in := range d.Spec.Inputs {
		d.Values[in.Name] = in.Default
	}
	d.IdempotencyKey = newIdempotencyKey()
	return s.Render(c, http.StatusOK, Page{Title: "Run " + d.Template.Name, Nav: "templates", Content: templatesview.RunForm(d)})
}

// StartTemplateRun starts a run from the form and goes to it; problems are
// shown next to their fields (422) with what was typed.
func (s *Pages) StartTemplateRun(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	return s.submitRunForm(c,
		func(values map[string]any, key string) (runs.Run, bool, error) {
			return s.templates.StartRun(c.Request().Context(), a, c.Param("slug"), values, key)
		},
		func() (templatesview.RunData, error) { return s.runFormData(c, a) })
}

// submitRunForm reads a run form, starts the run with start and goes to
// it; on problems it shows the form that formData describes again, with
// what was typed and each problem next to its field (422).
func (s *Pages) submitRunForm(c echo.Context, start func(values map[string]any, key string) (runs.Run, bool, error),
	formData func() (templatesview.RunData, error)) error {
	form, err := c.FormParams()
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "The form could not be read.")
	}
	values, typed := map[string]any{}, map[string]string{}
	for key, vs := range form {
		name, ok := strings.CutPrefix(key, "inputs.")
		if !ok || len(vs) == 0 {
			continue
		}
		typed[name] = vs[0]
		if strings.TrimSpace(vs[0]) != "" {
			values[name] = vs[0] // empty is left out: a default fills it, or it is missing
		}
	}
	key := strings.TrimSpace(form.Get("idempotency_key"))
	run, replayed, err := start(values, key)
	if err == nil {
		if replayed {
			s.addFlash(c, "info", fmt.Sprintf("This form was already sent: it started run #%d.", run.ID))
		} else {
			s.addFlash(c, "success", fmt.Sprintf("Run #%d started.", run.ID))
		}
		return redirect(c, fmt.Sprintf("/runs/%d", run.ID))
	}
	status := http.StatusUnprocessableEntity
	var verrs validation.Errors
	var conflict *runs.ConflictError
	var overPlan *billing.LimitError
	switch {
	case errors.Is(err, runs.ErrIdempotencyKeyReused):
		// The form was sent before with other values (back, edit, send):
		// say so, and give it a new key so that sending it again starts
		// the run these values ask for.
		verrs = validation.Errors{"": "This form already started a run with other values. Check them and send the form again to start another run."}
		key = newIdempotencyKey()
	case errors.As(err, &conflict):
		status, verrs = http.StatusConflict, validation.Errors{"": conflict.Message} // such as a paused deployment
	case errors.As(err, &overPlan):
		status = http.StatusPaymentRequired
	case !errors.As(err, &verrs):
		return err
	}
	d, err := formData()
	if err != nil {
		return err
	}
	d.Values, d.Errors, d.IdempotencyKey = typed, map[string]string{}, key
	var other []string
	for k, msg := range verrs {
		if _, ok := strings.CutPrefix(k, "inputs."); ok && declared(d.Spec.Inputs, strings.TrimPrefix(k, "inputs.")) {
			d.Errors[k] = msg
		} else {
			other = append(other, msg)
		}
	}
	d.Other = strings.Join(other, " ")
	if overPlan != nil {
		d.Limit = overPlan.Error()
	} else if len(d.Errors) == 0 && d.Other == "" {
		d.Other = "The run was not started."
	}
	return s.Render(c, status, Page{Title: "Run " + d.Template.Name, Nav: "templates", Content: templatesview.RunForm(d)})
}

// declared reports whether the spec declares an input called name.
func declared(inputs []templates.Input, name string) bool {
	for _, in := range inputs {
		if in.Name == name {
			return true
		}
	}
	return false
}

// newIdempotencyKey names one showing of the run form, so that a form sent
// twice starts one run.
func newIdempotencyKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "form-" + hex.EncodeToString(b)
}
