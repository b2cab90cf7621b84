package web_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/apikeys"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/teams"
)

// An admin is not offered Revoke on a key above their role (the service
// would refuse it with 403).
func TestAPIKeysPageOffersRevokeOnlyUpToYourRole(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	owner := a.client()
	owner.signUp("keys-owner@example.com", password)
	team := a.teamOf("keys-owner@example.com")
	ownerUser, err := auth.UserByEmail(context.Background(), a.DB, "keys-owner@example.com")
	require.NoError(t, err)
	ownerKey, _, err := apikeys.Create(context.Background(), a.DB, team.ID, "owner key", teams.RoleOwner, ownerUser.ID, nil)
	require.NoError(t, err)
	memberKey, _, err := apikeys.Create(context.Background(), a.DB, team.ID, "member key", teams.RoleMember, ownerUser.ID, nil)
	require.NoError(t, err)

	admin := a.joinTeam("keys-owner@example.com", "keys-admin@example.com", teams.RoleAdmin)
	res := admin.get("/team/api-keys")
	require.Equal(t, http.StatusOK, res.StatusCode)
	doc := res.Doc(t)
	require.Zero(t, doc.Find(`[data-testid="revoke-key-`+itoa(ownerKey.ID)+`"]`).Length())
	require.Equal(t, 1, doc.Find(`[data-testid="revoke-key-`+itoa(memberKey.ID)+`"]`).Length())

	doc = owner.get("/team/api-keys").Doc(t)
	require.Equal(t, 1, doc.Find(`[data-testid="revoke-key-`+itoa(ownerKey.ID)+`"]`).Length(), "the owner may revoke any key")
}
