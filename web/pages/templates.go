package pages

// Template pages: the list, a template and its versions, the difference
// between two versions, rollback, the JSON view with import and export, and
// delete. The builder is in templates_builder.go, the run form in
// templates_run.go.

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/templates"
	"github.com/nofxhq/nofx/internal/validation"
	templatesview "github.com/nofxhq/nofx/views/templates"
	"github.com/nofxhq/nofx/web/form"
	"github.com/nofxhq/nofx/web/httpx"
)

// templateCan is what the actor may do with templates, for the pages.
func templateCan(a access.Actor) templatesview.Can {
	return templatesview.Can{
		Write:  access.Allowed(a.Role, access.TemplatesWrite),
		Delete: access.Allowed(a.Role, access.TemplatesDelete),
		Run:    access.Allowed(a.Role, access.RunsCreate),
		Deploy: access.Allowed(a.Role, access.TemplatesDeploy),
	}
}

// TemplatesPage lists the team's templates. With ?picker=1 from htmx, it is
// only the list of links the new run form offers.
func (s *Pages) TemplatesPage(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	list, err := s.templates.List(c.Request().Context(), a)
	if err != nil {
		return err
	}
	if c.QueryParam("picker") != "" && isHTMX(c) {
		return s.Render(c, http.StatusOK, Page{Content: templatesview.Picker(list)})
	}
	d := templatesview.ListData{TeamName: httpx.Who(c).Team.Name, Templates: list, CanWrite: access.Allowed(a.Role, access.TemplatesWrite)}
	return s.Render(c, http.StatusOK, Page{Title: "Templates", Nav: "templates", Content: templatesview.Index(d)})
}

// showVersion renders a template with version n (0: the current one).
func (s *Pages) showVersion(c echo.Context, status int, n int, deleteError string) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	t, v, err := s.templates.Version(c.Request().Context(), a, c.Param("slug"), n)
	if err != nil {
		return notFoundVersion(err)
	}
	spec, err := v.Spec(t.Slug)
	if err != nil {
		return err
	}
	d := templatesview.ShowData{Template: t, Version: v, Spec: spec, Can: templateCan(a), DeleteError: deleteError}
	if d.Comparisons, err = s.compare.ForTemplate(c.Request().Context(), a, t.Slug); err != nil {
		return err
	}
	return s.Render(c, status, Page{Title: t.Name, Nav: "templates", Content: templatesview.Show(d)})
}

// notFoundVersion makes a version the template does not have a 404.
func notFoundVersion(err error) error {
	if errors.Is(err, templates.ErrNoVersion) {
		return echo.NewHTTPError(http.StatusNotFound, "This template has no such version.")
	}
	return err
}

// TemplatePage shows the template's current version.
func (s *Pages) TemplatePage(c echo.Context) error {
	return s.showVersion(c, http.StatusOK, 0, "")
}

// TemplateVersionPage shows one version, read-only.
func (s *Pages) TemplateVersionPage(c echo.Context) error {
	n, err := versionParam(c)
	if err != nil {
		return err
	}
	return s.showVersion(c, http.StatusOK, n, "")
}

// versionParam reads the :version of the path; anything but a positive
// whole number is a 404, as no version has that name.
func versionParam(c echo.Context) (int, error) {
	n, err := strconv.Atoi(c.Param("version"))
	if err != nil || n < 1 {
		return 0, echo.NewHTTPError(http.StatusNotFound, "This template has no such version.")
	}
	return n, nil
}

// TemplateVersionsPage lists a template's versions, newest first.
func (s *Pages) TemplateVersionsPage(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	t, versions, err := s.templates.Versions(c.Request().Context(), a, c.Param("slug"))
	if err != nil {
		return err
	}
	d := templatesview.HistoryData{Template: t, Versions: versions, CanWrite: access.Allowed(a.Role, access.TemplatesWrite)}
	return s.Render(c, http.StatusOK, Page{Title: t.Name + " history", Nav: "templates", Content: templatesview.History(d)})
}

// RollbackTemplate makes an older version current again.
func (s *Pages) RollbackTemplate(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	n, err := versionParam(c)
	if err != nil {
		return err
	}
	t, err := s.templates.Rollback(c.Request().Context(), a, c.Param("slug"), n)
	if err != nil {
		return notFoundVersion(err)
	}
	s.addFlash(c, "success", fmt.Sprintf("Version %d is current again.", n))
	return redirect(c, templatesview.Path(t.Slug)+"/versions")
}

// TemplateDiffPage shows the difference between versions ?from and ?to
// (by default, the one before the current and the current). Values that
// are not version numbers are a 400 that says so.
func (s *Pages) TemplateDiffPage(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	t, versions, err := s.templates.Versions(ctx, a, c.Param("slug"))
	if err != nil {
		return err
	}
	d := templatesview.DiffData{Template: t, Versions: versions}
	var problems validation.Errors
	d.From, d.To, problems = form.DiffVersions(c.QueryParams(), t.CurrentVersion)
	status := http.StatusOK
	if len(problems) > 0 {
		var msgs []string
		for _, field := range []string{"from", "to"} {
			if msg, ok := problems[field]; ok {
				msgs = append(msgs, msg)
			}
		}
		d.Error, status = strings.Join(msgs, " "), http.StatusBadRequest
	} else if d.Lines, err = s.templates.Diff(ctx, a, t.Slug, d.From, d.To); err != nil {
		return notFoundVersion(err)
	}
	return s.Render(c, status, Page{Title: t.Name + " changes", Nav: "templates", Content: templatesview.Diff(d)})
}

// TemplateJSONPage shows the current version as JSON, with the import form.
func (s *Pages) TemplateJSONPage(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	d, err := s.jsonData(c, a)
	if err != nil {
		return err
	}
	return s.Render(c, http.StatusOK, Page{Title: d.Template.Name + " JSON", Nav: "templates", Content: templatesview.JSON(d)})
}

// jsonData reads the current version's JSON for the JSON page.
func (s *Pages) jsonData(c echo.Context, a access.Actor) (templatesview.JSONData, error) {
	t, v, err := s.templates.Get(c.Request().Context(), a, c.Param("slug"))
	if err != nil {
		return templatesview.JSONData{}, err
	}
	spec, err := v.Spec(t.Slug)
	if err != nil {
		return templatesview.JSONData{}, err
	}
	return templatesview.JSONData{Template: t, JSON: string(spec.Export()), CanWrite: access.Allowed(a.Role, access.TemplatesWrite)}, nil
}

// ExportTemplate downloads the current version as slug.json.
func (s *Pages) ExportTemplate(c echo.Context) error {
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
	c.Response().Header().Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="%s.json"`, t.Slug))
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, spec.Export())
}

// ImportTemplateVersion saves pasted JSON as the template's new version.
// Problems are shown next to the textarea (422) with nothing written.
func (s *Pages) ImportTemplateVersion(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	d, err := s.jsonData(c, a)
	if err != nil {
		return err
	}
	d.Import = templatesview.Import{JSON: c.FormValue("json"), Note: c.FormValue("note")}
	spec, err := templates.Parse([]byte(d.Import.JSON))
	var errs validation.Errors
	switch {
	case errors.As(err, &errs):
		d.Import.Error = jsonProblem(errs)
	case err != nil:
		return err
	case spec.Slug != "" && spec.Slug != d.Template.Slug:
		d.Import.Error = fmt.Sprintf("This JSON is the template %q, not %q: change its slug, or import it as a new template.", spec.Slug, d.Template.Slug)
	default:
		spec.Slug = d.Template.Slug
		if errs, _ = s.templates.Check(&spec); len(errs) == 0 {
			v, changed, err := s.templates.Save(c.Request().Context(), a, d.Template.Slug, spec, d.Import.Note)
			if err == nil {
				if changed {
					s.addFlash(c, "success", fmt.Sprintf("Imported as version %d.", v.Number))
				} else {
					s.addFlash(c, "info", "No changes: the current version already says the same.")
				}
				return redirect(c, templatesview.Path(d.Template.Slug))
			}
			if !errors.As(err, &errs) {
				return err
			}
		}
		d.Problems = errs
		d.Import.Error = "The JSON reads, but the template needs another look (listed above)."
	}
	return s.Render(c, http.StatusUnprocessableEntity, Page{Title: d.Template.Name + " JSON", Nav: "templates", Content: templatesview.JSON(d)})
}

// DeleteTemplate deletes the template once its slug is typed to confirm.
func (s *Pages) DeleteTemplate(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	t, _, err := s.templates.Get(ctx, a, c.Param("slug"))
	if err != nil {
		return err
	}
	if strings.TrimSpace(c.FormValue("confirm")) != t.Slug {
		return s.showVersion(c, http.StatusUnprocessableEntity, 0, "Type "+t.Slug+" exactly to delete this template.")
	}
	if err := s.templates.Delete(ctx, a, t.Slug); err != nil {
		return err
	}
	s.addFlash(c, "success", fmt.Sprintf("Template %s deleted.", t.Name))
	return redirect(c, "/templates")
}
