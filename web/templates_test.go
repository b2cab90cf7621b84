package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/templates"
)

// formValues reads a form as a browser would submit it: its inputs,
// checked boxes, textareas and selected options (buttons left out).
func formValues(form *goquery.Selection) url.Values {
	v := url.Values{}
	form.Find("input, textarea, select").Each(func(_ int, s *goquery.Selection) {
		name, ok := s.Attr("name")
		if !ok || name == "" {
			return
		}
		switch goquery.NodeName(s) {
		case "textarea":
			v.Add(name, strings.TrimPrefix(s.Text(), "\n"))
		case "select":
			opt := s.Find("option[selected]").First()
			if opt.Length() == 0 {
				opt = s.Find("option").First()
			}
			v.Add(name, opt.AttrOr("value", opt.Text()))
		default:
			typ := s.AttrOr("type", "text")
			if (typ == "checkbox" || typ == "radio") && s.AttrOr("checked", "-") == "-" {
				return
			}
			if typ == "submit" || typ == "button" {
				return
			}
			v.Add(name, s.AttrOr("value", ""))
		}
	})
	return v
}

// twoStepTemplate is a valid builder form: an input and two steps, the
// second needing the first.
func twoStepTemplate(slug string) url.Values {
	return url.Values{
		"slug": {slug}, "name": {"Release note"}, "description": {"Drafts and polishes a note."}, "goal": {"Release note"},
		"inputs.0.name": {"topic"}, "inputs.0.label": {"Topic"}, "inputs.0.type": {"text"}, "inputs.0.required": {"on"},
		"steps.0.name": {"draft"}, "steps.0.kind": {"llm"}, "steps.0.provider": {"simulated"}, "steps.0.model": {"echo"},
		"steps.0.prompt": {"Draft a note about {{inputs.topic}}"},
		"steps.1.name":   {"polish"}, "steps.1.kind": {"text"}, "steps.1.prompt": {"Polished: {{steps.draft.output}}"},
		"steps.1.needs": {"0"},
	}
}

func countTemplates(t *testing.T, a *app) int {
	t.Helper()
	var n int
	require.NoError(t, db.Get(context.Background(), a.DB, &n, `SELECT COUNT(*) FROM templates`))
	return n
}

// postHTMX posts values as htmx does, with the CSRF token of page.
func (c *client) postHTMX(page, path string, values url.Values) response {
	c.t.Helper()
	values.Set("_csrf", c.csrf(page))
	req, err := http.NewRequest(http.MethodPost, c.app.URL+path, strings.NewReader(values.Encode()))
	require.NoError(c.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("HX-Request", "true")
	return c.do(req)
}

// stepNames are the names in the builder's step fields, in order.
func stepNames(doc *goquery.Selection) []string {
	var names []string
	doc.Find(`[data-testid=steps-editor] input[name$=".name"]`).Each(func(_ int, s *goquery.Selection) {
		names = append(names, s.AttrOr("value", ""))
	})
	return names
}

func newTemplateClient(t *testing.T, email string) (*app, *client) {
	a := newApp(t)
	c := a.client()
	c.signUp(email, password)
	return a, c
}

func TestTemplatesListAndShow(t *testing.T) {
	t.Parallel()
	_, c := newTemplateClient(t, "list@example.com")
	doc := c.get("/templates").Doc(t)
	require.Equal(t, 1, doc.Find(`[data-testid=template-summary]`).Length(), "the starter templates are listed")
	require.Equal(t, 1, doc.Find(`a[data-testid=new-template][href="/templates/new"]`).Length())

	res := c.get("/templates/summary")
	require.Equal(t, http.StatusOK, res.StatusCode)
	doc = res.Doc(t)
	require.Contains(t, doc.Find(`[data-testid=inputs-table]`).Text(), "text")
	require.Contains(t, doc.Find(`[data-testid=template-step-summarize]`).Text(), "{{inputs.text}}")
	require.Equal(t, "/templates/summary/deployments", doc.Find(`[data-testid=tab-deployments]`).AttrOr("href", ""))
	require.Equal(t, "/runs?template=summary", doc.Find(`[data-testid=template-runs-link]`).AttrOr("href", ""))
	require.Equal(t, http.StatusNotFound, c.get("/templates/nope").StatusCode)
	require.Equal(t, http.StatusNotFound, c.get("/templates/summary/versions/9").StatusCode)
	require.Equal(t, http.StatusNotFound, c.get("/templates/summary/versions/x").StatusCode)

	// The new run form offers the templates, through htmx.
	req, err := http.NewRequest(http.MethodGet, c.app.URL+"/templates?picker=1", nil)
	require.NoError(t, err)
	req.Header.Set("HX-Request", "true")
	picker := c.do(req)
	require.Equal(t, http.StatusOK, picker.StatusCode)
	require.Equal(t, "/templates/summary/run", picker.Doc(t).Find(`[data-testid=start-from-summary]`).AttrOr("href", ""))
	require.Equal(t, 1, c.get("/runs/new").Doc(t).Find(`[data-testid=template-picker][hx-get]`).Length())
}

func TestTemplateBuilderActions(t *testing.T) {
	t.Parallel()
	_, c := newTemplateClient(t, "builder@example.com")

	for _, htmx := range []bool{true, false} {
		post := func(values url.Values) *goquery.Document {
			var res response
			if htmx {
				res = c.postHTMX("/templates/new", "/templates/builder", values)
			} else {
				res = c.submit("/templates/new", "/templates/builder", values)
			}
			require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
			require.Equal(t, !htmx, strings.Contains(res.Body, "<html"), "a fragment for htmx, a page without it")
			return res.Doc(t)
		}
		form := twoStepTemplate("x")
		form.Set("action", "add-step")
		doc := post(form)
		require.Equal(t, []string{"draft", "polish", ""}, stepNames(doc.Selection))
		require.Equal(t, 1, doc.Find(`#steps-2-name[autofocus]`).Length(), "the new step's name has the focus")
		require.Equal(t, "simulated", doc.Find(`#steps-2-provider option[selected]`).AttrOr("value", ""))
		require.Equal(t, 1, doc.Find(`#steps-1-needs-0[checked]`).Length(), "needs are kept")

		// Move polish up: it keeps needing draft, now below it.
		form = formValues(doc.Find(`form#builder`))
		form.Set("action", "up:1")
		doc = post(form)
		require.Equal(t, []string{"polish", "draft", ""}, stepNames(doc.Selection))
		require.Equal(t, 1, doc.Find(`#steps-0-needs-1[checked]`).Length())
		require.Equal(t, "Move step draft up", doc.Find(`[data-testid=up-1]`).AttrOr("aria-label", ""))

		// Down again, then remove draft: polish needs nothing any more.
		form = formValues(doc.Find(`form#builder`))
		form.Set("action", "down:0")
		doc = post(form)
		require.Equal(t, []string{"draft", "polish", ""}, stepNames(doc.Selection))
		form = formValues(doc.Find(`form#builder`))
		form.Set("action", "remove-step:0")
		doc = post(form)
		require.Equal(t, []string{"polish", ""}, stepNames(doc.Selection))
		require.Equal(t, 0, doc.Find(`input[name="steps.0.needs"][checked]`).Length())

		// Inputs: add one, choose a type that takes choices, remove the first.
		form = formValues(doc.Find(`form#builder`))
		form.Set("action", "add-input")
		doc = post(form)
		require.Equal(t, 1, doc.Find(`#inputs-1-name[autofocus]`).Length())
		require.Equal(t, 0, doc.Find(`#inputs-1-choices`).Length())
		form = formValues(doc.Find(`form#builder`))
		form.Set("inputs.1.type", "choice")
		form.Del("action")
		doc = post(form)
		require.Equal(t, 1, doc.Find(`textarea#inputs-1-choices`).Length(), "a choice input shows its choices")
		form = formValues(doc.Find(`form#builder`))
		form.Set("action", "remove-input:0")
		doc = post(form)
		require.Equal(t, 1, doc.Find(`[data-testid=inputs-editor] > fieldset`).Length())
		require.Equal(t, "choice", doc.Find(`#inputs-0-type option[selected]`).AttrOr("value", ""))

		// A text step shows a template, not a provider.
		require.True(t, strings.HasPrefix(strings.TrimSpace(doc.Find(`label[for=steps-0-prompt]`).Text()), "Template"))
		require.Equal(t, 0, doc.Find(`select#steps-0-provider`).Length())
	}

	// Garbage never makes a 500.
	garbage := url.Values{"steps.x.name": {"a"}, "steps.99999999.name": {"b"}, "steps.0.needs": {"zz", "-1", "0", "7"},
		"steps.0.max_attempts": {"many"}, "inputs.1.type": {"???"}, "action": {"up:-5"}}
	res := c.submit("/templates/new", "/templates/builder", garbage)
	require.Equal(t, http.StatusOK, res.StatusCode)
	res = c.submit("/templates/new", "/templates/builder", url.Values{"action": {"remove-step:99"}})
	require.Equal(t, http.StatusOK, res.StatusCode)
}

func TestTemplateCreateErrors(t *testing.T) {
	t.Parallel()
	a, c := newTemplateClient(t, "errors@example.com")
	before := countTemplates(t, a)
	form := twoStepTemplate("Bad Slug")
	form.Set("name", "")
	form.Set("steps.0.max_attempts", "lots")
	form.Set("steps.0.options", "{not json")
	form.Set("steps.1.prompt", "Uses {{inputs.nowhere}}")
	res := c.submit("/templates/new", "/templates", form)
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	doc := res.Doc(t)
	for _, id := range []string{"template-slug", "template-name", "steps-0-max_attempts", "steps-0-options", "steps-1-prompt"} {
		require.Equal(t, 1, doc.Find(`[data-testid="error-`+id+`"]`).Length(), "an error next to %s", id)
	}
	require.Contains(t, doc.Find(`[data-testid="error-steps-1-prompt"]`).Text(), "inputs.nowhere")
	require.Equal(t, "lots", doc.Find(`#steps-0-max_attempts`).AttrOr("value", ""), "what was typed stays")
	require.Equal(t, 1, doc.Find(`[data-testid=builder-errors] a[href="#template-name"]`).Length())
	require.Equal(t, before, countTemplates(t, a), "nothing written")

	// A taken slug.
	form = twoStepTemplate(templates.StarterSummary)
	res = c.submit("/templates/new", "/templates", form)
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Equal(t, 1, res.Doc(t).Find(`[data-testid="error-template-slug"]`).Length())
	require.Equal(t, before, countTemplates(t, a))
}

func TestTemplateCreateSaveHistoryDiffRollback(t *testing.T) {
	t.Parallel()
	_, c := newTemplateClient(t, "versions@example.com")
	form := twoStepTemplate("release-note")
	form.Set("note", "First cut")
	res := c.submit("/templates/new", "/templates", form)
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	require.Equal(t, "/templates/release-note", res.Header.Get("Location"))
	doc := c.get("/templates/release-note").Doc(t)
	require.Contains(t, flashText(doc), "created")
	require.Contains(t, doc.Find(`[data-testid=template-step-polish]`).Text(), "needs draft")

	// The edit form, sent as it is, changes nothing.
	edit := c.get("/templates/release-note/edit")
	require.Equal(t, http.StatusOK, edit.StatusCode)
	values := formValues(edit.Doc(t).Find(`form#builder`))
	require.Equal(t, "0", values.Get("steps.1.needs"))
	res = c.postForm("/templates/release-note", values)
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	require.Contains(t, flashText(c.get("/templates/release-note").Doc(t)), "No changes")

	// A change makes version 2; an invalid one is refused with nothing written.
	values.Set("steps.0.prompt", "Draft a short note about {{inputs.topic}}")
	values.Set("note", "Shorter")
	res = c.postForm("/templates/release-note", values)
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	require.Contains(t, flashText(c.get("/templates/release-note").Doc(t)), "Saved version 2")
	bad := url.Values{}
	for k, v := range values {
		bad[k] = v
	}
	bad.Set("steps.1.name", "")
	res = c.postForm("/templates/release-note", bad)
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Equal(t, 1, res.Doc(t).Find(`[data-testid="error-steps-1-name"]`).Length())

	// History: newest first, with the current badge and the notes.
	doc = c.get("/templates/release-note/versions").Doc(t)
	rows := doc.Find(`[data-testid=versions-table] tbody tr`)
	require.Equal(t, 2, rows.Length())
	require.Equal(t, "version-2", rows.First().AttrOr("data-testid", ""))
	require.Equal(t, 1, rows.First().Find(`[data-testid=current-badge]`).Length())
	require.Contains(t, rows.First().Text(), "Shorter")
	require.Contains(t, rows.First().Text(), "versions@example.com")
	require.Equal(t, 1, doc.Find(`[data-testid=rollback-1]`).Length())
	require.Equal(t, 0, doc.Find(`[data-testid=rollback-2]`).Length())

	// Diff: the changed prompt, marked, with line numbers.
	doc = c.get("/templates/release-note/diff?from=1&to=2").Doc(t)
	del, add := doc.Find(`[data-testid=diff-del]`), doc.Find(`[data-testid=diff-add]`)
	require.Equal(t, 1, del.Length())
	require.Equal(t, 1, add.Length())
	require.Contains(t, del.Text(), "Draft a note")
	require.Contains(t, add.Text(), "Draft a short note")
	require.Equal(t, "-", strings.TrimSpace(del.Find(`.diff-op`).Contents().First().Text()))
	require.NotEmpty(t, strings.TrimSpace(del.Find(`.diff-no`).First().Text()))
	require.Empty(t, strings.TrimSpace(del.Find(`.diff-no`).Last().Text()))
	require.Equal(t, http.StatusBadRequest, c.get("/templates/release-note/diff?from=abc&to=2").StatusCode)
	require.Equal(t, http.StatusNotFound, c.get("/templates/release-note/diff?from=1&to=9").StatusCode)
	require.Equal(t, 1, c.get("/templates/release-note/diff").Doc(t).Find(`[data-testid=diff-add]`).Length(), "by default, the last change")

	// An old version reads as it was; rollback makes it current.
	doc = c.get("/templates/release-note/versions/1").Doc(t)
	require.Equal(t, 1, doc.Find(`[data-testid=old-version]`).Length())
	require.Contains(t, doc.Find(`[data-testid=template-step-draft]`).Text(), "Draft a note")
	res = c.submit("/templates/release-note/versions", "/templates/release-note/versions/1/rollback", url.Values{})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	doc = c.get("/templates/release-note/versions").Doc(t)
	require.Contains(t, flashText(doc), "Version 1 is current again")
	require.Equal(t, 1, doc.Find(`[data-testid=version-1] [data-testid=current-badge]`).Length())
	require.Equal(t, http.StatusNotFound, c.submit("/templates/release-note/versions", "/templates/release-note/versions/7/rollback", url.Values{}).StatusCode)
}

func TestTemplateJSONExportImport(t *testing.T) {
	t.Parallel()
	_, c := newTemplateClient(t, "json@example.com")
	res := c.get("/templates/summary/export.json")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "application/json", res.Header.Get("Content-Type"))
	require.Equal(t, `attachment; filename="summary.json"`, res.Header.Get("Content-Disposition"))
	spec, err := templates.Parse([]byte(res.Body))
	require.NoError(t, err)
	require.Equal(t, "summary", spec.Slug)
	page := c.get("/templates/summary/json").Doc(t)
	require.Equal(t, strings.TrimSpace(res.Body), strings.TrimSpace(page.Find(`[data-testid=export-json]`).Text()))

	// Import a new version from the edited JSON.
	spec.Description = "Summarises anything."
	res = c.submit("/templates/summary/json", "/templates/summary/import", url.Values{"json": {string(spec.Export())}, "note": {"From git"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	doc := c.get("/templates/summary").Doc(t)
	require.Contains(t, flashText(doc), "Imported as version 2")
	require.Contains(t, doc.Find(`[data-testid=template-description]`).Text(), "Summarises anything.")

	// Errors sit next to the textarea, and nothing is saved.
	for _, bad := range []string{`{"slug": "summary", "nme": "x"}`, `not json`, ""} {
		res = c.submit("/templates/summary/json", "/templates/summary/import", url.Values{"json": {bad}})
		require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, bad)
		require.Equal(t, 1, res.Doc(t).Find(`[data-testid=error-import-json]`).Length(), bad)
	}
	spec.Plan.Steps[0].Prompt = "Uses {{inputs.ghost}}"
	res = c.submit("/templates/summary/json", "/templates/summary/import", url.Values{"json": {string(spec.Export())}})
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Contains(t, res.Doc(t).Find(`[data-testid=import-problems]`).Text(), "steps[0].prompt")
	require.Len(t, c.get("/templates/summary/versions").Doc(t).Find(`[data-testid=versions-table] tbody tr`).Nodes, 2)

	// The same JSON with another slug imports as a new template.
	spec.Plan.Steps[0].Prompt = "Summarise {{inputs.text}}"
	spec.Slug = "summary-copy"
	res = c.submit("/templates/new", "/templates/import", url.Values{"json": {string(spec.Export())}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	require.Equal(t, "/templates/summary-copy", res.Header.Get("Location"))
	res = c.submit("/templates/new", "/templates/import", url.Values{"json": {`{"slug":`}})
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Equal(t, 1, res.Doc(t).Find(`[data-testid=error-import-json]`).Length())
}

func TestTemplateRunForm(t *testing.T) {
	t.Parallel()
	a, c := newTemplateClient(t, "runform@example.com")
	doc := c.get("/templates/draft-review/run").Doc(t)
	require.Equal(t, "true", doc.Find(`#input-topic`).AttrOr("aria-required", ""))
	require.Equal(t, "friendly", doc.Find(`select#input-tone option[selected]`).AttrOr("value", ""), "defaults are filled in")
	doc = c.get("/templates/fan-out/run").Doc(t)
	require.Equal(t, "number", doc.Find(`#input-points`).AttrOr("type", ""))
	require.Equal(t, "any", doc.Find(`#input-points`).AttrOr("step", ""))

	before := countRuns(t, a)
	res := c.submit("/templates/fan-out/run", "/templates/fan-out/run", url.Values{"inputs.topic": {""}, "inputs.points": {"several"}})
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	doc = res.Doc(t)
	require.Equal(t, 1, doc.Find(`[data-testid=error-input-topic]`).Length())
	require.Equal(t, 1, doc.Find(`[data-testid=error-input-points]`).Length())
	require.Equal(t, "several", doc.Find(`#input-points`).AttrOr("value", ""), "values are kept")
	require.Equal(t, before, countRuns(t, a))

	form := formValues(c.get("/templates/summary/run").Doc(t).Find(`[data-testid=template-run-form]`))
	require.NotEmpty(t, form.Get("idempotency_key"))
	form.Set("inputs.text", "Tides rise and fall.")
	res = c.postForm("/templates/summary/run", form)
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	location := res.Header.Get("Location")
	require.True(t, strings.HasPrefix(location, "/runs/"))
	require.Contains(t, flashText(c.get(location).Doc(t)), "started")
	require.Equal(t, before+1, countRuns(t, a))

	// The same form sent twice starts one run.
	res = c.postForm("/templates/summary/run", form)
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	require.Equal(t, location, res.Header.Get("Location"))
	require.Contains(t, flashText(c.get(location).Doc(t)), "already sent")
	require.Equal(t, before+1, countRuns(t, a))
}

func TestTemplatePreview(t *testing.T) {
	t.Parallel()
	_, c := newTemplateClient(t, "preview@example.com")
	form := twoStepTemplate("preview")
	res := c.postHTMX("/templates/new", "/templates/preview", form)
	require.Equal(t, http.StatusOK, res.StatusCode)
	doc := res.Doc(t)
	require.Contains(t, doc.Find(`[data-testid=preview-rendered-0]`).Text(), "Draft a note about sample Topic")
	require.Contains(t, doc.Find(`[data-testid=preview-rendered-1]`).Text(), "Polished: [output of draft]")
	require.Equal(t, "sample Topic", doc.Find(`#sample-topic`).AttrOr("value", ""))

	// A sample value of one's own, and a variable nobody declared.
	form = twoStepTemplate("preview")
	form.Set("sample.topic", "tides")
	form.Set("steps.1.prompt", "About {{inputs.audience}}")
	res = c.submit("/templates/new", "/templates/preview", form)
	require.Equal(t, http.StatusOK, res.StatusCode)
	doc = res.Doc(t)
	require.Contains(t, doc.Find(`[data-testid=preview-rendered-0]`).Text(), "about tides")
	require.Equal(t, "Missing: inputs.audience", strings.Join(strings.Fields(doc.Find(`[data-testid=preview-missing-1]`).Text()), " "))
	require.Contains(t, doc.Find(`[data-testid=preview-errors]`).Text(), "inputs.audience")
	require.Equal(t, 1, doc.Find(`form#builder`).Length(), "without htmx, the whole builder comes back")
}

func TestTemplateDelete(t *testing.T) {
	t.Parallel()
	a, c := newTemplateClient(t, "delete@example.com")
	before := countTemplates(t, a)
	res := c.submit("/templates/fan-out", "/templates/fan-out/delete", url.Values{"confirm": {"fan"}})
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Equal(t, 1, res.Doc(t).Find(`[data-testid=error-delete-confirm]`).Length())
	require.Equal(t, before, countTemplates(t, a))
	res = c.submit("/templates/fan-out", "/templates/fan-out/delete", url.Values{"confirm": {"fan-out"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	doc := c.get("/templates").Doc(t)
	require.Contains(t, flashText(doc), "deleted")
	require.Equal(t, 0, doc.Find(`[data-testid=template-fan-out]`).Length())
	require.Equal(t, http.StatusNotFound, c.get("/templates/fan-out").StatusCode)

	// With every template gone, the list says what to do.
	for _, slug := range []string{"summary", "draft-review"} {
		res = c.submit("/templates/"+slug, "/templates/"+slug+"/delete", url.Values{"confirm": {slug}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
	}
	doc = c.get("/templates").Doc(t)
	require.Equal(t, 1, doc.Find(`[data-testid=empty-state] a[href="/templates/new"]`).Length())
}

// TestTemplatesOtherTeam: every template page of another team's template
// is a 404, before anything in the form is looked at.
func TestTemplatesOtherTeam(t *testing.T) {
	t.Parallel()
	a, owner := newTemplateClient(t, "owner-a@example.com")
	res := owner.submit("/templates/new", "/templates", twoStepTemplate("secret-plan"))
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	stranger := a.client()
	stranger.signUp("stranger-b@example.com", password)
	for _, path := range []string{"", "/edit", "/versions", "/versions/1", "/diff?from=1&to=1", "/json", "/export.json", "/run"} {
		require.Equal(t, http.StatusNotFound, stranger.get("/templates/secret-plan"+path).StatusCode, path)
	}
	for _, path := range []string{"", "/import", "/versions/1/rollback", "/run", "/delete"} {
		res := stranger.submit("/templates", "/templates/secret-plan"+path, twoStepTemplate("secret-plan"))
		require.Equal(t, http.StatusNotFound, res.StatusCode, path)
	}
	require.Equal(t, 0, stranger.get("/templates").Doc(t).Find(`[data-testid=template-secret-plan]`).Length())
}

// TestTemplatePagesForAViewer: a viewer reads templates but is offered no
// button their role does not allow.
func TestTemplatePagesForAViewer(t *testing.T) {
	t.Parallel()
	a, owner := newTemplateClient(t, "owner-v@example.com")
	ctx := context.Background()
	ownerUser, err := auth.UserByEmail(ctx, a.DB, "owner-v@example.com")
	require.NoError(t, err)
	ms, err := teams.ForUser(ctx, a.DB, ownerUser.ID)
	require.NoError(t, err)
	res := owner.submit("/templates/new", "/templates", twoStepTemplate("shared"))
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	values := twoStepTemplate("shared")
	values.Set("description", "Changed.")
	res = owner.submit("/templates/shared/edit", "/templates/shared", values)
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)

	viewer := a.client()
	viewer.signUp("viewer-v@example.com", password)
	viewerUser, err := auth.UserByEmail(ctx, a.DB, "viewer-v@example.com")
	require.NoError(t, err)
	require.NoError(t, teams.AddMember(ctx, a.DB, ms[0].ID, viewerUser.ID, teams.RoleViewer))
	viewer.submit("/runs", "/teams/switch", url.Values{"team_id": {fmt.Sprint(ms[0].ID)}})

	doc := viewer.get("/templates").Doc(t)
	require.Equal(t, 1, doc.Find(`[data-testid=template-shared]`).Length())
	require.Equal(t, 0, doc.Find(`[data-testid=new-template]`).Length())
	require.Equal(t, 0, doc.Find(`a[href="/templates/shared/edit"]`).Length())
	doc = viewer.get("/templates/shared").Doc(t)
	for _, id := range []string{"edit-template", "run-template", "delete-form"} {
		require.Equal(t, 0, doc.Find(`[data-testid=`+id+`]`).Length(), id)
	}
	require.Equal(t, 0, viewer.get("/templates/shared/versions").Doc(t).Find(`[data-testid=rollback-1]`).Length())
	require.Equal(t, 0, viewer.get("/templates/shared/json").Doc(t).Find(`[data-testid=import-form]`).Length())
	require.Equal(t, http.StatusForbidden, viewer.get("/templates/new").StatusCode)
	require.Equal(t, http.StatusForbidden, viewer.get("/templates/shared/run").StatusCode)
}
