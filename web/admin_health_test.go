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
)

// Admin → Health shows the database, this node, the queue with a waiting
// approval, and a lost node with its fix; /readyz?verbose=1 gives the same
// checks as JSON, and the plain /readyz stays as it was.
func TestHealthPageAndVerboseReadiness(t *testing.T) {
	onBothDatabases(t, func(t *testing.T, a *app) {
		admin := a.client()
		admin.signUp("admin@example.com", password)
		c := &apiClient{t: t, app: a, key: a.keyFor("admin@example.com")}
		res := c.do(http.MethodPost, "/api/v1/runs", `{"plan":{"goal":"gate","steps":[{"name":"gate","kind":"approval","prompt":"ok?"}]}}`)
		require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
		c.waitRun(decode[apiRun](t, res).ID, "waiting")
		// A node that stopped beating two minutes ago.
		old := db.Now().Add(-2 * time.Minute)
		_, err := db.Exec(context.Background(), a.DB, `INSERT INTO nodes (id, host, pid, version, workers, running, started_at, last_heartbeat_at)
			VALUES ('gone-1', 'gone-host', 4242, 'dev', 8, 1, ?, ?)`, old, old)
		require.NoError(t, err)

		res = admin.get("/admin/health")
		require.Equal(t, http.StatusOK, res.StatusCode)
		doc := res.Doc(t)
		require.Contains(t, doc.Find(`[data-testid="health-database"]`).Text(), a.App.DB.Dialect)
		latest, err := db.LatestMigration(a.App.DB.Dialect)
		require.NoError(t, err)
		require.Contains(t, doc.Find(`[data-testid="health-migrations"]`).Text(), fmt.Sprintf("version %d of %d", latest, latest))
		require.Equal(t, 1, doc.Find(`[data-testid="node-`+a.App.Heart.ID()+`"]`).Length(), "this node is listed")
		require.Equal(t, 1, doc.Find(`[data-testid="node-gone-1"] [data-testid="node-lost"]`).Length())
		problem := doc.Find(`[data-testid="problem-nodes"]`).Text()
		require.Contains(t, problem, "lost: gone-host (pid 4242")
		require.Contains(t, problem, "start it again")
		require.Contains(t, doc.Find(`[data-testid="health-queue"]`).Text(), "Waiting on a person1")
		require.Equal(t, 1, doc.Find(`[data-testid="flow-chart"] svg`).Length())
		require.Contains(t, doc.Find(`[data-testid="health-mail-status"]`).Text(), "kept in the outbox")

		res = admin.get("/readyz?verbose=1")
		require.Equal(t, http.StatusOK, res.StatusCode, "a lost node does not make this one unready")
		var verbose struct {
			Status string `json:"status"`
			Health string `json:"health"`
			Checks map[string]struct {
				Status  string `json:"status"`
				Message string `json:"message"`
				Fix     string `json:"fix"`
			} `json:"checks"`
		}
		require.NoError(t, json.Unmarshal([]byte(res.Body), &verbose))
		require.Equal(t, "ready", verbose.Status)
		require.Equal(t, "warn", verbose.Health)
		require.Equal(t, "warn", verbose.Checks["nodes"].Status)
		require.Equal(t, "ok", verbose.Checks["migrations"].Status)
		require.Equal(t, "ok", verbose.Checks["dead_letters"].Status)
		require.NotEmpty(t, verbose.Checks["nodes"].Fix)
		plain := admin.get("/readyz")
		require.NotContains(t, plain.Body, "nodes", "the plain check stays cheap")

		// Anyone sees each check's status, not what it says.
		res = a.client().get("/readyz?verbose=1")
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Contains(t, res.Body, `"nodes":{"name":"nodes","status":"warn","message":""}`)
		require.NotContains(t, res.Body, "gone-host", "no host names for the public")

	})
}
