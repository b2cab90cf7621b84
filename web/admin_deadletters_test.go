package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/db"
)

// startBrokenRun starts a run whose second step cannot be claimed (its
// run's inputs are corrupt by the time the step is ready), and returns its
// id once the engine gave up on that step.
func startBrokenRun(t *testing.T, a *app, c *apiClient) int64 {
	t.Helper()
	res := c.do(http.MethodPost, "/api/v1/runs", `{"plan":{"goal":"broken","steps":[
		{"name":"gate","kind":"approval","prompt":"ok?"},
		{"name":"after","kind":"text","prompt":"done","needs":["gate"]}]}}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	id := decode[apiRun](t, res).ID
	c.waitRun(id, "waiting")
	_, err := db.Exec(context.Background(), a.DB, `UPDATE runs SET inputs = 'not json' WHERE id = ?`, id)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, c.do(http.MethodPost, fmt.Sprintf("/api/v1/runs/%d/steps/gate/approve", id), `{}`).StatusCode)
	waitDeadLetters(t, a, id, 1)
	return id
}

// waitDeadLetters waits until run id has n dead letters.
func waitDeadLetters(t *testing.T, a *app, runID int64, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		list, err := a.App.Runs.DeadLetters(context.Background(), 100)
		require.NoError(t, err)
		got := 0
		for _, d := range list {
			if d.RunID == runID {
				got++
			}
		}
		return got == n
	}, 30*time.Second, 20*time.Millisecond, "run %d never had %d dead letters", runID, n)
}

// A step the engine gives up on is a dead letter: listed with its error,
// retried (and given up on again while its data is still broken, then run
// once it is mended), or discarded, which fails its run; each audited.
func TestDeadLettersRetryAndDiscard(t *testing.T) {
	onBothDatabases(t, func(t *testing.T, a *app) {
		admin := a.client()
		admin.signUp("admin@example.com", password)
		c := &apiClient{t: t, app: a, key: a.keyFor("admin@example.com")}
		run := startBrokenRun(t, a, c)

		doc := admin.get("/admin/dead-letters").Doc(t)
		row := doc.Find(`[data-testid^="dead-letter-"]`)
		require.Equal(t, 1, row.Length())
		require.Contains(t, row.Text(), "runs: inputs of run")
		require.Contains(t, row.Text(), "after")
		job := row.Find(`input[name="job"]`).AttrOr("value", "")
		health := admin.get("/admin/health").Doc(t)
		require.Equal(t, "1", strings.TrimSpace(health.Find(`[data-testid="queue-dead"]`).Text()))
		require.Contains(t, admin.get("/metrics").Body, "nofx_dead_letters 1")

		// Retried while still broken: the engine gives up on it again.
		res := admin.submit("/admin/dead-letters", "/admin/dead-letters/retry", url.Values{"job": {job}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		require.Eventually(t, func() bool {
			list, err := a.App.Runs.DeadLetters(context.Background(), 10)
			require.NoError(t, err)
			return len(list) == 1 && fmt.Sprint(list[0].JobID) != job
		}, 30*time.Second, 20*time.Millisecond)
		// Mended, then retried: the run finishes.
		_, err := db.Exec(context.Background(), a.DB, `UPDATE runs SET inputs = '{}' WHERE id = ?`, run)
		require.NoError(t, err)
		res = admin.submit("/admin/dead-letters", "/admin/dead-letters/retry", url.Values{"all": {"1"}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		c.waitRun(run, "succeeded")

		// Another one, discarded: its run fails with the reason.
		other := startBrokenRun(t, a, c)
		res = admin.submit("/admin/dead-letters", "/admin/dead-letters/discard", url.Values{"all": {"1"}, "reason": {"corrupt inputs"}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		failed := c.waitRun(other, "failed")
		require.Equal(t, "failed", failed.Steps[1].Status)
		require.Contains(t, c.do(http.MethodGet, fmt.Sprintf("/api/v1/runs/%d", other), "").Body, "discarded by a site admin: corrupt inputs")
		require.Equal(t, 1, admin.get("/admin/dead-letters").Doc(t).Find(`[data-testid="dead-letters-empty"]`).Length())

		var actions []string
		require.NoError(t, db.Select(context.Background(), a.DB, &actions, `SELECT action FROM audit_log WHERE action LIKE 'dead_letter.%' ORDER BY id`))
		require.Equal(t, []string{"dead_letter.retry", "dead_letter.retry", "dead_letter.discard"}, actions)
		res = admin.submit("/admin/dead-letters", "/admin/dead-letters/retry", url.Values{})
		require.Equal(t, http.StatusSeeOther, res.StatusCode, "nothing selected: said on the page")
	})
}
