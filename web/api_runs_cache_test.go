package web_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/teams"
)

type apiRunList struct {
	Runs []apiRun `json:"runs"`
}

// TestAPIRunsListIsNeverStale reads GET /api/v1/runs, which keeps encoded
// pages between requests, after changes the answering process did not
// make: a run changed in the database directly, on both databases.
func TestAPIRunsListIsNeverStale(t *testing.T) {
	t.Parallel()
	onBothDatabases(t, func(t *testing.T, a *app) {
		c := a.newAPIClient("fresh@example.com", teams.RoleMember)
		run := decode[apiRun](t, c.do(http.MethodPost, "/api/v1/runs", `{"plan":{"goal":"wait","steps":[{"name":"ok","kind":"approval","prompt":"ok?"}]}}`))
		require.Eventually(t, func() bool {
			l := decode[apiRunList](t, c.do(http.MethodGet, "/api/v1/runs", ""))
			return len(l.Runs) == 1 && l.Runs[0].Status == "waiting"
		}, 10*time.Second, 10*time.Millisecond)
		pages, _ := a.App.Runs.ListCache.Len()
		require.Equal(t, 1, pages, "the page is kept")
		hits, _, _ := a.App.Runs.ListCache.Stats()
		require.Equal(t, "waiting", decode[apiRunList](t, c.do(http.MethodGet, "/api/v1/runs", "")).Runs[0].Status)
		again, _, _ := a.App.Runs.ListCache.Stats()
		require.Equal(t, hits+1, again, "an unchanged page is answered from the cache")

		_, err := db.Exec(context.Background(), a.DB, `UPDATE runs SET goal = 'renamed behind its back' WHERE id = ?`, run.ID)
		require.NoError(t, err)
		l := decode[apiRunList](t, c.do(http.MethodGet, "/api/v1/runs", ""))
		require.Equal(t, "renamed behind its back", l.Runs[0].Goal)

		res := c.do(http.MethodGet, "/api/v1/runs?limit=1", "")
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Equal(t, "application/json", res.Header.Get("Content-Type"))
		pretty := c.do(http.MethodGet, "/api/v1/runs?limit=1&pretty", "")
		require.Contains(t, pretty.Body, "{\n  \"runs\": [\n    {\n      \"id\": ", "?pretty indents, as on every other answer")
		require.JSONEq(t, res.Body, pretty.Body)

		// A template filter longer than any slug is refused: filters are
		// the cache's keys.
		res = c.do(http.MethodGet, "/api/v1/runs?template="+strings.Repeat("x", 64), "")
		require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
		require.Equal(t, "validation_failed", apiErrorCode(t, res))
	})
}

// TestAPIRunsListSeesOtherProcesses runs two processes on one PostgreSQL
// database: a run created and cancelled through one is listed, as it is
// at once, by the other, which had kept the page from before.
func TestAPIRunsListSeesOtherProcesses(t *testing.T) {
	t.Parallel()
	shared := dbtest.PostgresURL(t)
	first, second := newAppAt(t, shared), newAppAt(t, shared)
	c := first.newAPIClient("twice@example.com", teams.RoleMember)
	other := &apiClient{t: t, app: second, key: c.key}

	require.Empty(t, decode[apiRunList](t, other.do(http.MethodGet, "/api/v1/runs", "")).Runs)
	for i := range 3 {
		run := decode[apiRun](t, c.do(http.MethodPost, "/api/v1/runs", fmt.Sprintf(`{"plan":{"goal":"run %d","steps":[{"name":"ok","kind":"approval","prompt":"ok?"}]}}`, i)))
		l := decode[apiRunList](t, other.do(http.MethodGet, "/api/v1/runs", ""))
		require.Len(t, l.Runs, i+1, "the other process lists the new run at once")
		require.Equal(t, run.ID, l.Runs[0].ID)

		require.Equal(t, http.StatusOK, c.do(http.MethodPost, fmt.Sprintf("/api/v1/runs/%d/cancel", run.ID), "").StatusCode)
		l = decode[apiRunList](t, other.do(http.MethodGet, "/api/v1/runs", ""))
		require.Equal(t, "cancelled", l.Runs[0].Status, "and its cancellation")
	}
}
