package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/apikeys"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/teams"
)

// apiClient calls the JSON API with an API key.
type apiClient struct {
	t   *testing.T
	app *app
	key string
}

// newAPIClient signs a user up and makes a key with role for their team.
func (a *app) newAPIClient(email string, role teams.Role) *apiClient {
	a.t.Helper()
	ctx := context.Background()
	a.client().signUp(email, password)
	user, err := auth.UserByEmail(ctx, a.DB, email)
	require.NoError(a.t, err)
	ms, err := teams.ForUser(ctx, a.DB, user.ID)
	require.NoError(a.t, err)
	_, secret, err := apikeys.Create(ctx, a.DB, ms[0].ID, "test", role, user.ID, nil)
	require.NoError(a.t, err)
	return &apiClient{t: a.t, app: a, key: secret}
}

func (c *apiClient) do(method, path, body string, header ...string) response {
	c.t.Helper()
	req, err := http.NewRequest(method, c.app.URL+path, strings.NewReader(body))
	require.NoError(c.t, err)
	req.Header.Set("Authorization", "Bearer "+c.key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return c.app.client().do(req)
}

type apiRun struct {
	ID           int64  `json:"id"`
	Status       string `json:"status"`
	Deployment   string `json:"deployment"`
	TriggeredBy  string `json:"triggered_by"`
	Goal         string `json:"goal"`
	CreatedBy    string `json:"created_by"`
	RerunOf      *int64 `json:"rerun_of"`
	StepsDone    int    `json:"steps_done"`
	StepsTotal   int    `json:"steps_total"`
	OutputTokens int64  `json:"output_tokens"`
	Steps        []struct {
		Name    string `json:"name"`
		Status  string `json:"status"`
		Output  string `json:"output"`
		Attempt int    `json:"attempt"`
	} `json:"steps"`
}

func decode[T any](t *testing.T, res response) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal([]byte(res.Body), &v), res.Body)
	return v
}

// waitRun polls GET /api/v1/runs/{id} until its status is one of want. The
// SSE stream is tested on its own; this keeps other tests simple.
func (c *apiClient) waitRun(id int64, want ...string) apiRun {
	c.t.Helper()
	changes, unsubscribe := c.app.App.Broker.Subscribe(id)
	defer unsubscribe()
	deadline := time.After(20 * time.Second)
	for {
		run := decode[apiRun](c.t, c.do(http.MethodGet, fmt.Sprintf("/api/v1/runs/%d", id), ""))
		if slices.Contains(want, run.Status) {
			return run
		}
		select {
		case <-changes:
		case <-deadline:
			c.t.Fatalf("run %d is %s, not %v", id, run.Status, want)
		}
	}
}

func TestAPICreateFromPrompt(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.newAPIClient("p@example.com", teams.RoleMember)

	res := c.do(http.MethodPost, "/api/v1/runs", `{"prompt":"Say hi to the team","provider":"simulated","model":"echo"}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	run := decode[apiRun](t, res)
	require.Positive(t, run.ID)
	require.Contains(t, []string{"queued", "running", "succeeded"}, run.Status, "a worker may start it at once")
	require.Equal(t, fmt.Sprintf("/api/v1/runs/%d", run.ID), res.Header.Get("Location"))
	require.Equal(t, "test", run.CreatedBy, "created by the API key")

	done := c.waitRun(run.ID, "succeeded", "failed")
	require.Equal(t, "succeeded", done.Status)
	require.Len(t, done.Steps, 1)
	require.Equal(t, "Say hi to the team", done.Steps[0].Output)
	require.Positive(t, done.OutputTokens)

	metrics := a.client().get("/metrics").Body
	require.Contains(t, metrics, `nofx_provider_calls_total{outcome="success",provider="simulated"} 1`)
	require.Contains(t, metrics, `nofx_provider_tokens_total{direction="output",provider="simulated"} 5`)
	require.Contains(t, metrics, `nofx_provider_call_duration_seconds_count{provider="simulated"} 1`)

	list := decode[struct {
		Runs []apiRun `json:"runs"`
	}](t, c.do(http.MethodGet, "/api/v1/runs?status=succeeded", ""))
	require.Len(t, list.Runs, 1)
	require.Equal(t, run.ID, list.Runs[0].ID)
}

func TestAPICreateFromPlanWithApproval(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.newAPIClient("plan@example.com", teams.RoleOwner)
	body := `{"plan":{"goal":"ship","steps":[
		{"name":"draft","kind":"llm","provider":"simulated","model":"echo","prompt":"About {{inputs.topic}}","needs":[],"max_attempts":3,"timeout":"60s"},
		{"name":"ok","kind":"approval","prompt":"Ship {{steps.draft.output}}?","needs":["draft"]},
		{"name":"final","kind":"text","prompt":"Shipped: {{steps.draft.output}}","needs":["ok"]}]},
		"inputs":{"topic":"otters"}}`
	res := c.do(http.MethodPost, "/api/v1/runs", body)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	run := decode[apiRun](t, res)
	c.waitRun(run.ID, "waiting")

	res = c.do(http.MethodPost, fmt.Sprintf("/api/v1/runs/%d/steps/draft/approve", run.ID), "")
	require.Equal(t, http.StatusConflict, res.StatusCode)
	require.Equal(t, "conflict", apiErrorCode(t, res))
	res = c.do(http.MethodPost, fmt.Sprintf("/api/v1/runs/%d/steps/nope/approve", run.ID), "")
	require.Equal(t, http.StatusNotFound, res.StatusCode)

	res = c.do(http.MethodPost, fmt.Sprintf("/api/v1/runs/%d/steps/ok/approve", run.ID), `{"comment":"go"}`)
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	done := c.waitRun(run.ID, "succeeded")
	require.Equal(t, "Shipped: About otters", done.Steps[2].Output)
}

func TestAPIRejectRetryCancelRerun(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.newAPIClient("rr@example.com", teams.RoleOwner)
	plan := `{"plan":{"goal":"gate","steps":[{"name":"gate","kind":"approval","prompt":"ok?"}]}}`
	run := decode[apiRun](t, c.do(http.MethodPost, "/api/v1/runs", plan))
	c.waitRun(run.ID, "waiting")

	res := c.do(http.MethodPost, fmt.Sprintf("/api/v1/runs/%d/steps/gate/reject", run.ID), `{"comment":"no"}`)
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	c.waitRun(run.ID, "failed")

	res = c.do(http.MethodPost, fmt.Sprintf("/api/v1/runs/%d/retry", run.ID), "")
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	c.waitRun(run.ID, "waiting")

	res = c.do(http.MethodPost, fmt.Sprintf("/api/v1/runs/%d/cancel", run.ID), "")
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	require.Equal(t, "cancelled", decode[apiRun](t, res).Status)
	res = c.do(http.MethodPost, fmt.Sprintf("/api/v1/runs/%d/cancel", run.ID), "")
	require.Equal(t, http.StatusConflict, res.StatusCode)

	res = c.do(http.MethodPost, fmt.Sprintf("/api/v1/runs/%d/rerun", run.ID), "")
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	again := decode[apiRun](t, res)
	require.NotNil(t, again.RerunOf)
	require.Equal(t, run.ID, *again.RerunOf)
}

func TestAPIIdempotencyKey(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.newAPIClient("idem@example.com", teams.RoleMember)
	body := `{"prompt":"once"}`
	first := c.do(http.MethodPost, "/api/v1/runs", body, "Idempotency-Key", "k-1")
	require.Equal(t, http.StatusCreated, first.StatusCode)
	second := c.do(http.MethodPost, "/api/v1/runs", body, "Idempotency-Key", "k-1")
	require.Equal(t, http.StatusCreated, second.StatusCode)
	require.Equal(t, "true", second.Header.Get("Idempotent-Replayed"))
	require.Equal(t, decode[apiRun](t, first).ID, decode[apiRun](t, second).ID)
	third := c.do(http.MethodPost, "/api/v1/runs", body, "Idempotency-Key", "k-2")
	require.NotEqual(t, decode[apiRun](t, first).ID, decode[apiRun](t, third).ID)
}

func TestAPIRunErrors(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.newAPIClient("err@example.com", teams.RoleMember)
	viewer := a.newAPIClient("viewer@example.com", teams.RoleViewer)
	stranger := a.newAPIClient("stranger@example.com", teams.RoleOwner)
	run := decode[apiRun](t, c.do(http.MethodPost, "/api/v1/runs", `{"prompt":"mine"}`))

	for _, tc := range []struct {
		name   string
		client *apiClient
		method string
		path   string
		body   string
		status int
		code   string
		field  string
	}{
		{"malformed json", c, "POST", "/api/v1/runs", `{"prompt":`, 400, "bad_request", ""},
		{"unknown field", c, "POST", "/api/v1/runs", `{"promt":"x"}`, 400, "bad_request", ""},
		{"nothing given", c, "POST", "/api/v1/runs", `{}`, 422, "validation_failed", "plan"},
		{"two given", c, "POST", "/api/v1/runs", `{"prompt":"x","plan":{"goal":"g","steps":[]}}`, 422, "validation_failed", "plan"},
		{"unknown template", c, "POST", "/api/v1/runs", `{"template":"nope"}`, 422, "validation_failed", "template"},
		{"bad plan", c, "POST", "/api/v1/runs", `{"plan":{"goal":"g","steps":[{"name":"a","kind":"llm","provider":"simulated","model":"echo","prompt":"x","needs":["a"]}]}}`, 422, "validation_failed", "steps[0].needs"},
		{"unknown provider", c, "POST", "/api/v1/runs", `{"prompt":"x","provider":"nowhere","model":"m"}`, 422, "validation_failed", "steps[0].provider"},
		{"provider without a key", c, "POST", "/api/v1/runs", `{"prompt":"x","provider":"anthropic","model":"claude-sonnet-4-5"}`, 422, "validation_failed", "steps[0].provider"},
		{"plan step without a key", c, "POST", "/api/v1/runs", `{"plan":{"goal":"g","steps":[{"name":"a","kind":"text","prompt":"x"},{"name":"b","kind":"llm","provider":"openai","model":"gpt-4o","prompt":"y"}]}}`, 422, "validation_failed", "steps[1].provider"},
		{"missing input", c, "POST", "/api/v1/runs", `{"plan":{"goal":"g","steps":[{"name":"a","kind":"text","prompt":"{{inputs.who}}"}]}}`, 422, "validation_failed", "inputs.who"},
		{"viewer cannot create", viewer, "POST", "/api/v1/runs", `{"prompt":"x"}`, 403, "forbidden", ""},
		{"viewer cannot cancel", viewer, "POST", "/api/v1/runs/999999/cancel", ``, 403, "forbidden", ""},
		{"another team's run", stranger, "GET", fmt.Sprintf("/api/v1/runs/%d", run.ID), ``, 404, "not_found", ""},
		{"another team's cancel", stranger, "POST", fmt.Sprintf("/api/v1/runs/%d/cancel", run.ID), ``, 404, "not_found", ""},
		{"malformed id", c, "GET", "/api/v1/runs/abc", ``, 404, "not_found", ""},
		{"bad filter", c, "GET", "/api/v1/runs?status=bogus&from=yesterday", ``, 422, "validation_failed", "status"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := tc.client.do(tc.method, tc.path, tc.body)
			require.Equal(t, tc.status, res.StatusCode, res.Body)
			require.Equal(t, tc.code, apiErrorCode(t, res))
			if tc.field != "" {
				body := decode[struct {
					Error struct {
						Fields map[string]string `json:"fields"`
					} `json:"error"`
				}](t, res)
				require.Contains(t, body.Error.Fields, tc.field)
			}
		})
	}
	list := decode[struct {
		Runs []apiRun `json:"runs"`
	}](t, c.do(http.MethodGet, "/api/v1/runs", ""))
	require.Len(t, list.Runs, 1, "no refused request created a run")
}

func TestAPIPagination(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.newAPIClient("page@example.com", teams.RoleMember)
	var ids []int64
	for i := range 5 {
		ids = append(ids, decode[apiRun](t, c.do(http.MethodPost, "/api/v1/runs", fmt.Sprintf(`{"prompt":"run %d"}`, i))).ID)
	}
	type page struct {
		Runs       []apiRun `json:"runs"`
		NextBefore int64    `json:"next_before"`
	}
	var seen []int64
	path := "/api/v1/runs?limit=2"
	for {
		p := decode[page](t, c.do(http.MethodGet, path, ""))
		for _, r := range p.Runs {
			seen = append(seen, r.ID)
		}
		if p.NextBefore == 0 {
			break
		}
		path = fmt.Sprintf("/api/v1/runs?limit=2&before=%d", p.NextBefore)
	}
	require.Equal(t, []int64{ids[4], ids[3], ids[2], ids[1], ids[0]}, seen, "newest first, each once")
}

func TestAPIEventStream(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.newAPIClient("sse@example.com", teams.RoleMember)
	run := decode[apiRun](t, c.do(http.MethodPost, "/api/v1/runs",
		`{"plan":{"goal":"stream","steps":[{"name":"talk","kind":"llm","provider":"simulated","model":"lorem","prompt":"tell me","options":{"latency_ms":800}}]}}`))

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/api/v1/runs/%d/events", a.URL, run.ID), nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+c.key)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))

	var events []string
	var streamed strings.Builder
	var lastID string
	sc := bufio.NewScanner(res.Body)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
			events = append(events, event)
		case strings.HasPrefix(line, "id: "):
			lastID = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: ") && event == "delta":
			var d struct{ Step, Text string }
			require.NoError(t, json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &d))
			require.Equal(t, "talk", d.Step)
			streamed.WriteString(d.Text)
		}
	}
	require.NoError(t, sc.Err(), "the stream ends by itself when the run finishes")
	require.Equal(t, "end", events[len(events)-1])
	require.Contains(t, events, "run.created")
	require.Contains(t, events, "step.started")
	require.Contains(t, events, "step.succeeded")
	require.Contains(t, events, "run.succeeded")
	require.Contains(t, events, "delta", "tokens stream while the step runs")

	done := c.waitRun(run.ID, "succeeded")
	require.True(t, strings.HasPrefix(done.Steps[0].Output, streamed.String()), "deltas are the start of the output")

	// Resuming after the last event sends nothing new but the end.
	res2 := c.do(http.MethodGet, fmt.Sprintf("/api/v1/runs/%d/events", run.ID), "", "Last-Event-ID", lastID)
	require.NotContains(t, res2.Body, "run.created")
	require.Contains(t, res2.Body, "event: end")
}
