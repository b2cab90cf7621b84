package api

// Templates JSON API:
//
//	api.GET("/templates", s.ListTemplates)
//	api.POST("/templates", s.CreateTemplate)
//	api.GET("/templates/:slug", s.GetTemplate)
//	api.PUT("/templates/:slug", s.SaveTemplate)
//	api.DELETE("/templates/:slug", s.DeleteTemplate)
//	api.GET("/templates/:slug/versions", s.TemplateVersions)
//	api.POST("/templates/:slug/versions/:version/rollback", s.RollbackTemplate)
//	api.GET("/templates/:slug/diff", s.TemplateDiff)

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/plan"
	"github.com/nofxhq/nofx/internal/templates"
	"github.com/nofxhq/nofx/internal/validation"
	"github.com/nofxhq/nofx/web/form"
	"github.com/nofxhq/nofx/web/httpx"
)

// templateJSON is a template in the API.
type templateJSON struct {
	Slug           string    `json:"slug"`
	Name           string    `json:"name"`
	Description    string    `json:"description"`
	CurrentVersion int       `json:"current_version"`
	LatestVersion  int       `json:"latest_version"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

func toTemplateJSON(t templates.Template) templateJSON {
	return templateJSON{Slug: t.Slug, Name: t.Name, Description: t.Description, CurrentVersion: t.CurrentVersion,
		LatestVersion: t.LatestVersion, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt}
}

// templateVersionJSON is one version of a template in the API.
type templateVersionJSON struct {
	Version   int       `json:"version"`
	Note      string    `json:"note"`
	Author    string    `json:"author"`
	CreatedAt time.Time `json:"created_at"`
	Current   bool      `json:"current"`
}

func toTemplateVersionJSON(t templates.Template, v templates.Version) templateVersionJSON {
	return templateVersionJSON{Version: v.Number, Note: v.Note, Author: v.Author, CreatedAt: v.CreatedAt, Current: v.Number == t.CurrentVersion}
}

// templateResponse is a template with one of its versions and its content.
type templateResponse struct {
	Template templateJSON      `json:"template"`
	Version  int               `json:"version"`
	Changed  *bool             `json:"changed,omitempty"` // for a save
	Note     string            `json:"note"`
	Author   string            `json:"author"`
	SavedAt  time.Time         `json:"saved_at"`
	Spec     templates.Spec    `json:"spec"`
	Warnings validation.Errors `json:"warnings,omitempty"`
}

func toTemplateResponse(t templates.Template, v templates.Version) (templateResponse, error) {
	spec, err := v.Spec(t.Slug)
	if err != nil {
		return templateResponse{}, err
	}
	return templateResponse{Template: toTemplateJSON(t), Version: v.Number, Note: v.Note, Author: v.Author,
		SavedAt: v.CreatedAt, Spec: spec}, nil
}

// readTemplateBody reads a spec, as the builder exports it, with an
// optional "note" beside its fields. Malformed JSON is a 400; a number out
// of range a 422 naming its field.
func readTemplateBody(c echo.Context) (templates.Spec, string, error) {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return templates.Spec{}, "", echo.ErrStatusRequestEntityTooLarge
		}
		return templates.Spec{}, "", echo.NewHTTPError(http.StatusBadRequest, "Could not read the request body.")
	}
	// A number that cannot be stored (such as 1e400) is a 422 naming its
	// field, like any other value that is well-formed JSON but not valid.
	if found := plan.OutOfRangeNumbers(body); len(found) > 0 {
		return templates.Spec{}, "", found
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		// Parse says what is wrong in words.
		_, perr := templates.Parse(body)
		return templates.Spec{}, "", badTemplateJSON(perr)
	}
	var note string
	if raw, ok := fields["note"]; ok {
		if err := json.Unmarshal(raw, &note); err != nil {
			return templates.Spec{}, "", echo.NewHTTPError(http.StatusBadRequest, `Field "note" must be a string.`)
		}
		delete(fields, "note")
	}
	rest, err := json.Marshal(fields)
	if err != nil {
		return templates.Spec{}, "", echo.NewHTTPError(http.StatusBadRequest, "The body is not a JSON object.")
	}
	spec, err := templates.Parse(bytes.TrimSpace(rest))
	if err != nil {
		return templates.Spec{}, "", badTemplateJSON(err)
	}
	return spec, note, nil
}

// badTemplateJSON turns Parse's error into a 400 with its sentence.
func badTemplateJSON(err error) error {
	var verrs validation.Errors
	if errors.As(err, &verrs) && verrs["json"] != "" {
		return echo.NewHTTPError(http.StatusBadRequest, verrs["json"])
	}
	return echo.NewHTTPError(http.StatusBadRequest, "The body is not a JSON object.")
}

func (s *API) ListTemplates(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	list, err := s.templates.List(c.Request().Context(), a)
	if err != nil {
		return err
	}
	out := make([]templateJSON, 0, len(list))
	for _, t := range list {
		out = append(out, toTemplateJSON(t))
	}
	return c.JSON(http.StatusOK, templatesResponse{Templates: out})
}

func (s *API) CreateTemplate(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	spec, note, err := readTemplateBody(c)
	if err != nil {
		return err
	}
	_, warnings := s.templates.Check(&spec)
	t, v, err := s.templates.Create(c.Request().Context(), a, spec, note)
	if err != nil {
		return err
	}
	out, err := toTemplateResponse(t, v)
	if err != nil {
		return err
	}
	out.Warnings = warnings
	c.Response().Header().Set(echo.HeaderLocation, "/api/v1/templates/"+t.Slug)
	return c.JSON(http.StatusCreated, out)
}

func (s *API) GetTemplate(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	n := 0
	if raw := c.QueryParam("version"); raw != "" {
		if n, err = strconv.Atoi(raw); err != nil || n < 1 {
			return validation.Errors{"version": "Use a version number, such as 1."}
		}
	}
	t, v, err := s.templates.Version(c.Request().Context(), a, c.Param("slug"), n)
	if err != nil {
		return err
	}
	out, err := toTemplateResponse(t, v)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (s *API) SaveTemplate(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	spec, note, err := readTemplateBody(c)
	if err != nil {
		return err
	}
	ctx, slug := c.Request().Context(), c.Param("slug")
	checked := spec
	_, warnings := s.templates.Check(&checked)
	v, changed, err := s.templates.Save(ctx, a, slug, spec, note)
	if err != nil {
		return err
	}
	t, _, err := s.templates.Get(ctx, a, slug)
	if err != nil {
		return err
	}
	out, err := toTemplateResponse(t, v)
	if err != nil {
		return err
	}
	out.Changed, out.Warnings = &changed, warnings
	return c.JSON(http.StatusOK, out)
}

func (s *API) TemplateVersions(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	t, versions, err := s.templates.Versions(c.Request().Context(), a, c.Param("slug"))
	if err != nil {
		return err
	}
	out := make([]templateVersionJSON, 0, len(versions))
	for _, v := range versions {
		out = append(out, toTemplateVersionJSON(t, v))
	}
	return c.JSON(http.StatusOK, versionsResponse{Template: toTemplateJSON(t), Versions: out})
}

// diffLineJSON is one line of a diff between two versions in the API.
type diffLineJSON struct {
	Op    string `json:"op"` // " ", "-" or "+"
	Text  string `json:"text"`
	OldNo int    `json:"old,omitempty"`
	NewNo int    `json:"new,omitempty"`
}

// TemplateDiff answers the line difference between versions from and to
// of a template's exported JSON (by default the one before current, and
// current).
func (s *API) TemplateDiff(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	t, _, err := s.templates.Get(ctx, a, c.Param("slug"))
	if err != nil {
		return err
	}
	from, to, errs := form.DiffVersions(c.QueryParams(), t.CurrentVersion)
	if err := errs.Err(); err != nil {
		return err
	}
	lines, err := s.templates.Diff(ctx, a, t.Slug, from, to)
	if err != nil {
		return err
	}
	out := make([]diffLineJSON, 0, len(lines))
	for _, l := range lines {
		out = append(out, diffLineJSON{Op: string(l.Op), Text: l.Text, OldNo: l.OldNo, NewNo: l.NewNo})
	}
	return c.JSON(http.StatusOK, diffResponse{From: from, To: to, Lines: out})
}

// RollbackTemplate makes an older version current again.
func (s *API) RollbackTemplate(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(c.Param("version"))
	if err != nil || n < 1 {
		return echo.NewHTTPError(http.StatusNotFound, "There is no such version.")
	}
	t, err := s.templates.Rollback(c.Request().Context(), a, c.Param("slug"), n)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, templateOnlyResponse{Template: toTemplateJSON(t)})
}

// DeleteTemplate deletes a template with its versions and deployments;
// the runs started from it stay.
func (s *API) DeleteTemplate(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	if err := s.templates.Delete(c.Request().Context(), a, c.Param("slug")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
