package web_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/teams"
)

// Admin → Overview shows the instance's last 30 days (charts and totals),
// its busiest teams and slowest templates; Admin → Teams searches by name
// and owner email and pages through every team.
func TestAdminOverviewAndTeamsPages(t *testing.T) {
	onBothDatabases(t, func(t *testing.T, a *app) {
		ctx := context.Background()
		admin := a.client()
		admin.signUp("admin@example.com", password)
		c := &apiClient{t: t, app: a, key: a.keyFor("admin@example.com")}
		res := c.do(http.MethodPost, "/api/v1/templates/summary/deploy", `{"environment":"production"}`)
		require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
		for range 3 {
			res = c.do(http.MethodPost, "/api/v1/deployments/summary/production/runs", `{"inputs":{"text":"hello there"}}`)
			require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
			c.waitRun(decode[apiRun](t, res).ID, "succeeded")
		}
		res = c.do(http.MethodPost, "/api/v1/runs", `{"plan":{"goal":"fails","steps":[{"name":"s","kind":"llm","provider":"simulated","model":"echo",
			"prompt":"x","options":{"fail_rate":1,"fail_status":400}}]}}`)
		require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
		c.waitRun(decode[apiRun](t, res).ID, "failed")

		doc := admin.get("/admin").Doc(t)
		require.Contains(t, doc.Find(`[data-testid="activity-totals"]`).Text(), "4 runs started, 1 failed")
		for _, id := range []string{"runs-per-day", "failed-per-day", "cost-per-day"} {
			require.Equal(t, 1, doc.Find(`[data-testid="`+id+`"] svg`).Length(), id)
		}
		require.Contains(t, doc.Find(`[data-testid="busiest-teams"]`).Text(), "admin's team")
		require.Contains(t, doc.Find(`[data-testid="slowest-templates"]`).Text(), "summary")

		// 55 more teams, one owned by someone findable.
		for i := range 55 {
			_, err := teams.Create(ctx, a.DB, fmt.Sprintf("Team %02d", i), fmt.Sprintf("team-%02d", i), false)
			require.NoError(t, err)
		}
		a.client().signUp("findme@example.com", password)

		doc = admin.get("/admin/teams").Doc(t)
		first := doc.Find(`[data-testid="teams"] tbody tr`).Length()
		require.Equal(t, 50, first)
		next, ok := doc.Find(`[data-testid="teams-next"]`).Attr("href")
		require.True(t, ok)
		doc = admin.get(next).Doc(t)
		require.Equal(t, 57-50, doc.Find(`[data-testid="teams"] tbody tr`).Length(), "every team once, over two pages")
		require.Zero(t, doc.Find(`[data-testid="teams-next"]`).Length())

		doc = admin.get("/admin/teams?q=FINDME@").Doc(t)
		rows := doc.Find(`[data-testid="teams"] tbody tr`)
		require.Equal(t, 1, rows.Length())
		require.Contains(t, rows.Text(), "findme@example.com")
		doc = admin.get("/admin/teams?q=team+0").Doc(t)
		require.Equal(t, 10, doc.Find(`[data-testid="teams"] tbody tr`).Length(), "Team 00 to Team 09")
		doc = admin.get("/admin/teams?q=" + "100%25").Doc(t)
		require.Equal(t, 1, doc.Find(`[data-testid="teams-empty"]`).Length(), "a % is searched for, not a wildcard")
		require.Equal(t, http.StatusBadRequest, admin.get("/admin/teams?after=x").StatusCode)

		row := admin.get("/admin/teams?q=admin").Doc(t).Find(`[data-testid="teams"] tbody tr`)
		require.False(t, strings.Contains(row.Text(), "never"), "the admin's team ran today")
		var n int
		require.NoError(t, db.Get(ctx, a.DB, &n, `SELECT COUNT(*) FROM teams`))
		require.Equal(t, 57, n)
	})
}
