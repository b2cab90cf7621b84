package members_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/apikeys"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/teams"
)

// keyOf makes a live key of role in f's team, made by userID.
func (f fixture) keyOf(t *testing.T, userID int64, name string, role teams.Role) string {
	t.Helper()
	_, secret, err := apikeys.Create(context.Background(), f.db, f.team.ID, name, role, userID, nil)
	require.NoError(t, err)
	return secret
}

func (f fixture) revokedKeys(t *testing.T, userID int64) int {
	t.Helper()
	var n int
	require.NoError(t, db.Get(context.Background(), f.db, &n,
		`SELECT COUNT(*) FROM api_keys WHERE team_id = ? AND created_by = ? AND revoked_at IS NOT NULL`, f.team.ID, userID))
	return n
}

// TestRemoveAndLeaveRevokeTheirKeys checks that a member's keys in the team
// go with them, each revocation audited, and nobody else's.
func TestRemoveAndLeaveRevokeTheirKeys(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := setup(t, d)
		other, err := teams.Create(ctx, d, "Other", "other", false)
		require.NoError(t, err)
		admin, member := f.users[teams.RoleAdmin], f.users[teams.RoleMember]
		require.NoError(t, teams.AddMember(ctx, d, other.ID, admin, teams.RoleOwner))

		adminKeys := []string{f.keyOf(t, admin, "admin ci", teams.RoleAdmin), f.keyOf(t, admin, "admin bot", teams.RoleViewer)}
		memberKey := f.keyOf(t, member, "member ci", teams.RoleMember)
		ownerKey := f.keyOf(t, f.users[teams.RoleOwner], "owner ci", teams.RoleOwner)
		_, elsewhere, err := apikeys.Create(ctx, d, other.ID, "elsewhere", teams.RoleOwner, admin, nil)
		require.NoError(t, err)

		require.NoError(t, f.svc.Remove(ctx, f.actor(teams.RoleOwner), admin))
		for _, secret := range adminKeys {
			_, _, err := apikeys.Authenticate(ctx, d, secret)
			require.ErrorIs(t, err, apikeys.ErrInvalid, "a removed member's key is refused")
		}
		require.Equal(t, 2, f.revokedKeys(t, admin), "revoked, not just refused")
		require.Equal(t, 2, f.audited(t, "api_key.revoke"), "one audit entry per key")
		var targets []string
		require.NoError(t, db.Select(ctx, d, &targets, `SELECT target FROM audit_log WHERE action = 'api_key.revoke' AND team_id = ? AND actor_user_id = ? ORDER BY target`,
			f.team.ID, f.users[teams.RoleOwner]))
		require.Equal(t, []string{"admin bot", "admin ci"}, targets, "the remover is the actor")

		for _, secret := range []string{memberKey, ownerKey, elsewhere} {
			_, _, err := apikeys.Authenticate(ctx, d, secret)
			require.NoError(t, err, "other members' keys and other teams' keys live on")
		}

		require.NoError(t, f.svc.Leave(ctx, f.actor(teams.RoleMember)))
		_, _, err = apikeys.Authenticate(ctx, d, memberKey)
		require.ErrorIs(t, err, apikeys.ErrInvalid, "a member who left loses their keys")
		require.Equal(t, 1, f.revokedKeys(t, member))
		require.Equal(t, 3, f.audited(t, "api_key.revoke"))
		var leaver int64
		require.NoError(t, db.Get(ctx, d, &leaver, `SELECT actor_user_id FROM audit_log WHERE action = 'api_key.revoke' AND target = 'member ci'`))
		require.Equal(t, member, leaver)
	})
}

// TestRemoveRevokesInItsTransaction breaks the audit table so that Remove
// fails at its last statement, and checks that the keys survive with the
// membership.
func TestRemoveRevokesInItsTransaction(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := setup(t, d)
		viewer := f.users[teams.RoleViewer]
		secret := f.keyOf(t, viewer, "viewer ci", teams.RoleViewer)
		_, err := db.Exec(ctx, d, `ALTER TABLE audit_log RENAME TO audit_log_gone`)
		require.NoError(t, err)
		require.Error(t, f.svc.Remove(ctx, f.actor(teams.RoleOwner), viewer))
		require.Error(t, f.svc.Leave(ctx, f.actor(teams.RoleViewer)))
		_, err = db.Exec(ctx, d, `ALTER TABLE audit_log_gone RENAME TO audit_log`)
		require.NoError(t, err)

		require.Equal(t, teams.RoleViewer, f.roleOf(t, viewer), "still a member")
		require.Zero(t, f.revokedKeys(t, viewer))
		_, _, err = apikeys.Authenticate(ctx, d, secret)
		require.NoError(t, err, "the key lives with the membership")
	})
}

// TestDemotionLowersTheirKeys checks that a demoted member's keys act with
// the new role at once.
func TestDemotionLowersTheirKeys(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := setup(t, d)
		admin := f.users[teams.RoleAdmin]
		secret := f.keyOf(t, admin, "admin ci", teams.RoleAdmin)
		require.NoError(t, f.svc.ChangeRole(ctx, f.actor(teams.RoleOwner), admin, "viewer"))
		k, _, err := apikeys.Authenticate(ctx, d, secret)
		require.NoError(t, err)
		require.Equal(t, teams.RoleViewer, k.Role)
		require.NoError(t, f.svc.ChangeRole(ctx, f.actor(teams.RoleOwner), admin, "admin"))
		k, _, err = apikeys.Authenticate(ctx, d, secret)
		require.NoError(t, err)
		require.Equal(t, teams.RoleAdmin, k.Role, "and get it back with the role")
	})
}
