package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/teams"
)

// teamCount is how many teams the instance has.
func teamCount(t *testing.T, a *app) int {
	t.Helper()
	var n int
	require.NoError(t, db.Get(context.Background(), a.DB, &n, `SELECT COUNT(*) FROM teams`))
	return n
}

func TestCreateTeamPage(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := context.Background()
	c := a.client()
	c.signUp("maker@example.com", password)
	user, err := auth.UserByEmail(ctx, a.DB, "maker@example.com")
	require.NoError(t, err)

	// The link is in the top bar and on the team page.
	require.Equal(t, "/teams/new", c.get("/runs").Doc(t).Find(`[data-testid=new-team-link]`).AttrOr("href", ""))
	require.Equal(t, "/teams/new", c.get("/team").Doc(t).Find(`[data-testid=new-team-button]`).AttrOr("href", ""))
	page := c.get("/teams/new")
	require.Equal(t, http.StatusOK, page.StatusCode)
	require.Equal(t, 1, page.Doc(t).Find(`[data-testid=new-team-form] input[name=name]`).Length())

	// Bad names come back next to the field, and write nothing.
	before := teamCount(t, a)
	for _, tc := range []struct{ name, value, want string }{
		{"empty", "", "Enter a name"},
		{"blank", "   ", "Enter a name"},
		{"too long", strings.Repeat("n", 101), "at most 100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := c.submit("/teams/new", "/teams", url.Values{"name": {tc.value}})
			require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
			doc := res.Doc(t)
			field := doc.Find(`[data-testid=new-team-form] .field-invalid`)
			require.Equal(t, 1, field.Find(`input[name=name][aria-invalid=true]`).Length(), "the field is marked")
			require.Contains(t, field.Find(`[data-testid=error-name]`).Text(), tc.want, "the error sits next to the field")
			require.Equal(t, tc.value, doc.Find(`input[name=name]`).AttrOr("value", "?"), "what was typed is kept")
		})
	}
	require.Equal(t, before, teamCount(t, a))

	// A good name creates the team and makes it the current one.
	res := c.submit("/teams/new", "/teams", url.Values{"name": {"  Night Shift "}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	require.Equal(t, "/team", res.Header.Get("Location"))
	doc := c.get("/team").Doc(t)
	require.Equal(t, `Team Night Shift created.`, strings.TrimSpace(doc.Find(`[data-testid=flash]`).Text()))
	require.Equal(t, "Night Shift", strings.TrimSpace(doc.Find("h1").Text()))
	require.Contains(t, doc.Find(`main`).Text(), "night-shift")
	require.Contains(t, doc.Find(`[data-testid=members]`).Text(), "maker@example.com")
	require.Contains(t, doc.Find(`[data-testid=members]`).Text(), "owner")

	// The switcher lists both teams, the new one selected.
	switcher := doc.Find(`[data-testid=team-switcher] option`)
	require.Equal(t, 2, switcher.Length())
	require.Equal(t, "maker's team", strings.TrimSpace(switcher.First().Text()))
	require.Equal(t, "Night Shift", strings.TrimSpace(doc.Find(`[data-testid=team-switcher] option[selected]`).Text()))

	// The new team has the starter templates, and its audit log the creation.
	require.Equal(t, 3, c.get("/templates").Doc(t).Find(`[data-testid=templates-table] tbody tr`).Length())
	created, err := teams.BySlug(ctx, a.DB, "night-shift")
	require.NoError(t, err)
	entries, _, err := audit.List(ctx, a.DB, created.ID, audit.Filter{Action: "team.create"})
	require.NoError(t, err)
	require.Len(t, entries, 1)
	require.Equal(t, user.ID, *entries[0].ActorUserID)

	// The same name again gets a slug of its own.
	res = c.submit("/teams/new", "/teams", url.Values{"name": {"Night Shift"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	ms, err := teams.ForUser(ctx, a.DB, user.ID)
	require.NoError(t, err)
	require.Len(t, ms, 3)
	require.NotEqual(t, ms[1].Slug, ms[2].Slug)
}

// sessionAPI posts JSON to the API with c's session cookie and CSRF token.
func sessionAPI(c *client, path, body string) response {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.app.URL+path, strings.NewReader(body))
	require.NoError(c.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", c.csrf("/account"))
	return c.do(req)
}

func TestAPICreateTeam(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := context.Background()
	c := a.client()
	c.signUp("api-teams@example.com", password)
	user, err := auth.UserByEmail(ctx, a.DB, "api-teams@example.com")
	require.NoError(t, err)
	personal, err := teams.ForUser(ctx, a.DB, user.ID)
	require.NoError(t, err)

	res := sessionAPI(c, "/api/v1/teams", `{"name":"Platform"}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	var out struct {
		Team struct {
			ID       int64  `json:"id"`
			Name     string `json:"name"`
			Slug     string `json:"slug"`
			Personal bool   `json:"personal"`
			Plan     string `json:"plan"`
		} `json:"team"`
	}
	require.NoError(t, json.Unmarshal([]byte(res.Body), &out))
	require.NotZero(t, out.Team.ID)
	require.Equal(t, "Platform", out.Team.Name)
	require.Equal(t, "platform", out.Team.Slug)
	require.False(t, out.Team.Personal)
	m, err := teams.MembershipOf(ctx, a.DB, out.Team.ID, user.ID)
	require.NoError(t, err)
	require.Equal(t, teams.RoleOwner, m.Role)
	require.Contains(t, c.get("/api/v1/me").Body, personal[0].Slug, "the API leaves the session's current team as it is")

	// Bad names are 422 with the field named, and write nothing.
	before := teamCount(t, a)
	for _, body := range []string{`{"name":""}`, `{"name":"  "}`, `{}`, `{"name":"` + strings.Repeat("x", 101) + `"}`} {
		res := sessionAPI(c, "/api/v1/teams", body)
		require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, body)
		var e struct {
			Error struct {
				Code   string            `json:"code"`
				Fields map[string]string `json:"fields"`
			} `json:"error"`
		}
		require.NoError(t, json.Unmarshal([]byte(res.Body), &e))
		require.Equal(t, "validation_failed", e.Error.Code)
		require.NotEmpty(t, e.Error.Fields["name"], body)
	}
	res = sessionAPI(c, "/api/v1/teams", `{"name":"x","plan":"pro"}`)
	require.Equal(t, http.StatusBadRequest, res.StatusCode, "unknown fields are refused")
	require.Equal(t, before, teamCount(t, a))

	// An API key acts inside one team: it cannot create teams.
	key := a.newAPIClient("key-holder@example.com", teams.RoleOwner)
	res = key.do(http.MethodPost, "/api/v1/teams", `{"name":"From a key"}`)
	require.Equal(t, http.StatusForbidden, res.StatusCode, res.Body)
	require.Equal(t, "forbidden", apiErrorCode(t, res))
	require.Contains(t, res.Body, "API keys")
	require.Equal(t, before+1, teamCount(t, a), "only the key holder's personal team was added")

	// Without a session or a key: 401.
	req, err := http.NewRequest(http.MethodPost, a.URL+"/api/v1/teams", strings.NewReader(`{"name":"Anon"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	require.Equal(t, http.StatusUnauthorized, a.client().do(req).StatusCode)
}
