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
	"github.com/nofxhq/nofx/internal/pricing"
	"github.com/nofxhq/nofx/internal/teams"
)

func TestTeamProviderKeys(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.client()
	c.signUp("keys@example.com", password)
	ctx := context.Background()
	user, err := auth.UserByEmail(ctx, a.DB, "keys@example.com")
	require.NoError(t, err)
	ms, err := teams.ForUser(ctx, a.DB, user.ID)
	require.NoError(t, err)

	doc := c.get("/team").Doc(t)
	require.Equal(t, 1, doc.Find(`[data-testid=no-provider-keys]`).Length())

	res := c.submit("/team", "/team/keys", url.Values{"provider": {"anthropic"}, "key": {"bad"}})
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.NotEmpty(t, res.Doc(t).Find(`[data-testid=error-key]`).Text())

	res = c.submit("/team", "/team/keys", url.Values{"provider": {"anthropic"}, "key": {"sk-ant-api03-team-secret-4321"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	page := c.get("/team")
	require.NotContains(t, page.Body, "team-secret", "a saved key is never shown again")
	require.Contains(t, page.Doc(t).Find(`[data-testid=provider-keys]`).Text(), "…4321")

	key, err := a.App.Keys.Resolve(ctx, ms[0].ID, "anthropic")
	require.NoError(t, err)
	require.Equal(t, "sk-ant-api03-team-secret-4321", key)

	res = c.submit("/team", "/team/keys/anthropic/delete", url.Values{})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	key, err = a.App.Keys.Resolve(ctx, ms[0].ID, "anthropic")
	require.NoError(t, err)
	require.Empty(t, key)
	require.True(t, strings.Contains(c.get("/team").Body, "no-provider-keys"))
}

func TestBillingShowsMonthTotals(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	require.NoError(t, pricing.Set(context.Background(), a.DB, "simulated", "echo", 1_000_000_000, 1_000_000_000, 0)) // $1,000 per Mtok: visible cents
	c := a.newAPIClient("bill@example.com", teams.RoleOwner)
	run := decode[apiRun](t, c.do(http.MethodPost, "/api/v1/runs", `{"prompt":"one two three"}`))
	done := c.waitRun(run.ID, "succeeded")

	browser := a.client()
	require.Equal(t, http.StatusSeeOther, browser.logIn("bill@example.com", password).StatusCode)
	doc := browser.get("/billing").Doc(t)
	require.Contains(t, doc.Find(`[data-testid=month-totals]`).Text(), "1 (1 succeeded, 0 failed)")
	require.Equal(t, "$0.006", strings.TrimSpace(doc.Find(`[data-testid=month-cost]`).Text()))
	require.Equal(t, int64(6000), decode[struct {
		CostMicros int64 `json:"cost_micros"`
	}](t, c.do(http.MethodGet, fmt.Sprintf("/api/v1/runs/%d", done.ID), "")).CostMicros)
}

func TestRunsListSortsByCost(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	require.NoError(t, pricing.Set(context.Background(), a.DB, "simulated", "echo", 1_000_000_000, 1_000_000_000, 0))
	c := a.newAPIClient("sort@example.com", teams.RoleOwner)
	var ids []int64
	for _, prompt := range []string{"two words", "a much longer prompt with many more words in it", "three words here"} {
		run := decode[apiRun](t, c.do(http.MethodPost, "/api/v1/runs", fmt.Sprintf(`{"prompt":%q}`, prompt)))
		c.waitRun(run.ID, "succeeded")
		ids = append(ids, run.ID)
	}
	browser := a.client()
	require.Equal(t, http.StatusSeeOther, browser.logIn("sort@example.com", password).StatusCode)
	doc := browser.get("/runs?sort=cost&limit=2").Doc(t)
	rows := doc.Find(`[data-testid=runs-table] tbody tr`)
	require.Equal(t, 2, rows.Length())
	require.Equal(t, fmt.Sprintf("run-row-%d", ids[1]), rows.First().AttrOr("data-testid", ""), "the most expensive run first")
	require.Equal(t, "$0.02", strings.TrimSpace(rows.First().Find(`[data-testid=run-cost]`).Text()))
	next := doc.Find(`[data-testid=next-page]`).AttrOr("href", "")
	require.Contains(t, next, "sort=cost")
	require.Contains(t, next, "before_cost=")
	last := browser.get(next).Doc(t).Find(`[data-testid=runs-table] tbody tr`)
	require.Equal(t, 1, last.Length())
	require.Equal(t, fmt.Sprintf("run-row-%d", ids[0]), last.First().AttrOr("data-testid", ""))
	require.Equal(t, http.StatusUnprocessableEntity, browser.get("/runs?sort=price").StatusCode)
}

// TestTeamPagesShareTheirTabs checks that every team page shows the same
// tabs, those the viewer's role may open, with the current one marked.
func TestTeamPagesShareTheirTabs(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := context.Background()
	owner := a.client()
	owner.signUp("tabs-owner@example.com", password)
	ownerUser, err := auth.UserByEmail(ctx, a.DB, "tabs-owner@example.com")
	require.NoError(t, err)
	ms, err := teams.ForUser(ctx, a.DB, ownerUser.ID)
	require.NoError(t, err)
	viewer := a.client()
	viewer.signUp("tabs-viewer@example.com", password)
	viewerUser, err := auth.UserByEmail(ctx, a.DB, "tabs-viewer@example.com")
	require.NoError(t, err)
	require.NoError(t, teams.AddMember(ctx, a.DB, ms[0].ID, viewerUser.ID, teams.RoleViewer))
	viewer.submit("/runs", "/teams/switch", url.Values{"team_id": {fmt.Sprint(ms[0].ID)}})

	tabs := func(c *client, path string) (labels []string, current string) {
		t.Helper()
		res := c.get(path)
		require.Equal(t, http.StatusOK, res.StatusCode, path)
		doc := res.Doc(t)
		require.Equal(t, 1, doc.Find(`[data-testid=team-tabs]`).Length(), "%s has the team tabs", path)
		doc.Find(`[data-testid=team-tabs] a`).Each(func(_ int, a *goquery.Selection) {
			labels = append(labels, a.Text())
			if a.AttrOr("aria-current", "") == "page" {
				current = a.Text()
			}
		})
		return labels, current
	}
	all := []string{"Overview", "Members", "Invitations", "API keys", "Audit log"}
	for path, name := range map[string]string{"/team": "Overview", "/team/members": "Members", "/team/invites": "Invitations",
		"/team/api-keys": "API keys", "/team/audit": "Audit log"} {
		labels, current := tabs(owner, path)
		require.Equal(t, all, labels, path)
		require.Equal(t, name, current, path)
	}
	for path, name := range map[string]string{"/team": "Overview", "/team/members": "Members", "/team/audit": "Audit log"} {
		labels, current := tabs(viewer, path)
		require.Equal(t, []string{"Overview", "Members", "Audit log"}, labels, "a viewer sees only the pages they may open (%s)", path)
		require.Equal(t, name, current, path)
	}
}
