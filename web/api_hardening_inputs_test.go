package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/teams"
)

// onBothDatabases runs fn against an app on SQLite and one on PostgreSQL
// (skipped without NOFX_TEST_DATABASE_URL).
func onBothDatabases(t *testing.T, fn func(t *testing.T, a *app)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, newApp(t))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, newAppAt(t, dbtest.PostgresURL(t)))
	})
}

func TestAPIOutOfRangeNumbersAreRefused(t *testing.T) {
	t.Parallel()
	onBothDatabases(t, testAPIOutOfRangeNumbers)
}

func testAPIOutOfRangeNumbers(t *testing.T, a *app) {
	owner := a.newAPIClient("numbers@example.com", teams.RoleOwner)
	dep := decode[apiDeployed](t, owner.do(http.MethodPost, "/api/v1/templates/fan-out/deploy", `{"environment":"production"}`))
	require.NotEmpty(t, dep.WebhookSecret)
	llm := `"name":"s","kind":"llm","provider":"simulated","model":"echo","prompt":"p"`
	digits := strings.Repeat("9", 400)

	for _, tc := range []struct {
		name, path, body, field string
	}{
		{"prompt input", "/api/v1/runs", `{"prompt":"x","inputs":{"n":1e400}}`, "inputs.n"},
		{"negative prompt input", "/api/v1/runs", `{"prompt":"x","inputs":{"n":-1e400}}`, "inputs.n"},
		{"long digit string", "/api/v1/runs", `{"prompt":"x","inputs":{"n":` + digits + `}}`, "inputs.n"},
		{"nested input", "/api/v1/runs", `{"prompt":"x","inputs":{"o":{"a":[1,1e400]}}}`, "inputs.o.a[1]"},
		{"plan input", "/api/v1/runs", `{"plan":{"goal":"g","steps":[{` + llm + `}]},"inputs":{"n":1e400}}`, "inputs.n"},
		{"latency_ms", "/api/v1/runs", `{"plan":{"goal":"g","steps":[{` + llm + `,"options":{"latency_ms":1e400}}]}}`, "steps[0].options.latency_ms"},
		{"fail_rate", "/api/v1/runs", `{"plan":{"goal":"g","steps":[{` + llm + `,"options":{"fail_rate":-1e400}}]}}`, "steps[0].options.fail_rate"},
		{"fail_status", "/api/v1/runs", `{"plan":{"goal":"g","steps":[{` + llm + `,"options":{"fail_status":` + digits + `}}]}}`, "steps[0].options.fail_status"},
		{"max_attempts", "/api/v1/runs", `{"plan":{"goal":"g","steps":[{` + llm + `,"max_attempts":1e400}]}}`, "steps[0].max_attempts"},
		{"template input", "/api/v1/runs", `{"template":"fan-out","inputs":{"topic":"x","points":1e400}}`, "inputs.points"},
		{"deployment input", "/api/v1/deployments/fan-out/production/runs", `{"inputs":{"topic":"x","points":-1e400}}`, "inputs.points"},
		{"template default", "/api/v1/templates", `{"slug":"big","name":"Big","inputs":[{"name":"n","type":"number","default":1e400}],
			"plan":{"goal":"g","steps":[{"name":"s","kind":"text","prompt":"{{inputs.n}}"}]}}`, "inputs[0].default"},
		{"template plan option", "/api/v1/templates", `{"slug":"big2","name":"Big","plan":{"goal":"g","steps":[{` + llm + `,"options":{"latency_ms":1e400}}]}}`,
			"plan.steps[0].options.latency_ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := a.countRuns()
			res := owner.do(http.MethodPost, tc.path, tc.body)
			requireAPIError(t, res, http.StatusUnprocessableEntity, "validation_failed", tc.field)
			require.Equal(t, before, a.countRuns(), "nothing is written")
		})
	}

	before := a.countRuns()
	res := owner.do(http.MethodGet, "/api/v1/templates/big2", "")
	require.Equal(t, http.StatusNotFound, res.StatusCode, "the refused template was not saved")
	require.Equal(t, before, a.countRuns())

	// A webhook's number out of range is refused as the API refuses it.
	res = a.deliver(dep.Deployment.WebhookURL, dep.WebhookSecret, time.Now().Unix(), `{"topic":"x","points":1e400}`)
	requireAPIError(t, res, http.StatusUnprocessableEntity, "validation_failed", "inputs.points")
	require.Equal(t, before, a.countRuns())
}

func TestAPIAcceptedNumbersRunAndReadBack(t *testing.T) {
	t.Parallel()
	onBothDatabases(t, testAPIAcceptedNumbers)
}

func testAPIAcceptedNumbers(t *testing.T, a *app) {
	c := a.newAPIClient("exact@example.com", teams.RoleMember)
	res := c.do(http.MethodPost, "/api/v1/runs", `{"prompt":"{{inputs.n}} {{inputs.tiny}} {{inputs.max}}",
		"inputs":{"n":9007199254740993,"tiny":1e-400,"max":1.7976931348623157e308}}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	require.Contains(t, res.Body, `"n":9007199254740993`, "every digit is kept")
	run := c.waitRun(decode[apiRun](t, res).ID, "succeeded", "failed")
	require.Equal(t, "succeeded", run.Status)
	require.Equal(t, "9007199254740993 1e-400 1.7976931348623157e308", run.Steps[0].Output)
	got := c.do(http.MethodGet, fmt.Sprintf("/api/v1/runs/%d", run.ID), "")
	require.Contains(t, got.Body, `"n":9007199254740993`)
	require.Contains(t, got.Body, `"tiny":1e-400`)
}

func TestNewRunFormOutOfRangeInputs(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.client()
	c.signUp("form-numbers@example.com", password)

	res := c.submit("/runs/new", "/runs", url.Values{"prompt": {"n={{inputs.n}}"}, "inputs": {`{"n":1e400}`}})
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, res.Body)
	msg := res.Doc(t).Find(`[data-testid=error-inputs]`).Text()
	require.Contains(t, msg, "n:")
	require.Contains(t, msg, "out of range")
	require.Zero(t, countRuns(t, a))

	// The form keeps every digit, as the API does.
	id := c.startRun(url.Values{"prompt": {"n={{inputs.n}}"}, "inputs": {`{"n":9007199254740993}`}})
	doc := c.waitRunPage(id, "succeeded")
	require.Contains(t, doc.Text(), "n=9007199254740993")
}

func TestAPIIdempotencyKeyReusedWithAnotherBody(t *testing.T) {
	t.Parallel()
	onBothDatabases(t, testAPIIdempotencyKeyReused)
}

func testAPIIdempotencyKeyReused(t *testing.T, a *app) {
	owner := a.newAPIClient("reuse@example.com", teams.RoleOwner)
	res := owner.do(http.MethodPost, "/api/v1/templates/summary/deploy", `{"environment":"production"}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)

	for _, tc := range []struct {
		name, path, body, other string
	}{
		{"prompt", "/api/v1/runs", `{"prompt":"once"}`, `{"prompt":"twice"}`},
		{"prompt's model", "/api/v1/runs", `{"prompt":"once","model":"echo"}`, `{"prompt":"once","model":"lorem"}`},
		{"plan inputs", "/api/v1/runs", `{"plan":{"goal":"g","steps":[{"name":"s","kind":"text","prompt":"{{inputs.n}}"}]},"inputs":{"n":1}}`,
			`{"plan":{"goal":"g","steps":[{"name":"s","kind":"text","prompt":"{{inputs.n}}"}]},"inputs":{"n":2}}`},
		{"template", "/api/v1/runs", `{"template":"summary","inputs":{"text":"one"}}`, `{"template":"summary","inputs":{"text":"two"}}`},
		{"deployment", "/api/v1/deployments/summary/production/runs", `{"inputs":{"text":"one"}}`, `{"inputs":{"text":"two"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "key-" + strings.ReplaceAll(tc.name, " ", "-")
			first := owner.do(http.MethodPost, tc.path, tc.body, "Idempotency-Key", key)
			require.Equal(t, http.StatusCreated, first.StatusCode, first.Body)
			before := a.countRuns()

			reused := owner.do(http.MethodPost, tc.path, tc.other, "Idempotency-Key", key)
			requireAPIError(t, reused, http.StatusUnprocessableEntity, "idempotency_key_reused", "")
			f := decode[apiFailure](t, reused)
			require.Contains(t, f.Error.Message, "Idempotency-Key")
			require.Equal(t, before, a.countRuns(), "nothing is written")

			again := owner.do(http.MethodPost, tc.path, tc.body, "Idempotency-Key", key)
			require.Equal(t, http.StatusCreated, again.StatusCode, again.Body)
			require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
			require.Equal(t, decode[apiRun](t, first).ID, decode[apiRun](t, again).ID)
			require.Equal(t, before, a.countRuns())
		})
	}
}

func TestTemplateRunFormSentAgainWithOtherValues(t *testing.T) {
	t.Parallel()
	a, c := newTemplateClient(t, "form-reuse@example.com")
	form := formValues(c.get("/templates/summary/run").Doc(t).Find(`[data-testid=template-run-form]`))
	key := form.Get("idempotency_key")
	require.NotEmpty(t, key)
	form.Set("inputs.text", "First text.")
	res := c.postForm("/templates/summary/run", form)
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	location := res.Header.Get("Location")

	// Back, edit, send again: the form says so, and a new key lets it start.
	form.Set("inputs.text", "Second text.")
	res = c.postForm("/templates/summary/run", form)
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, res.Body)
	doc := res.Doc(t)
	require.Contains(t, doc.Find(`[data-testid=form-error]`).Text(), "already started a run")
	require.Equal(t, "Second text.", doc.Find(`#input-text`).Text(), "what was typed is kept")
	again := formValues(doc.Find(`[data-testid=template-run-form]`))
	require.NotEqual(t, key, again.Get("idempotency_key"), "a fresh key")
	require.Equal(t, 1, countRuns(t, a))

	res = c.postForm("/templates/summary/run", again)
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	require.NotEqual(t, location, res.Header.Get("Location"))
	require.Equal(t, 2, countRuns(t, a))
}
