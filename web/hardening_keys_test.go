package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/apikeys"
	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/teams"
)

// userID returns the id of the user with email.
func (a *app) userID(email string) int64 {
	a.t.Helper()
	u, err := auth.UserByEmail(context.Background(), a.DB, email)
	require.NoError(a.t, err)
	return u.ID
}

// createKeyOnPage makes a key with role on the API keys page and returns
// its secret.
func (c *client) createKeyOnPage(name string, role teams.Role) string {
	c.t.Helper()
	res := c.submit("/team/api-keys", "/team/api-keys", url.Values{"name": {name}, "role": {string(role)}})
	require.Equal(c.t, http.StatusOK, res.StatusCode, res.Body)
	secret := strings.TrimSpace(res.Doc(c.t).Find(`[data-testid=new-key-secret]`).Text())
	require.True(c.t, strings.HasPrefix(secret, "nofx_"), "secret %q", secret)
	return secret
}

// meRole is the role /api/v1/me says secret acts with.
func (a *app) meRole(secret string) string {
	a.t.Helper()
	res := a.bearerMe(secret)
	require.Equal(a.t, http.StatusOK, res.StatusCode, res.Body)
	return decode[struct {
		Team struct {
			Role string `json:"role"`
		} `json:"team"`
	}](a.t, res).Team.Role
}

// TestRemovedAdminKeyIsRefused reproduces the finding: a removed admin's
// key still listed runs, created a new key and re-invited her as admin.
func TestRemovedAdminKeyIsRefused(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	owner := a.client()
	owner.signUp("removal-owner@example.com", password)
	admin := a.joinTeam("removal-owner@example.com", "removal-admin@example.com", teams.RoleAdmin)
	hers := &apiClient{t: t, app: a, key: admin.createKeyOnPage("her laptop", teams.RoleAdmin)}
	require.Equal(t, http.StatusOK, hers.do(http.MethodGet, "/api/v1/runs", "").StatusCode, "the key works while she is a member")

	adminID := a.userID("removal-admin@example.com")
	res := owner.submit("/team/members", fmt.Sprintf("/team/members/%d/remove", adminID), url.Values{})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)

	for _, call := range []struct{ method, path, body string }{
		{http.MethodGet, "/api/v1/runs", ""},
		{http.MethodPost, "/api/v1/api-keys", `{"name":"backdoor","role":"admin"}`},
		{http.MethodPost, "/api/v1/invites", `{"email":"removal-admin@example.com","role":"admin"}`},
	} {
		res := hers.do(call.method, call.path, call.body)
		require.Equal(t, http.StatusUnauthorized, res.StatusCode, "%s %s: %s", call.method, call.path, res.Body)
	}

	keys := owner.get("/team/api-keys").Doc(t)
	require.Contains(t, keys.Find(`[data-testid=api-keys]`).Text(), "her laptop")
	require.Contains(t, keys.Find(`[data-testid=api-keys]`).Text(), "revoked", "her key shows as revoked")
	team := a.teamOf("removal-owner@example.com")
	entries, _, err := audit.List(context.Background(), a.DB, team.ID, audit.Filter{Action: "api_key.revoke"})
	require.NoError(t, err)
	require.Len(t, entries, 1)
	require.Equal(t, "her laptop", entries[0].Target)
	require.Equal(t, "removal-owner@example.com", entries[0].Actor, "the remover revoked it")
}

// TestLeavingRevokesTheirKeys checks that a member who leaves takes their
// keys with them.
func TestLeavingRevokesTheirKeys(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	owner := a.client()
	owner.signUp("leave-owner@example.com", password)
	member := a.joinTeam("leave-owner@example.com", "leave-member@example.com", teams.RoleAdmin)
	secret := member.createKeyOnPage("cron", teams.RoleMember)
	require.Equal(t, http.StatusOK, a.bearerMe(secret).StatusCode)
	res := member.submit("/team/members", "/team/leave", url.Values{"team_id": {itoa(a.teamOf("leave-owner@example.com").ID)}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	require.Equal(t, http.StatusUnauthorized, a.bearerMe(secret).StatusCode)
}

// TestDemotedAdminOwnerKeyActsAsMember reproduces the finding: a key keeps
// the power its creator had when they made it.
func TestDemotedAdminOwnerKeyActsAsMember(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := context.Background()
	alice := a.client()
	alice.signUp("demote-alice@example.com", password)
	res := alice.submit("/teams/new", "/teams", url.Values{"name": {"Demotions"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	root := alice.createKeyOnPage("root", teams.RoleOwner)
	require.Equal(t, "owner", a.meRole(root))
	rootKey, _, err := apikeys.Authenticate(ctx, a.DB, root)
	require.NoError(t, err)

	bob := a.client()
	bob.signUp("demote-bob@example.com", password)
	bobID, aliceID := a.userID("demote-bob@example.com"), a.userID("demote-alice@example.com")
	require.NoError(t, teams.AddMember(ctx, a.DB, rootKey.TeamID, bobID, teams.RoleAdmin))
	require.Equal(t, http.StatusSeeOther, bob.submit("/runs", "/teams/switch", url.Values{"team_id": {itoa(rootKey.TeamID)}}).StatusCode)
	res = alice.submit("/team/members", "/team/transfer", url.Values{"user_id": {itoa(bobID)}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	require.Equal(t, "admin", a.meRole(root), "the old owner is an admin, and so is her key")
	res = bob.submit("/team/members", fmt.Sprintf("/team/members/%d/role", aliceID), url.Values{"role": {"member"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)

	require.Equal(t, "member", a.meRole(root), "her owner key acts as a member")
	key := &apiClient{t: t, app: a, key: root}
	require.Equal(t, http.StatusOK, key.do(http.MethodGet, "/api/v1/runs", "").StatusCode, "a member reads runs")
	for _, call := range []struct{ method, path, body string }{
		{http.MethodGet, "/api/v1/api-keys", ""},
		{http.MethodPost, "/api/v1/api-keys", `{"name":"again","role":"owner"}`},
		{http.MethodPost, "/api/v1/invites", `{"email":"demote-alice@example.com","role":"admin"}`},
		{http.MethodPost, fmt.Sprintf("/api/v1/members/%d/role", bobID), `{"role":"viewer"}`},
		{http.MethodPost, fmt.Sprintf("/api/v1/members/%d/remove", bobID), ``},
	} {
		res := key.do(call.method, call.path, call.body)
		require.Equal(t, http.StatusForbidden, res.StatusCode, "%s %s: %s", call.method, call.path, res.Body)
	}
	m, err := teams.MembershipOf(ctx, a.DB, rootKey.TeamID, bobID)
	require.NoError(t, err)
	require.Equal(t, teams.RoleOwner, m.Role, "bob is still the owner")
}

// TestAdminKeyCannotRevokeOwnerKey reproduces the finding: an admin-role key
// revoked an owner-role key.
func TestAdminKeyCannotRevokeOwnerKey(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := context.Background()
	owner := a.client()
	owner.signUp("revoke-owner@example.com", password)
	ownerID := a.userID("revoke-owner@example.com")
	team := a.teamOf("revoke-owner@example.com")
	ownerKey, ownerSecret, err := apikeys.Create(ctx, a.DB, team.ID, "root", teams.RoleOwner, ownerID, nil)
	require.NoError(t, err)
	memberKey, _, err := apikeys.Create(ctx, a.DB, team.ID, "ci", teams.RoleMember, ownerID, nil)
	require.NoError(t, err)
	_, adminSecret, err := apikeys.Create(ctx, a.DB, team.ID, "ops", teams.RoleAdmin, ownerID, nil)
	require.NoError(t, err)
	adminKey := &apiClient{t: t, app: a, key: adminSecret}

	res := adminKey.do(http.MethodPost, fmt.Sprintf("/api/v1/api-keys/%d/revoke", ownerKey.ID), "")
	requireAPIError(t, res, http.StatusForbidden, "forbidden", "")
	require.Equal(t, http.StatusOK, a.bearerMe(ownerSecret).StatusCode, "the owner's key survives an admin key")

	adminUser := a.joinTeam("revoke-owner@example.com", "revoke-admin@example.com", teams.RoleAdmin)
	res = adminUser.submit("/team/api-keys", fmt.Sprintf("/team/api-keys/%d/revoke", ownerKey.ID), url.Values{})
	require.Equal(t, http.StatusForbidden, res.StatusCode, res.Body)
	require.Equal(t, http.StatusOK, a.bearerMe(ownerSecret).StatusCode, "the owner's key survives an admin")

	res = adminKey.do(http.MethodPost, fmt.Sprintf("/api/v1/api-keys/%d/revoke", memberKey.ID), "")
	require.Equal(t, http.StatusNoContent, res.StatusCode, res.Body)
	res = owner.submit("/team/api-keys", fmt.Sprintf("/team/api-keys/%d/revoke", ownerKey.ID), url.Values{})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	require.Equal(t, http.StatusUnauthorized, a.bearerMe(ownerSecret).StatusCode)
}

// TestKeyMadeWithKeyWorksAndGoesWithItsCreator checks that a key created
// through the API answers to the user behind the key that made it.
func TestKeyMadeWithKeyWorksAndGoesWithItsCreator(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	owner := a.client()
	owner.signUp("chain-owner@example.com", password)
	admin := a.joinTeam("chain-owner@example.com", "chain-admin@example.com", teams.RoleAdmin)
	parent := &apiClient{t: t, app: a, key: admin.createKeyOnPage("parent", teams.RoleAdmin)}
	res := parent.do(http.MethodPost, "/api/v1/api-keys", `{"name":"child","role":"member"}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	child := decode[struct {
		Secret string `json:"secret"`
	}](t, res).Secret
	require.Equal(t, "member", a.meRole(child))

	res = owner.submit("/team/members", fmt.Sprintf("/team/members/%d/remove", a.userID("chain-admin@example.com")), url.Values{})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	require.Equal(t, http.StatusUnauthorized, a.bearerMe(child).StatusCode, "the key her key made goes with her")
}

// TestAuditOriginForAdminsOnly reproduces the finding: viewers and members
// read members' IPs and user agents in the audit log, on the page and in
// the CSV export.
func TestAuditOriginForAdminsOnly(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	owner := a.client()
	owner.signUp("origin-owner@example.com", password)
	readers := map[teams.Role]*client{teams.RoleOwner: owner}
	for _, role := range []teams.Role{teams.RoleAdmin, teams.RoleMember, teams.RoleViewer} {
		readers[role] = a.joinTeam("origin-owner@example.com", "origin-"+string(role)+"@example.com", role)
	}
	team := a.teamOf("origin-owner@example.com")
	const ip, agent = "203.0.113.77", "SecretBrowser/9.9"
	require.NoError(t, audit.Record(context.Background(), a.DB, audit.Entry{TeamID: &team.ID, Actor: "origin-member@example.com",
		Action: "run.created", Target: "run #1", IP: ip, UserAgent: agent}))

	for role, c := range readers {
		sees := role == teams.RoleOwner || role == teams.RoleAdmin
		t.Run(string(role), func(t *testing.T) {
			res := c.get("/team/audit")
			require.Equal(t, http.StatusOK, res.StatusCode)
			doc := res.Doc(t)
			require.Contains(t, doc.Find(`[data-testid=audit-table]`).Text(), "run #1", "every reader sees the change")
			require.Equal(t, sees, strings.Contains(res.Body, ip), "IP on the page")
			require.Equal(t, sees, doc.Find(`[data-testid=audit-ip]`).Length() > 0, "IP column")

			res = c.get("/team/audit.csv")
			require.Equal(t, http.StatusOK, res.StatusCode)
			require.True(t, strings.HasPrefix(res.Body, "time,actor,action,target,summary,ip,user_agent,request_id\n"), "the same columns for everyone")
			require.Contains(t, res.Body, "run #1")
			require.Equal(t, sees, strings.Contains(res.Body, ip), "IP in the CSV")
			require.Equal(t, sees, strings.Contains(res.Body, agent), "user agent in the CSV")
			if !sees {
				require.NotContains(t, res.Body, "127.0.0.1", "nor anyone else's IP")
			}
		})
	}
}
