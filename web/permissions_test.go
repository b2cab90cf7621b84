package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/apikeys"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/plan"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/templates"
	"github.com/nofxhq/nofx/web"
)

// caller is one identity the matrix calls every route as.
type caller struct {
	name      string
	browser   *client // nil for anonymous
	key       string  // API key ("" for anonymous)
	role      teams.Role
	member    bool // of the team that owns the fixtures
	siteAdmin bool
}

// TestRoutePermissions walks every registered route as every role of a
// team, a user of another team, a site admin and nobody, and checks each
// answer against the access the route table declares for it (web/routes.go).
// A route registered past the table fails it.
func TestRoutePermissions(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		checkRoutePermissions(t, newApp(t))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		checkRoutePermissions(t, newAppAt(t, dbtest.PostgresURL(t)))
	})
}

func checkRoutePermissions(t *testing.T, a *app) {
	ctx := context.Background()

	// The first user is the site admin, in a team of their own.
	callers := []*caller{{name: "anonymous"}}
	admin := a.client()
	admin.signUp("site-admin@example.com", password)
	adminUser, err := auth.UserByEmail(ctx, a.DB, "site-admin@example.com")
	require.NoError(t, err)
	adminTeams, err := teams.ForUser(ctx, a.DB, adminUser.ID)
	require.NoError(t, err)

	owner := a.client()
	owner.signUp("owner@example.com", password)
	ownerUser, err := auth.UserByEmail(ctx, a.DB, "owner@example.com")
	require.NoError(t, err)
	ms, err := teams.ForUser(ctx, a.DB, ownerUser.ID)
	require.NoError(t, err)
	team := ms[0]
	keyFor := func(teamID int64, role teams.Role) string {
		_, secret, err := apikeys.Create(ctx, a.DB, teamID, "matrix "+string(role), role, a.ownerOf(teamID), nil)
		require.NoError(t, err)
		return secret
	}
	callers = append(callers, &caller{name: "site admin", browser: admin, key: keyFor(adminTeams[0].ID, teams.RoleOwner), role: teams.RoleOwner, siteAdmin: true})
	callers = append(callers, &caller{name: "owner", browser: owner, key: keyFor(team.ID, teams.RoleOwner), role: teams.RoleOwner, member: true})
	for _, role := range []teams.Role{teams.RoleAdmin, teams.RoleMember, teams.RoleViewer} {
		c := a.client()
		email := string(role) + "@example.com"
		c.signUp(email, password)
		u, err := auth.UserByEmail(ctx, a.DB, email)
		require.NoError(t, err)
		require.NoError(t, teams.AddMember(ctx, a.DB, team.ID, u.ID, role))
		c.submit("/runs", "/teams/switch", url.Values{"team_id": {fmt.Sprint(team.ID)}})
		callers = append(callers, &caller{name: string(role), browser: c, key: keyFor(team.ID, role), role: role, member: true})
	}
	stranger := a.client()
	stranger.signUp("stranger@example.com", password)
	strangerUser, err := auth.UserByEmail(ctx, a.DB, "stranger@example.com")
	require.NoError(t, err)
	strangerTeams, err := teams.ForUser(ctx, a.DB, strangerUser.ID)
	require.NoError(t, err)
	callers = append(callers, &caller{name: "other team's owner", browser: stranger, key: keyFor(strangerTeams[0].ID, teams.RoleOwner), role: teams.RoleOwner})

	// The team's resources named in paths: a run waiting for approval, a
	// member who is none of the callers, and (in params) API keys and
	// pending invitations.
	bystander := a.client()
	bystander.signUp("bystander@example.com", password)
	bystanderUser, err := auth.UserByEmail(ctx, a.DB, "bystander@example.com")
	require.NoError(t, err)
	require.NoError(t, teams.AddMember(ctx, a.DB, team.ID, bystanderUser.ID, teams.RoleMember))
	ownerActor := access.Actor{UserID: ownerUser.ID, TeamID: team.ID, Role: teams.RoleOwner}
	// Room for the callers and the invitations below (Free allows 5).
	_, err = db.Exec(ctx, a.DB, `UPDATE teams SET plan = 'pro' WHERE id = ?`, team.ID)
	require.NoError(t, err)
	plan, err := plan.Parse([]byte(`{"goal":"matrix","steps":[{"name":"gate","kind":"approval","prompt":"ok?"}]}`))
	require.NoError(t, err)
	run, _, err := a.App.Runs.Create(ctx, ownerActor, runs.CreateInput{Plan: plan})
	require.NoError(t, err)
	// A template only this team has (every team has the starters), deployed
	// to production.
	spec := templates.Starters()[0]
	spec.Slug, spec.Name = "matrix-fixture", "Matrix fixture"
	_, _, err = a.App.Templates.Create(ctx, ownerActor, spec, "fixture")
	require.NoError(t, err)
	_, err = a.App.Deployments.Deploy(ctx, ownerActor, spec.Slug, "production", 1)
	require.NoError(t, err)
	params := func(path string) string {
		key, _, err := apikeys.Create(ctx, a.DB, team.ID, "victim", teams.RoleViewer, ownerUser.ID, nil)
		require.NoError(t, err)
		id := fmt.Sprint(run.ID)
		switch {
		case strings.Contains(path, "api-keys"):
			id = fmt.Sprint(key.ID)
		case strings.Contains(path, "/invites/:id"):
			// A pending invitation of its own for each call (it replaces
			// the last), so that one caller's revoke leaves the next a
			// pending one.
			inv, err := a.App.Invites.Invite(ctx, ownerActor, "invitee@example.com", teams.RoleMember)
			require.NoError(t, err)
			id = fmt.Sprint(inv.ID)
		}
		provider := "anthropic"
		if strings.Contains(path, "circuits") {
			provider = "simulated"
		}
		return strings.NewReplacer(":id", id, ":step", "gate", ":provider", provider, ":user", fmt.Sprint(bystanderUser.ID),
			":slug", "matrix-fixture", ":env", "production", ":version", "1",
			"*", "css/app.css").Replace(path)
	}

	// What each route should allow comes from the README's route table, not
	// from the table the middleware enforces: a route declared too loosely
	// in web/routes.go fails here until the README says so too.
	expected := expectedAccess(t)
	declarations := map[string]web.Access{}
	for _, r := range a.App.Web.RouteTable() {
		declarations[r.Method+" "+r.Path] = r.Access
	}
	registered := map[string]bool{}
	deletions := 0
	for _, route := range a.App.Web.Routes() {
		if route.Method != http.MethodGet && route.Method != http.MethodPost && route.Method != http.MethodPut && route.Method != http.MethodDelete {
			continue // Echo's own not-found routes
		}
		if route.Path == "/*" || strings.HasSuffix(route.Path, "/*") && route.Path != "/static/*" {
			continue
		}
		want, ok := expected[route.Method+" "+route.Path]
		if !ok {
			t.Errorf("%s %s is not in README.md's route table: add it with the access it should have", route.Method, route.Path)
			continue
		}
		declared, ok := declarations[route.Method+" "+route.Path]
		if !ok || declared != want {
			t.Errorf("%s %s is declared %q in web/routes.go, but README.md's route table says %q", route.Method, route.Path, declared, want)
			continue
		}
		registered[route.Method+" "+route.Path] = true
		api := strings.HasPrefix(route.Path, "/api/")
		for _, c := range callers {
			if route.Path == "/logout" && c.name != "anonymous" {
				continue // public, and it would end the callers' sessions
			}
			path := params(route.Path)
			if route.Method == http.MethodDelete {
				// Deleting would take the fixture away from the routes
				// walked after it: each call deletes a template of its own.
				deletions++
				doomed := templates.Starters()[0]
				doomed.Slug, doomed.Name = fmt.Sprintf("matrix-delete-%d", deletions), "Matrix delete"
				_, _, err := a.App.Templates.Create(ctx, ownerActor, doomed, "fixture")
				require.NoError(t, err)
				path = strings.Replace(path, "matrix-fixture", doomed.Slug, 1)
			}
			status := callRoute(t, a, c, api, route.Method, path)
			name := fmt.Sprintf("%s %s as %s", route.Method, route.Path, c.name)
			switch {
			case status >= 500:
				t.Errorf("%s: %d", name, status)
			case want.Public:
				require.NotEqual(t, http.StatusForbidden, status, name)
			case c.browser == nil && c.key == "":
				require.Contains(t, []int{http.StatusUnauthorized, http.StatusSeeOther}, status, name)
			case want.SignedIn && want.UsersOnly && api:
				// The matrix calls the API with each caller's key.
				require.Equal(t, http.StatusForbidden, status, "%s: API keys are refused", name)
			case want.SignedIn:
				require.NotContains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, status, name)
			case want.SiteAdmin:
				if c.siteAdmin && !api {
					require.NotContains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, status, name)
				} else {
					require.Equal(t, http.StatusForbidden, status, name)
				}
			case want.Scoped && !c.member && !want.Public:
				require.Equal(t, http.StatusNotFound, status, "%s: another team's resource is not found, never forbidden", name)
			case !access.Allowed(c.role, want.Perm):
				require.Equal(t, http.StatusForbidden, status, name)
			default:
				require.NotContains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, status, name)
			}
		}
	}
	for _, route := range a.App.Web.RouteTable() {
		require.True(t, registered[route.Method+" "+route.Path], "%s %s is in the route table but not registered", route.Method, route.Path)
	}
	for route := range expected {
		require.True(t, registered[route], "%s is in README.md's route table but not registered", route)
	}
}

// callRoute makes one request as c and returns the status. Event streams
// are not read beyond their headers.
func callRoute(t *testing.T, a *app, c *caller, api bool, method, path string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var body *strings.Reader
	header := http.Header{}
	switch {
	case api:
		body = strings.NewReader("{}")
		if method == http.MethodGet {
			body = strings.NewReader("")
		}
		header.Set("Content-Type", "application/json")
		if c.key != "" {
			header.Set("Authorization", "Bearer "+c.key)
		}
	case method == http.MethodPost:
		form := url.Values{}
		browser, page := c.browser, "/account"
		if browser == nil {
			browser, page = a.client(), "/login"
		}
		form.Set("_csrf", browser.csrf(page))
		body = strings.NewReader(form.Encode())
		header.Set("Content-Type", "application/x-www-form-urlencoded")
		c.browser = browser
		defer func() {
			if c.name == "anonymous" {
				c.browser = nil
			}
		}()
	default:
		body = strings.NewReader("")
	}
	req, err := http.NewRequestWithContext(ctx, method, a.URL+path, body)
	require.NoError(t, err)
	req.Header = header
	httpClient := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if c.browser != nil && !api {
		httpClient.Jar = c.browser.http.Jar
	}
	res, err := httpClient.Do(req)
	require.NoError(t, err, "%s %s", method, path)
	res.Body.Close()
	return res.StatusCode
}

// expectedAccess reads the route table of README.md's Layout section (as
// `nofx routes --handlers` prints it: method, path, access, handler) into each route's access.
func expectedAccess(t *testing.T) map[string]web.Access {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	_, table, ok := strings.Cut(string(readme), "<!-- routes -->\n```\n")
	require.True(t, ok, "README.md has the route table")
	table, _, ok = strings.Cut(table, "```\n<!-- /routes -->")
	require.True(t, ok)
	out := map[string]web.Access{}
	for i, line := range strings.Split(strings.TrimSpace(table), "\n") {
		f := strings.Fields(line)
		if i == 0 {
			require.Equal(t, []string{"METHOD", "PATH", "ACCESS", "HANDLER"}, f)
			continue
		}
		require.GreaterOrEqual(t, len(f), 4, "README.md route table, line %d: %q", i+1, line)
		var a web.Access
		switch text := strings.Join(f[2:len(f)-1], " "); text {
		case "public":
			a.Public = true
		case "signed in":
			a.SignedIn = true
		case "users only":
			a.SignedIn, a.UsersOnly = true, true
		case "site admin":
			a.SiteAdmin = true
		default:
			perm, scoped := strings.CutSuffix(text, " (scoped)")
			a.Perm, a.Scoped = access.Permission(perm), scoped
		}
		out[f[0]+" "+f[1]] = a
	}
	return out
}
