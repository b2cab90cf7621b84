package pages

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/ai"
	"github.com/nofxhq/nofx/internal/plan"
	"github.com/nofxhq/nofx/internal/templates"
	"github.com/nofxhq/nofx/internal/validation"
	templatesview "github.com/nofxhq/nofx/views/templates"
	"github.com/nofxhq/nofx/web/form"
	"github.com/nofxhq/nofx/web/httpx"
)

// isHTMX reports whether the request came from htmx, not boosted: it wants
// a fragment rather than a page.
func isHTMX(c echo.Context) bool {
	return c.Request().Header.Get("HX-Request") == "true" && c.Request().Header.Get("HX-Boosted") != "true"
}

// withChoices adds the providers and their models the builder offers.
func (s *Pages) withChoices(b templatesview.Builder) templatesview.Builder {
	b.Providers = s.ai.Names()
	b.Models = providerModels(s.ai)
	return b
}

// defaultModel is the provider and model a new step starts with.
func (s *Pages) defaultModel() (string, string) {
	if _, ok := s.ai.Get(ai.SimulatedName); ok {
		return ai.SimulatedName, "echo"
	}
	if names := s.ai.Names(); len(names) > 0 {
		return names[0], ""
	}
	return "", ""
}

// renderBuilder shows the builder page, or only its form for htmx.
func (s *Pages) renderBuilder(c echo.Context, status int, b templatesview.Builder) error {
	b = s.withChoices(b)
	title := "New template"
	if b.Editing != "" {
		title = "Edit " + b.Editing
	}
	if isHTMX(c) {
		return s.Render(c, status, Page{Title: title, Nav: "templates", Content: templatesview.BuilderForm(b)})
	}
	return s.Render(c, status, Page{Title: title, Nav: "templates", Content: templatesview.BuilderPage(b)})
}

// NewTemplatePage is the builder for a new template, with one step to start.
func (s *Pages) NewTemplatePage(c echo.Context) error {
	provider, model := s.defaultModel()
	b := templatesview.Builder{Steps: []templatesview.BuilderStep{{Kind: plan.KindLLM, Provider: provider, Model: model}}, Focus: "template-slug"}
	return s.renderBuilder(c, http.StatusOK, b)
}

// EditTemplatePage is the builder filled with the current version.
func (s *Pages) EditTemplatePage(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	t, v, err := s.templates.Get(c.Request().Context(), a, c.Param("slug"))
	if err != nil {
		return err
	}
	spec, err := v.Spec(t.Slug)
	if err != nil {
		return err
	}
	if id := c.QueryParam("comparison"); id != "" {
		if err := s.useComparedModel(c, a, t.Slug, id, c.QueryParam("candidate"), &spec); err != nil {
			return err
		}
	}
	b := form.BuilderFromSpec(spec)
	b.Editing = t.Slug
	if c.QueryParam("comparison") != "" {
		b.Note = fmt.Sprintf("Use a model compared in comparison #%s", c.QueryParam("comparison"))
	}
	return s.renderBuilder(c, http.StatusOK, b)
}

// useComparedModel puts a comparison's candidate model into its step of
// spec, for the builder to open as an unsaved draft (the options of
// another provider are dropped: they were the original provider's).
func (s *Pages) useComparedModel(c echo.Context, a access.Actor, slug, rawID, candidate string, spec *templates.Spec) error {
	id, err := strconv.ParseInt(rawID, 10, 64)
	if err != nil || id < 1 {
		return echo.NewHTTPError(http.StatusNotFound, "There is no such comparison.")
	}
	v, err := s.compare.Get(c.Request().Context(), a, id)
	if err != nil {
		return err
	}
	if v.Template != slug {
		return echo.NewHTTPError(http.StatusNotFound, "That comparison is of another template's run.")
	}
	for _, cand := range v.Candidates {
		if cand.Name != candidate {
			continue
		}
		for i := range spec.Plan.Steps {
			st := &spec.Plan.Steps[i]
			if st.Name == v.StepName && st.Kind == plan.KindLLM {
				if st.Provider != cand.Provider {
					st.Options = nil
				}
				st.Provider, st.Model = cand.Provider, cand.Model
				return nil
			}
		}
		return echo.NewHTTPError(http.StatusConflict, "The template's current version has no LLM step "+v.StepName+" any more.")
	}
	return echo.NewHTTPError(http.StatusNotFound, "The comparison has no such candidate.")
}

// BuilderUpdate applies a structure-changing button (add, remove or move a
// step or an input, or a changed kind) and sends the builder back.
func (s *Pages) BuilderUpdate(c echo.Context) error {
	b, err := builderForm(c)
	if err != nil {
		return err
	}
	provider, model := s.defaultModel()
	form.ApplyBuilderAction(&b, c.FormValue("action"), provider, model)
	return s.renderBuilder(c, http.StatusOK, b)
}

// builderForm reads the posted builder form.
func builderForm(c echo.Context) (templatesview.Builder, error) {
	values, err := c.FormParams()
	if err != nil {
		return templatesview.Builder{}, echo.NewHTTPError(http.StatusBadRequest, "The form could not be read.")
	}
	return form.ParseBuilder(values), nil
}

// checkBuilder turns the builder's fields into a spec and checks it: what
// does not parse, then what the service finds, kept in b.Errors and
// b.Warnings.
func (s *Pages) checkBuilder(b *templatesview.Builder) templates.Spec {
	spec, errs := form.BuilderSpec(*b)
	checkErrs, warnings := s.templates.Check(&spec)
	for k, v := range checkErrs {
		errs.Add(k, v)
	}
	b.Errors, b.Warnings = errs, warnings
	return spec
}

// PreviewTemplate renders each step's prompt with sample inputs (the
// defaults, or the preview panel's values) and sums up what Check finds.
func (s *Pages) PreviewTemplate(c echo.Context) error {
	b, err := builderForm(c)
	if err != nil {
		return err
	}
	spec := s.checkBuilder(&b)
	sample := templates.SampleInputs(spec)
	if sample == nil {
		sample = map[string]any{}
	}
	samples := map[string]string{}
	for _, in := range spec.Inputs {
		if raw, ok := c.Request().PostForm["sample."+in.Name]; ok && len(raw) > 0 {
			sample[in.Name] = sampleValue(in, raw[0])
		}
		if v, ok := sample[in.Name]; ok {
			samples[in.Name] = fmt.Sprint(v)
		}
	}
	b.Preview = templatesview.Preview{Shown: true, Inputs: spec.Inputs, Samples: samples,
		Steps: templates.Preview(spec, sample), Errors: b.Errors, Warnings: b.Warnings}
	b.Errors, b.Warnings = nil, nil // shown in the preview, not yet next to the fields
	if isHTMX(c) {
		b = s.withChoices(b)
		return s.Render(c, http.StatusOK, Page{Title: "Preview", Nav: "templates", Content: templatesview.PreviewPanel(b)})
	}
	return s.renderBuilder(c, http.StatusOK, b)
}

// sampleValue is a typed sample: a number input's value as a number when it
// reads as one.
func sampleValue(in templates.Input, raw string) any {
	if in.Type == templates.InputNumber {
		if f, err := strconv.ParseFloat(strings.TrimSpace(raw), 64); err == nil {
			return f
		}
	}
	return raw
}

// CreateTemplate saves a new template from the builder as its version 1.
// Problems re-render the builder (422) with nothing written.
func (s *Pages) CreateTemplate(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	b, err := builderForm(c)
	if err != nil {
		return err
	}
	b.Editing = "" // a new template takes the slug typed
	spec := s.checkBuilder(&b)
	if len(b.Errors) == 0 {
		t, _, err := s.templates.Create(c.Request().Context(), a, spec, b.Note)
		if err == nil {
			s.addFlash(c, "success", fmt.Sprintf("Template %s created as version 1.", t.Name))
			return redirect(c, templatesview.Path(t.Slug))
		}
		var verrs validation.Errors
		if !errors.As(err, &verrs) {
			return err
		}
		b.Errors = verrs
	}
	return s.renderBuilder(c, http.StatusUnprocessableEntity, b)
}

// SaveTemplate saves the builder as the template's new current version,
// with its change note; an unchanged template writes nothing.
func (s *Pages) SaveTemplate(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	t, _, err := s.templates.Get(ctx, a, c.Param("slug"))
	if err != nil {
		return err
	}
	b, err := builderForm(c)
	if err != nil {
		return err
	}
	b.Editing = t.Slug // the slug never changes
	spec := s.checkBuilder(&b)
	if len(b.Errors) == 0 {
		v, changed, err := s.templates.Save(ctx, a, t.Slug, spec, b.Note)
		if err == nil {
			if changed {
				s.addFlash(c, "success", fmt.Sprintf("Saved version %d.", v.Number))
			} else {
				s.addFlash(c, "info", "No changes: the current version already says the same.")
			}
			return redirect(c, templatesview.Path(t.Slug))
		}
		var verrs validation.Errors
		if !errors.As(err, &verrs) {
			return err
		}
		b.Errors = verrs
	}
	return s.renderBuilder(c, http.StatusUnprocessableEntity, b)
}

// ImportTemplate creates a template from pasted JSON. JSON that does not
// parse is shown next to the textarea; a template that does not check is
// loaded into the builder with its problems.
func (s *Pages) ImportTemplate(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	im := templatesview.Import{JSON: c.FormValue("json"), Note: c.FormValue("note")}
	provider, model := s.defaultModel()
	spec, err := templates.Parse([]byte(im.JSON))
	var verrs validation.Errors
	if err != nil {
		if !errors.As(err, &verrs) {
			return err
		}
		im.Error = jsonProblem(verrs)
		b := templatesview.Builder{Steps: []templatesview.BuilderStep{{Kind: plan.KindLLM, Provider: provider, Model: model}}, Import: im}
		return s.renderBuilder(c, http.StatusUnprocessableEntity, b)
	}
	errs, warnings := s.templates.Check(&spec)
	if len(errs) == 0 {
		var t templates.Template
		t, _, err = s.templates.Create(c.Request().Context(), a, spec, im.Note)
		if err == nil {
			s.addFlash(c, "success", fmt.Sprintf("Template %s imported as version 1.", t.Name))
			return redirect(c, templatesview.Path(t.Slug))
		}
		if !errors.As(err, &errs) {
			return err
		}
	}
	b := form.BuilderFromSpec(spec)
	b.Note, b.Errors, b.Warnings, b.Import = im.Note, errs, warnings, im
	b.Import.Error = "The JSON reads, but the template needs another look: it is loaded into the builder above."
	return s.renderBuilder(c, http.StatusUnprocessableEntity, b)
}

// jsonProblem is the message of a JSON parse failure.
func jsonProblem(verrs validation.Errors) string {
	if msg, ok := verrs["json"]; ok {
		return msg
	}
	return verrs.Error()
}

// providerModels lists the models each provider suggests, for the model
// field's datalist; providers that do not list theirs get none.
func providerModels(reg *ai.Registry) map[string][]string {
	out := map[string][]string{}
	for _, name := range reg.Names() {
		p, _ := reg.Get(name)
		for p != nil {
			if lister, ok := p.(interface{ Models() []string }); ok {
				out[name] = lister.Models()
				break
			}
			unwrapper, ok := p.(interface{ Unwrap() ai.Provider })
			if !ok {
				break
			}
			p = unwrapper.Unwrap()
		}
	}
	return out
}
