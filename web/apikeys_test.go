package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/teams"
)

// joinTeam signs email up in a new browser and makes them role in the team
// of ownerEmail, acting there.
func (a *app) joinTeam(ownerEmail, email string, role teams.Role) *client {
	a.t.Helper()
	ctx := context.Background()
	owner, err := auth.UserByEmail(ctx, a.DB, ownerEmail)
	require.NoError(a.t, err)
	ms, err := teams.ForUser(ctx, a.DB, owner.ID)
	require.NoError(a.t, err)
	c := a.client()
	c.signUp(email, password)
	user, err := auth.UserByEmail(ctx, a.DB, email)
	require.NoError(a.t, err)
	require.NoError(a.t, teams.AddMember(ctx, a.DB, ms[0].ID, user.ID, role))
	res := c.submit("/runs", "/teams/switch", url.Values{"team_id": {itoa(ms[0].ID)}})
	require.Equal(a.t, http.StatusSeeOther, res.StatusCode)
	return c
}

// bearerMe calls /api/v1/me with secret.
func (a *app) bearerMe(secret string) response {
	a.t.Helper()
	req, err := http.NewRequest(http.MethodGet, a.URL+"/api/v1/me", nil)
	require.NoError(a.t, err)
	req.Header.Set("Authorization", "Bearer "+secret)
	return a.client().do(req)
}

func TestAPIKeysPageCreateShowsSecretOnceAndRevoke(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.client()
	c.signUp("keys-owner@example.com", password)

	doc := c.get("/team/api-keys").Doc(t)
	require.Equal(t, 1, doc.Find(`[data-testid=no-api-keys]`).Length())

	res := c.submit("/team/api-keys", "/team/api-keys", url.Values{"name": {"CI deploys"}, "role": {"member"}})
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	doc = res.Doc(t)
	secret := strings.TrimSpace(doc.Find(`[data-testid=new-key-secret]`).Text())
	require.True(t, strings.HasPrefix(secret, "nofx_"), "secret %q", secret)
	require.Contains(t, doc.Find(`[data-testid=api-keys]`).Text(), "CI deploys")
	for _, ck := range res.Cookies() {
		require.NotContains(t, ck.Value, secret, "the secret is never put in a cookie")
	}

	again := c.get("/team/api-keys")
	require.Equal(t, http.StatusOK, again.StatusCode)
	require.NotContains(t, again.Body, secret, "the secret is shown once")
	require.Zero(t, again.Doc(t).Find(`[data-testid=new-key-secret]`).Length())

	res = a.bearerMe(secret)
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	require.Contains(t, res.Body, "CI deploys")

	row := again.Doc(t).Find(`[data-testid^=revoke-key-]`).First()
	id := strings.TrimPrefix(row.AttrOr("data-testid", ""), "revoke-key-")
	require.NotEmpty(t, id)
	res = c.submit("/team/api-keys", "/team/api-keys/"+id+"/revoke", url.Values{})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	require.Equal(t, "/team/api-keys", res.Header.Get("Location"))

	res = a.bearerMe(secret)
	require.Equal(t, http.StatusUnauthorized, res.StatusCode, "a revoked key is refused at once")

	doc = c.get("/team/api-keys").Doc(t)
	require.Equal(t, "revoked", strings.TrimSpace(doc.Find(`[data-testid=api-key-status-`+id+`]`).Text()))
	require.Zero(t, doc.Find(`[data-testid=revoke-key-`+id+`]`).Length())
}

func TestAPIKeysPageValidationAndRoles(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	owner := a.client()
	owner.signUp("roles-owner@example.com", password)

	res := owner.submit("/team/api-keys", "/team/api-keys", url.Values{"name": {""}, "role": {"member"}, "expires_at": {"2001-01-01"}})
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	doc := res.Doc(t)
	require.NotEmpty(t, doc.Find(`[data-testid=error-name]`).Text())
	require.NotEmpty(t, doc.Find(`[data-testid=error-expires_at]`).Text())
	require.Zero(t, doc.Find(`[data-testid=new-key-secret]`).Length())

	admin := a.joinTeam("roles-owner@example.com", "roles-admin@example.com", teams.RoleAdmin)
	res = admin.submit("/team/api-keys", "/team/api-keys", url.Values{"name": {"root"}, "role": {"owner"}})
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	doc = res.Doc(t)
	require.NotEmpty(t, doc.Find(`[data-testid=error-role]`).Text())
	require.Equal(t, "root", doc.Find(`input[name=name]`).AttrOr("value", ""), "the form keeps what was typed")
	require.Zero(t, doc.Find(`select[name=role] option[value=owner]`).Length(), "an admin is not offered owner")
	require.Equal(t, 1, doc.Find(`[data-testid=no-api-keys]`).Length())

	member := a.joinTeam("roles-owner@example.com", "roles-member@example.com", teams.RoleMember)
	require.Equal(t, http.StatusForbidden, member.get("/team/api-keys").StatusCode)
	res = member.submit("/runs", "/team/api-keys", url.Values{"name": {"mine"}, "role": {"viewer"}})
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	res = member.submit("/runs", "/team/api-keys/1/revoke", url.Values{})
	require.Equal(t, http.StatusForbidden, res.StatusCode)
}

// apiKeyBody is an API key as the API returns it.
type apiKeyBody struct {
	ID        int64      `json:"id"`
	Name      string     `json:"name"`
	Prefix    string     `json:"prefix"`
	Role      string     `json:"role"`
	Status    string     `json:"status"`
	ExpiresAt *time.Time `json:"expires_at"`
	RevokedAt *time.Time `json:"revoked_at"`
}

func apiErrorFields(t *testing.T, res response) map[string]string {
	t.Helper()
	var body struct {
		Error struct {
			Fields map[string]string `json:"fields"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal([]byte(res.Body), &body), res.Body)
	return body.Error.Fields
}

func TestAPIKeysJSON(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.newAPIClient("json-keys@example.com", teams.RoleAdmin)

	expires := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	res := c.do(http.MethodPost, "/api/v1/api-keys", fmt.Sprintf(`{"name":"bot","role":"viewer","expires_at":%q}`, expires.Format(time.RFC3339)))
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	created := decode[struct {
		Key    apiKeyBody `json:"key"`
		Secret string     `json:"secret"`
	}](t, res)
	require.True(t, strings.HasPrefix(created.Secret, created.Key.Prefix))
	require.Equal(t, "viewer", created.Key.Role)
	require.Equal(t, "active", created.Key.Status)
	require.NotNil(t, created.Key.ExpiresAt)
	require.True(t, expires.Equal(*created.Key.ExpiresAt))
	require.Equal(t, http.StatusOK, a.bearerMe(created.Secret).StatusCode)

	list := decode[struct {
		Keys []apiKeyBody `json:"keys"`
	}](t, c.do(http.MethodGet, "/api/v1/api-keys", ""))
	require.Len(t, list.Keys, 2, "the client's own key and the new one")
	require.Equal(t, created.Key.ID, list.Keys[0].ID)
	require.NotContains(t, c.do(http.MethodGet, "/api/v1/api-keys", "").Body, created.Secret)

	for _, tc := range []struct {
		body  string
		field string
	}{
		{`{"name":"","role":"viewer"}`, "name"},
		{`{"name":"x","role":"owner"}`, "role"},
		{`{"name":"x","role":"god"}`, "role"},
		{`{"name":"x","role":"viewer","expires_at":"tomorrow"}`, "expires_at"},
		{`{"name":"x","role":"viewer","expires_at":"2001-01-01T00:00:00Z"}`, "expires_at"},
	} {
		res := c.do(http.MethodPost, "/api/v1/api-keys", tc.body)
		require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, tc.body)
		require.Equal(t, "validation_failed", apiErrorCode(t, res))
		require.Contains(t, apiErrorFields(t, res), tc.field, tc.body)
	}
	require.Equal(t, http.StatusBadRequest, c.do(http.MethodPost, "/api/v1/api-keys", `{"name":"x","secret":"y"}`).StatusCode)

	other := a.newAPIClient("json-other@example.com", teams.RoleOwner)
	res = other.do(http.MethodPost, fmt.Sprintf("/api/v1/api-keys/%d/revoke", created.Key.ID), "")
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	require.Equal(t, "not_found", apiErrorCode(t, res))
	require.Equal(t, http.StatusOK, a.bearerMe(created.Secret).StatusCode, "another team cannot revoke it")

	viewer := &apiClient{t: t, app: a, key: created.Secret}
	res = viewer.do(http.MethodGet, "/api/v1/api-keys", "")
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	require.Equal(t, "forbidden", apiErrorCode(t, res))
	require.Equal(t, http.StatusForbidden, viewer.do(http.MethodPost, "/api/v1/api-keys", `{"name":"x","role":"viewer"}`).StatusCode)

	res = c.do(http.MethodPost, fmt.Sprintf("/api/v1/api-keys/%d/revoke", created.Key.ID), "")
	require.Equal(t, http.StatusNoContent, res.StatusCode, res.Body)
	require.Equal(t, http.StatusUnauthorized, a.bearerMe(created.Secret).StatusCode, "a revoked key is refused at once")
	require.Equal(t, http.StatusNotFound, c.do(http.MethodPost, fmt.Sprintf("/api/v1/api-keys/%d/revoke", created.Key.ID), "").StatusCode)
	require.Equal(t, http.StatusNotFound, c.do(http.MethodPost, "/api/v1/api-keys/abc/revoke", "").StatusCode)

	list = decode[struct {
		Keys []apiKeyBody `json:"keys"`
	}](t, c.do(http.MethodGet, "/api/v1/api-keys", ""))
	require.Equal(t, "revoked", list.Keys[0].Status)
	require.NotNil(t, list.Keys[0].RevokedAt)
}
