package web_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/templates"
)

// apiTemplate is a template response of the API.
type apiTemplate struct {
	Template struct {
		Slug           string `json:"slug"`
		Name           string `json:"name"`
		CurrentVersion int    `json:"current_version"`
		LatestVersion  int    `json:"latest_version"`
	} `json:"template"`
	Version  int               `json:"version"`
	Changed  *bool             `json:"changed"`
	Note     string            `json:"note"`
	Author   string            `json:"author"`
	Spec     templates.Spec    `json:"spec"`
	Warnings map[string]string `json:"warnings"`
}

const briefJSON = `{
  "slug": "brief",
  "name": "Brief",
  "inputs": [
    {"name": "topic", "type": "text", "required": true},
    {"name": "words", "type": "number", "default": 50},
    {"name": "audience", "type": "text"}
  ],
  "plan": {"goal": "Write a brief", "steps": [
    {"name": "draft", "kind": "llm", "provider": "simulated", "model": "echo", "prompt": "{{inputs.words}} words on {{inputs.topic}}"}
  ]}`

// withNote closes briefJSON with a change note.
func withNote(spec, note string) string {
	return spec + fmt.Sprintf(`, "note": %q}`, note)
}

func TestAPITemplates(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.newAPIClient("tpl@example.com", teams.RoleMember)

	list := decode[struct {
		Templates []struct {
			Slug string `json:"slug"`
		} `json:"templates"`
	}](t, c.do(http.MethodGet, "/api/v1/templates", ""))
	var slugs []string
	for _, tpl := range list.Templates {
		slugs = append(slugs, tpl.Slug)
	}
	require.ElementsMatch(t, []string{templates.StarterSummary, templates.StarterDraftReview, templates.StarterFanOut}, slugs, "a new team has the starters")

	res := c.do(http.MethodPost, "/api/v1/templates", withNote(briefJSON, "first"))
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	created := decode[apiTemplate](t, res)
	require.Equal(t, "brief", created.Template.Slug)
	require.Equal(t, 1, created.Version)
	require.Equal(t, "first", created.Note)
	require.Equal(t, "test", created.Author, "the API key's name")
	require.Equal(t, map[string]string{"inputs[2].name": "No prompt uses this input."}, created.Warnings)
	require.Equal(t, "/api/v1/templates/brief", res.Header.Get("Location"))

	res = c.do(http.MethodPost, "/api/v1/templates", briefJSON+"}")
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, res.Body)
	require.Contains(t, apiErrorFields(t, res)["slug"], "already has a template")

	edited := strings.Replace(briefJSON, `"name": "Brief"`, `"name": "Brief two"`, 1)
	res = c.do(http.MethodPut, "/api/v1/templates/brief", withNote(edited, "rename"))
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	saved := decode[apiTemplate](t, res)
	require.Equal(t, 2, saved.Version)
	require.True(t, *saved.Changed)
	require.Equal(t, 2, saved.Template.CurrentVersion)
	require.Contains(t, saved.Warnings, "inputs[2].name")

	res = c.do(http.MethodPut, "/api/v1/templates/brief", edited+"}")
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	same := decode[apiTemplate](t, res)
	require.False(t, *same.Changed, "the same content makes no version")
	require.Equal(t, 2, same.Version)

	got := decode[apiTemplate](t, c.do(http.MethodGet, "/api/v1/templates/brief", ""))
	require.Equal(t, 2, got.Version)
	require.Equal(t, "Brief two", got.Spec.Name)
	require.Equal(t, "50", got.Spec.Inputs[1].Default)
	old := decode[apiTemplate](t, c.do(http.MethodGet, "/api/v1/templates/brief?version=1", ""))
	require.Equal(t, 1, old.Version)
	require.Equal(t, "Brief", old.Spec.Name)
	require.Equal(t, 2, old.Template.CurrentVersion)

	// The spec a GET returns is what a POST takes: export and import.
	exported := string(got.Spec.Export())
	res = c.do(http.MethodPost, "/api/v1/templates", strings.Replace(exported, `"slug": "brief"`, `"slug": "brief-copy"`, 1))
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)

	versions := decode[struct {
		Versions []struct {
			Version int    `json:"version"`
			Note    string `json:"note"`
			Author  string `json:"author"`
			Current bool   `json:"current"`
		} `json:"versions"`
	}](t, c.do(http.MethodGet, "/api/v1/templates/brief/versions", ""))
	require.Len(t, versions.Versions, 2)
	require.Equal(t, 2, versions.Versions[0].Version)
	require.True(t, versions.Versions[0].Current)
	require.Equal(t, "rename", versions.Versions[0].Note)
	require.Equal(t, "test", versions.Versions[0].Author)
	require.False(t, versions.Versions[1].Current)
}

func TestAPITemplateErrors(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.newAPIClient("tplerr@example.com", teams.RoleMember)
	viewer := a.newAPIClient("tplviewer@example.com", teams.RoleViewer)
	stranger := a.newAPIClient("tplstranger@example.com", teams.RoleOwner)
	require.Equal(t, http.StatusCreated, c.do(http.MethodPost, "/api/v1/templates", briefJSON+"}").StatusCode)
	undeclared := strings.Replace(briefJSON, "{{inputs.topic}}", "{{inputs.subject}}", 1) + "}"

	for _, tc := range []struct {
		name   string
		client *apiClient
		method string
		path   string
		body   string
		status int
		field  string
	}{
		{"malformed json", c, "POST", "/api/v1/templates", `{"slug":`, 400, ""},
		{"not an object", c, "POST", "/api/v1/templates", `[1]`, 400, ""},
		{"unknown field", c, "POST", "/api/v1/templates", `{"slug":"x","colour":"red"}`, 400, ""},
		{"note not a string", c, "POST", "/api/v1/templates", `{"slug":"x","note":3}`, 400, ""},
		{"undeclared input", c, "POST", "/api/v1/templates", strings.Replace(undeclared, `"brief"`, `"other"`, 1), 422, "steps[0].prompt"},
		{"empty spec", c, "POST", "/api/v1/templates", `{}`, 422, "name"},
		{"slug change", c, "PUT", "/api/v1/templates/brief", strings.Replace(briefJSON, `"brief"`, `"renamed"`, 1) + "}", 422, "slug"},
		{"invalid save", c, "PUT", "/api/v1/templates/brief", undeclared, 422, "steps[0].prompt"},
		{"unknown template", c, "GET", "/api/v1/templates/nope", "", 404, ""},
		{"unknown version", c, "GET", "/api/v1/templates/brief?version=9", "", 404, ""},
		{"bad version", c, "GET", "/api/v1/templates/brief?version=x", "", 422, "version"},
		{"save unknown", c, "PUT", "/api/v1/templates/nope", briefJSON + "}", 404, ""},
		{"viewer cannot create", viewer, "POST", "/api/v1/templates", `{"slug":`, 403, ""},
		{"viewer cannot save", viewer, "PUT", "/api/v1/templates/brief", `{}`, 403, ""},
		{"another team's template", stranger, "GET", "/api/v1/templates/brief", "", 404, ""},
		{"another team's versions", stranger, "GET", "/api/v1/templates/brief/versions", "", 404, ""},
		{"another team's save", stranger, "PUT", "/api/v1/templates/brief", briefJSON + "}", 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := tc.client.do(tc.method, tc.path, tc.body)
			require.Equal(t, tc.status, res.StatusCode, res.Body)
			if tc.field != "" {
				require.Contains(t, apiErrorFields(t, res), tc.field)
			}
		})
	}
	got := decode[apiTemplate](t, c.do(http.MethodGet, "/api/v1/templates/brief", ""))
	require.Equal(t, 1, got.Template.LatestVersion, "no refused request made a version")
}

func TestAPIRunFromTemplate(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.newAPIClient("tplrun@example.com", teams.RoleMember)

	for _, tc := range []struct {
		name, body, field string
	}{
		{"unknown template", `{"template":"nope","inputs":{}}`, "template"},
		{"missing input", `{"template":"summary","inputs":{}}`, "inputs.text"},
		{"unknown input", `{"template":"summary","inputs":{"text":"x","colour":"red"}}`, "inputs.colour"},
		{"template and prompt", `{"template":"summary","prompt":"x"}`, "plan"},
		{"template and model", `{"template":"summary","model":"echo","inputs":{"text":"x"}}`, "provider"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := c.do(http.MethodPost, "/api/v1/runs", tc.body)
			require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, res.Body)
			require.Contains(t, apiErrorFields(t, res), tc.field)
		})
	}

	body := `{"template":"summary","inputs":{"text":"Otters hold hands while they sleep."}}`
	res := c.do(http.MethodPost, "/api/v1/runs", body, "Idempotency-Key", "tpl-1")
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	run := decode[struct {
		ID              int64  `json:"id"`
		Template        string `json:"template"`
		TemplateVersion int    `json:"template_version"`
	}](t, res)
	require.Equal(t, templates.StarterSummary, run.Template)
	require.Equal(t, 1, run.TemplateVersion)
	again := c.do(http.MethodPost, "/api/v1/runs", body, "Idempotency-Key", "tpl-1")
	require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
	require.Equal(t, run.ID, decode[apiRun](t, again).ID)

	done := c.waitRun(run.ID, "succeeded", "failed")
	require.Equal(t, "succeeded", done.Status)
	require.Contains(t, done.Steps[0].Output, "Otters hold hands while they sleep.")

	// A number given to a text input keeps every digit.
	res = c.do(http.MethodPost, "/api/v1/runs", `{"template":"summary","inputs":{"text":9007199254740993}}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	big := c.waitRun(decode[apiRun](t, res).ID, "succeeded", "failed")
	require.Contains(t, big.Steps[0].Output, "9007199254740993")
}

// TestAPIStartersRun starts each starter template as it ships, through the
// API, and sees it succeed on the simulated provider.
func TestAPIStartersRun(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.newAPIClient("starters@example.com", teams.RoleOwner)
	for _, tc := range []struct {
		slug, inputs, approve, output string
	}{
		{templates.StarterSummary, `{"text":"The quick brown fox."}`, "", "The quick brown fox."},
		{templates.StarterDraftReview, `{"topic":"otters"}`, "approve", ""},
		{templates.StarterFanOut, `{"topic":"tea","points":2}`, "", "List 2 arguments against tea."},
	} {
		t.Run(tc.slug, func(t *testing.T) {
			res := c.do(http.MethodPost, "/api/v1/runs", fmt.Sprintf(`{"template":%q,"inputs":%s}`, tc.slug, tc.inputs))
			require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
			run := decode[apiRun](t, res)
			if tc.approve != "" {
				c.waitRun(run.ID, "waiting", "failed")
				res := c.do(http.MethodPost, fmt.Sprintf("/api/v1/runs/%d/steps/%s/approve", run.ID, tc.approve), `{"comment":"ship it"}`)
				require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
			}
			done := c.waitRun(run.ID, "succeeded", "failed", "cancelled")
			require.Equal(t, "succeeded", done.Status, "%+v", done)
			last := done.Steps[len(done.Steps)-1]
			require.Contains(t, last.Output, tc.output)
		})
	}
}

// TestAPITemplateDiffRollbackDelete compares two versions, makes the older
// one current again and deletes the template through the API.
func TestAPITemplateDiffRollbackDelete(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	owner := a.newAPIClient("tpl-history@example.com", teams.RoleOwner)
	member := a.newAPIClient("tpl-history-member@example.com", teams.RoleMember)
	res := owner.do(http.MethodPost, "/api/v1/templates", briefJSON+"}")
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	res = owner.do(http.MethodPut, "/api/v1/templates/brief", strings.Replace(briefJSON, `"name": "Brief"`, `"name": "Brief two"`, 1)+"}")
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)

	type diff struct {
		From, To int
		Lines    []struct {
			Op   string `json:"op"`
			Text string `json:"text"`
			Old  int    `json:"old"`
			New  int    `json:"new"`
		} `json:"lines"`
	}
	res = owner.do(http.MethodGet, "/api/v1/templates/brief/diff", "")
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	d := decode[diff](t, res)
	require.Equal(t, 1, d.From)
	require.Equal(t, 2, d.To)
	var changes []string
	for _, l := range d.Lines {
		if l.Op != " " {
			changes = append(changes, l.Op+strings.TrimSpace(l.Text))
		}
	}
	require.Equal(t, []string{`-"name": "Brief",`, `+"name": "Brief two",`}, changes)
	res = owner.do(http.MethodGet, "/api/v1/templates/brief/diff?from=x", "")
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Contains(t, apiErrorFields(t, res), "from")
	require.Equal(t, http.StatusNotFound, owner.do(http.MethodGet, "/api/v1/templates/brief/diff?to=9", "").StatusCode)

	res = owner.do(http.MethodPost, "/api/v1/templates/brief/versions/1/rollback", "")
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	rolled := decode[struct {
		Template struct {
			CurrentVersion int `json:"current_version"`
			LatestVersion  int `json:"latest_version"`
		} `json:"template"`
	}](t, res)
	require.Equal(t, 1, rolled.Template.CurrentVersion)
	require.Equal(t, 2, rolled.Template.LatestVersion)
	require.Equal(t, http.StatusConflict, owner.do(http.MethodPost, "/api/v1/templates/brief/versions/1/rollback", "").StatusCode, "already current")
	require.Equal(t, http.StatusNotFound, owner.do(http.MethodPost, "/api/v1/templates/brief/versions/9/rollback", "").StatusCode)
	require.Equal(t, http.StatusNotFound, owner.do(http.MethodPost, "/api/v1/templates/brief/versions/x/rollback", "").StatusCode)

	require.Equal(t, http.StatusForbidden, member.do(http.MethodDelete, "/api/v1/templates/brief", "").StatusCode, "members write templates but do not delete them")
	require.Equal(t, http.StatusNoContent, owner.do(http.MethodDelete, "/api/v1/templates/brief", "").StatusCode)
	require.Equal(t, http.StatusNotFound, owner.do(http.MethodGet, "/api/v1/templates/brief", "").StatusCode)
	require.Equal(t, http.StatusNotFound, owner.do(http.MethodDelete, "/api/v1/templates/brief", "").StatusCode)
}
