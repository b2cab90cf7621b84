package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/pricing"
	"github.com/nofxhq/nofx/internal/teams"
)

type apiComparison struct {
	ID         int64  `json:"id"`
	RunID      int64  `json:"run_id"`
	Step       string `json:"step"`
	Status     string `json:"status"`
	Preferred  string `json:"preferred"`
	Original   apiCandidate
	Candidates []apiCandidate `json:"candidates"`
}

type apiCandidate struct {
	Name       string   `json:"name"`
	Provider   string   `json:"provider"`
	Model      string   `json:"model"`
	Status     string   `json:"status"`
	Output     string   `json:"output"`
	CostMicros int64    `json:"cost_micros"`
	CostDiff   int64    `json:"cost_diff_micros"`
	CostRatio  *float64 `json:"cost_ratio"`
	InputTok   int64    `json:"input_tokens"`
}

// waitComparison polls a comparison until its replay finished.
func (c *apiClient) waitComparison(id int64) apiComparison {
	c.t.Helper()
	var out apiComparison
	require.Eventually(c.t, func() bool {
		res := c.do(http.MethodGet, fmt.Sprintf("/api/v1/comparisons/%d", id), "")
		require.Equal(c.t, http.StatusOK, res.StatusCode, res.Body)
		require.NoError(c.t, json.Unmarshal([]byte(res.Body), &out))
		return out.Status == "succeeded" || out.Status == "failed"
	}, 30*time.Second, 20*time.Millisecond, "comparison %d never finished", id)
	return out
}

// A finished LLM step is replayed on other models as real steps: outputs,
// tokens and costs against the original's, the original untouched, the
// candidates' spend counted (no run counted), one preferred output, and
// the comparison deleted; bad requests are refused, each saying why.
func TestAPICompareStep(t *testing.T) {
	onBothDatabases(t, func(t *testing.T, a *app) {
		ctx := context.Background()
		require.NoError(t, pricing.Set(ctx, a.DB, "simulated", "echo", 1_000_000_000, 1_000_000_000, 0))  // $1,000 per Mtok
		require.NoError(t, pricing.Set(ctx, a.DB, "simulated", "lorem", 2_000_000_000, 2_000_000_000, 0)) // twice that
		c := a.newAPIClient("owner@example.com", teams.RoleOwner)
		res := c.do(http.MethodPost, "/api/v1/runs", `{"plan":{"goal":"g","steps":[
			{"name":"draft","kind":"llm","provider":"simulated","model":"echo","prompt":"say {{inputs.word}} twice"},
			{"name":"note","kind":"text","prompt":"done","needs":["draft"]}]},"inputs":{"word":"hello"}}`)
		require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
		runID := decode[apiRun](t, res).ID
		orig := c.waitRun(runID, "succeeded")

		path := fmt.Sprintf("/api/v1/runs/%d/steps/draft/compare", runID)
		res = c.do(http.MethodPost, path, `{"candidates":[{"provider":"simulated","model":"lorem"},{"provider":"simulated","model":"echo"}]}`)
		require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
		id := decode[apiComparison](t, res).ID
		cmp := c.waitComparison(id)
		require.Equal(t, "succeeded", cmp.Status)
		require.Equal(t, "say hello twice", cmp.Original.Output)
		require.Len(t, cmp.Candidates, 2)
		require.Equal(t, "lorem", cmp.Candidates[0].Model)
		require.NotEmpty(t, cmp.Candidates[0].Output)
		require.Equal(t, "say hello twice", cmp.Candidates[1].Output, "echo replays the rendered prompt exactly")
		require.Equal(t, cmp.Original.InputTok, cmp.Candidates[1].InputTok)
		require.Equal(t, cmp.Original.CostMicros, cmp.Candidates[1].CostMicros)
		require.NotNil(t, cmp.Candidates[1].CostRatio)
		require.InDelta(t, 1.0, *cmp.Candidates[1].CostRatio, 0.0001)
		require.Equal(t, cmp.Candidates[0].CostMicros-cmp.Original.CostMicros, cmp.Candidates[0].CostDiff)

		after := c.waitRun(runID, "succeeded")
		require.Equal(t, orig.Steps, after.Steps, "the original run is left as it was")
		list := decode[struct {
			Runs []apiRun `json:"runs"`
		}](t, c.do(http.MethodGet, "/api/v1/runs", ""))
		require.Len(t, list.Runs, 1, "the replay is no run of the list")
		b := decode[billingResponse](t, c.do(http.MethodGet, "/api/v1/billing", ""))
		require.Equal(t, int64(1), b.Usage.Runs, "a comparison counts no run")
		var spent int64
		require.NoError(t, db.Get(ctx, a.DB, &spent, `SELECT spend_micros FROM team_usage`))
		require.Equal(t, cmp.Original.CostMicros+cmp.Candidates[0].CostMicros+cmp.Candidates[1].CostMicros, spent, "the candidates' spend counts")

		res = c.do(http.MethodPost, fmt.Sprintf("/api/v1/comparisons/%d/prefer", id), `{"preferred":"c1"}`)
		require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
		require.Equal(t, "c1", decode[apiComparison](t, res).Preferred)
		res = c.do(http.MethodPost, fmt.Sprintf("/api/v1/comparisons/%d/prefer", id), `{"preferred":"c9"}`)
		require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)

		for _, tc := range []struct {
			path, body string
			status     int
			contains   string
		}{
			{fmt.Sprintf("/api/v1/runs/%d/steps/note/compare", runID), `{"candidates":[{"provider":"simulated","model":"echo"}]}`, 409, "Only LLM steps"},
			{fmt.Sprintf("/api/v1/runs/%d/steps/nope/compare", runID), `{"candidates":[{"provider":"simulated","model":"echo"}]}`, 404, ""},
			{path, `{"candidates":[]}`, 422, "Give 1 to 4"},
			{path, `{"candidates":[{"provider":"simulated","model":"a"},{"provider":"simulated","model":"b"},{"provider":"simulated","model":"c"},{"provider":"simulated","model":"d"},{"provider":"simulated","model":"e"}]}`, 422, "Give 1 to 4"},
			{path, `{"candidates":[{"provider":"nowhere","model":"x"}]}`, 422, `candidates[0].provider`},
			{path, `{"candidates":[{"provider":"simulated","model":""}]}`, 422, `candidates[0].model`},
		} {
			res := c.do(http.MethodPost, tc.path, tc.body)
			require.Equal(t, tc.status, res.StatusCode, "%s %s: %s", tc.path, tc.body, res.Body)
			require.Contains(t, res.Body, tc.contains)
		}

		other := a.newAPIClient("other@example.com", teams.RoleOwner)
		require.Equal(t, http.StatusNotFound, other.do(http.MethodGet, fmt.Sprintf("/api/v1/comparisons/%d", id), "").StatusCode, "another team's")
		require.Equal(t, http.StatusNotFound, other.do(http.MethodPost, path, `{"candidates":[{"provider":"simulated","model":"echo"}]}`).StatusCode)

		// A prompt whose rendered text has braces (a template language in an
		// input) is replayed as written, not read as a template again.
		res = c.do(http.MethodPost, "/api/v1/runs", `{"plan":{"goal":"g","steps":[
			{"name":"t","kind":"llm","provider":"simulated","model":"echo","prompt":"translate {{inputs.code}}"}]},"inputs":{"code":"<p>{{ message }}</p>"}}`)
		require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
		braces := decode[apiRun](t, res).ID
		c.waitRun(braces, "succeeded")
		res = c.do(http.MethodPost, fmt.Sprintf("/api/v1/runs/%d/steps/t/compare", braces), `{"candidates":[{"provider":"simulated","model":"echo","x":1}]}`)
		require.Equal(t, http.StatusBadRequest, res.StatusCode, "unknown fields are refused")
		res = c.do(http.MethodPost, fmt.Sprintf("/api/v1/runs/%d/steps/t/compare", braces), `{"candidates":[{"provider":"simulated","model":"echo"}]}`)
		require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
		withBraces := c.waitComparison(decode[apiComparison](t, res).ID)
		require.Equal(t, "translate <p>{{ message }}</p>", withBraces.Candidates[0].Output)

		var replayID int64
		require.NoError(t, db.Get(ctx, a.DB, &replayID, `SELECT replay_run_id FROM comparisons WHERE id = ?`, withBraces.ID))
		res = c.do(http.MethodPost, fmt.Sprintf("/api/v1/runs/%d/rerun", replayID), "")
		require.Equal(t, http.StatusConflict, res.StatusCode, "a replay is not rerun as a run: %s", res.Body)
		res = c.do(http.MethodPost, fmt.Sprintf("/api/v1/runs/%d/steps/c1/compare", replayID), `{"candidates":[{"provider":"simulated","model":"echo"}]}`)
		require.Equal(t, http.StatusConflict, res.StatusCode, "nor compared: %s", res.Body)

		// Deleting a comparison whose candidate still runs cancels it first.
		res = c.do(http.MethodPost, "/api/v1/runs", `{"plan":{"goal":"g","steps":[{"name":"s","kind":"llm","provider":"simulated","model":"echo",
			"prompt":"slow","options":{"latency_ms":3000}}]}}`)
		require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
		slow := decode[apiRun](t, res).ID
		c.waitRun(slow, "succeeded")
		res = c.do(http.MethodPost, fmt.Sprintf("/api/v1/runs/%d/steps/s/compare", slow), `{"candidates":[{"provider":"simulated","model":"echo"}]}`)
		require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
		running := decode[apiComparison](t, res).ID
		require.Equal(t, http.StatusNoContent, c.do(http.MethodDelete, fmt.Sprintf("/api/v1/comparisons/%d", running), "").StatusCode)
		var replays int
		require.NoError(t, db.Get(ctx, a.DB, &replays, `SELECT COUNT(*) FROM runs r JOIN comparisons c ON c.replay_run_id = r.id WHERE c.id = ?`, running))
		require.Zero(t, replays)

		require.Equal(t, http.StatusNoContent, c.do(http.MethodDelete, fmt.Sprintf("/api/v1/comparisons/%d", id), "").StatusCode)
		require.Equal(t, http.StatusNotFound, c.do(http.MethodGet, fmt.Sprintf("/api/v1/comparisons/%d", id), "").StatusCode)
		var actions []string
		require.NoError(t, db.Select(ctx, a.DB, &actions, `SELECT action FROM audit_log WHERE action LIKE 'comparison.%' ORDER BY id`))
		require.Equal(t, []string{"comparison.create", "comparison.prefer", "comparison.create", "comparison.create", "comparison.delete", "comparison.delete"}, actions)
	})
}

// A compare request retried with its Idempotency-Key gets the first
// comparison back and replays nothing again (a replay spends money); the
// key with other candidates is refused.
func TestAPICompareStepIsIdempotent(t *testing.T) {
	onBothDatabases(t, func(t *testing.T, a *app) {
		c := a.newAPIClient("retrier@example.com", teams.RoleOwner)
		res := c.do(http.MethodPost, "/api/v1/runs", `{"plan":{"goal":"g","steps":[
			{"name":"draft","kind":"llm","provider":"simulated","model":"echo","prompt":"say hello"}]}}`)
		require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
		runID := decode[apiRun](t, res).ID
		c.waitRun(runID, "succeeded")

		path := fmt.Sprintf("/api/v1/runs/%d/steps/draft/compare", runID)
		body := `{"candidates":[{"provider":"simulated","model":"lorem"}]}`
		first := c.do(http.MethodPost, path, body, "Idempotency-Key", "compare-once")
		require.Equal(t, http.StatusCreated, first.StatusCode, first.Body)
		require.Empty(t, first.Header.Get("Idempotent-Replayed"))
		again := c.do(http.MethodPost, path, body, "Idempotency-Key", "compare-once")
		require.Equal(t, http.StatusCreated, again.StatusCode, again.Body)
		require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
		require.Equal(t, decode[apiComparison](t, first).ID, decode[apiComparison](t, again).ID, "the first comparison, not a second")
		require.Equal(t, first.Header.Get("Location"), again.Header.Get("Location"))

		var comparisons, replays int
		require.NoError(t, db.Get(context.Background(), a.DB, &comparisons, `SELECT COUNT(*) FROM comparisons WHERE run_id = ?`, runID))
		require.NoError(t, db.Get(context.Background(), a.DB, &replays, `SELECT COUNT(*) FROM runs WHERE replay = ?`, true))
		require.Equal(t, 1, comparisons)
		require.Equal(t, 1, replays, "nothing was replayed twice")

		reused := c.do(http.MethodPost, path, `{"candidates":[{"provider":"simulated","model":"echo"}]}`, "Idempotency-Key", "compare-once")
		requireAPIError(t, reused, http.StatusUnprocessableEntity, "idempotency_key_reused", "")
		other := c.do(http.MethodPost, path, body)
		require.Equal(t, http.StatusCreated, other.StatusCode, "without a key each request compares anew")
		require.NotEqual(t, decode[apiComparison](t, first).ID, decode[apiComparison](t, other).ID)
	})
}
