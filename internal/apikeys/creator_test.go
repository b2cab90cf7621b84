package apikeys_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/apikeys"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/teams"
)

// addMember creates a user with email and makes them role in teamID.
func addMember(t *testing.T, d *db.DB, teamID int64, email string, role teams.Role) int64 {
	t.Helper()
	ctx := context.Background()
	var id int64
	require.NoError(t, db.Get(ctx, d, &id, `INSERT INTO users (email, name, password_hash, created_at, updated_at)
		VALUES (?, '', 'x', ?, ?) RETURNING id`, email, db.Now(), db.Now()))
	require.NoError(t, teams.AddMember(ctx, d, teamID, id, role))
	return id
}

func setRole(t *testing.T, d *db.DB, teamID, userID int64, role teams.Role) {
	t.Helper()
	require.NoError(t, db.ExecOne(context.Background(), d, `UPDATE memberships SET role = ? WHERE team_id = ? AND user_id = ?`,
		role, teamID, userID))
}

// TestAuthenticateAnswersToTheCreator checks that a key acts with the lower
// of its own role and its creator's current role, and is refused once its
// creator is no longer a member of its team.
func TestAuthenticateAnswersToTheCreator(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		team, err := teams.Create(ctx, d, "Acme", "acme", false)
		require.NoError(t, err)
		owner := addMember(t, d, team.ID, "owner@example.com", teams.RoleOwner)
		admin := addMember(t, d, team.ID, "admin@example.com", teams.RoleAdmin)

		for _, tc := range []struct {
			name        string
			keyRole     teams.Role
			creatorRole teams.Role
			want        teams.Role
		}{
			{"creator above the key", teams.RoleMember, teams.RoleAdmin, teams.RoleMember},
			{"creator equal to the key", teams.RoleAdmin, teams.RoleAdmin, teams.RoleAdmin},
			{"creator demoted below the key", teams.RoleOwner, teams.RoleMember, teams.RoleMember},
			{"creator demoted to viewer", teams.RoleAdmin, teams.RoleViewer, teams.RoleViewer},
		} {
			t.Run(tc.name, func(t *testing.T) {
				setRole(t, d, team.ID, admin, teams.RoleAdmin)
				_, secret, err := apikeys.Create(ctx, d, team.ID, tc.name, tc.keyRole, admin, nil)
				require.NoError(t, err)
				setRole(t, d, team.ID, admin, tc.creatorRole)
				got, _, err := apikeys.Authenticate(ctx, d, secret)
				require.NoError(t, err)
				require.Equal(t, tc.want, got.Role, "the role the key acts with")
				require.Equal(t, tc.keyRole, got.GrantedRole, "the role the key was given")
			})
		}

		setRole(t, d, team.ID, admin, teams.RoleAdmin)
		_, removedKey, err := apikeys.Create(ctx, d, team.ID, "removed", teams.RoleAdmin, admin, nil)
		require.NoError(t, err)
		_, err = db.Exec(ctx, d, `DELETE FROM memberships WHERE team_id = ? AND user_id = ?`, team.ID, admin)
		require.NoError(t, err)
		_, _, err = apikeys.Authenticate(ctx, d, removedKey)
		require.ErrorIs(t, err, apikeys.ErrInvalid, "a key whose creator left the team is refused")

		other, err := teams.Create(ctx, d, "Other", "other", false)
		require.NoError(t, err)
		require.NoError(t, teams.AddMember(ctx, d, other.ID, admin, teams.RoleOwner))
		_, _, err = apikeys.Authenticate(ctx, d, removedKey)
		require.ErrorIs(t, err, apikeys.ErrInvalid, "membership of another team does not count")

		gone := addMember(t, d, team.ID, "gone@example.com", teams.RoleAdmin)
		_, orphan, err := apikeys.Create(ctx, d, team.ID, "orphan", teams.RoleMember, gone, nil)
		require.NoError(t, err)
		_, err = db.Exec(ctx, d, `DELETE FROM users WHERE id = ?`, gone)
		require.NoError(t, err)
		_, _, err = apikeys.Authenticate(ctx, d, orphan)
		require.ErrorIs(t, err, apikeys.ErrInvalid, "a key whose creator was deleted is refused")

		_, ownerKey, err := apikeys.Create(ctx, d, team.ID, "owner's", teams.RoleOwner, owner, nil)
		require.NoError(t, err)
		got, _, err := apikeys.Authenticate(ctx, d, ownerKey)
		require.NoError(t, err)
		require.Equal(t, teams.RoleOwner, got.Role)
	})
}

// TestCreateNeedsACreator checks that a key cannot be made by no user: a
// key answers to the user who made it, and one with nobody behind it would
// never work.
func TestCreateNeedsACreator(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		team, err := teams.Create(ctx, d, "Acme", "acme", false)
		require.NoError(t, err)
		addMember(t, d, team.ID, "owner@example.com", teams.RoleOwner)
		_, _, err = apikeys.Create(ctx, d, team.ID, "tool", teams.RoleAdmin, 0, nil)
		require.Error(t, err)
		var n int
		require.NoError(t, db.Get(ctx, d, &n, `SELECT COUNT(*) FROM api_keys`))
		require.Zero(t, n, "nothing was written")
	})
}

func TestRevokeCreatedBy(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		team, err := teams.Create(ctx, d, "Acme", "acme", false)
		require.NoError(t, err)
		other, err := teams.Create(ctx, d, "Other", "other", false)
		require.NoError(t, err)
		owner := addMember(t, d, team.ID, "owner@example.com", teams.RoleOwner)
		admin := addMember(t, d, team.ID, "admin@example.com", teams.RoleAdmin)
		require.NoError(t, teams.AddMember(ctx, d, other.ID, admin, teams.RoleOwner))

		mine, _, err := apikeys.Create(ctx, d, team.ID, "mine", teams.RoleAdmin, admin, nil)
		require.NoError(t, err)
		revokedBefore, _, err := apikeys.Create(ctx, d, team.ID, "old", teams.RoleViewer, admin, nil)
		require.NoError(t, err)
		require.NoError(t, apikeys.Revoke(ctx, d, team.ID, revokedBefore.ID))
		_, ownersSecret, err := apikeys.Create(ctx, d, team.ID, "owner's", teams.RoleMember, owner, nil)
		require.NoError(t, err)
		_, elsewhere, err := apikeys.Create(ctx, d, other.ID, "elsewhere", teams.RoleOwner, admin, nil)
		require.NoError(t, err)

		revoked, err := apikeys.RevokeCreatedBy(ctx, d, team.ID, admin)
		require.NoError(t, err)
		require.Len(t, revoked, 1, "only the live keys the user made in this team")
		require.Equal(t, mine.ID, revoked[0].ID)
		require.Equal(t, "mine", revoked[0].Name)
		require.NotNil(t, revoked[0].RevokedAt)

		_, _, err = apikeys.Authenticate(ctx, d, ownersSecret)
		require.NoError(t, err, "another member's key lives on")
		_, _, err = apikeys.Authenticate(ctx, d, elsewhere)
		require.NoError(t, err, "the user's key in another team lives on")

		revoked, err = apikeys.RevokeCreatedBy(ctx, d, team.ID, admin)
		require.NoError(t, err)
		require.Empty(t, revoked)
	})
}

// TestServiceRevokeAboveOwnRole reproduces an admin-role key revoking an
// owner-role key.
func TestServiceRevokeAboveOwnRole(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := setupService(t, d)
		ownerKey, ownerSecret, err := s.svc.CreateKey(s.ctx, s.owner, "root", teams.RoleOwner, nil)
		require.NoError(t, err)
		adminKey, _, err := s.svc.CreateKey(s.ctx, s.owner, "ops", teams.RoleAdmin, nil)
		require.NoError(t, err)
		memberKey, _, err := s.svc.CreateKey(s.ctx, s.owner, "ci", teams.RoleMember, nil)
		require.NoError(t, err)

		adminUser := addMember(t, d, s.owner.TeamID, "admin@example.com", teams.RoleAdmin)
		for name, a := range map[string]access.Actor{
			"admin-role key": {APIKeyID: adminKey.ID, TeamID: s.owner.TeamID, Role: teams.RoleAdmin},
			"admin user":     {UserID: adminUser, TeamID: s.owner.TeamID, Role: teams.RoleAdmin},
		} {
			require.ErrorIs(t, s.svc.RevokeKey(s.ctx, a, ownerKey.ID), access.ErrForbidden, name)
		}
		require.Zero(t, countRows(t, s, `SELECT COUNT(*) FROM audit_log WHERE action = 'api_key.revoke'`))
		_, _, err = apikeys.Authenticate(s.ctx, d, ownerSecret)
		require.NoError(t, err, "the owner's key survives")

		admin := access.Actor{APIKeyID: adminKey.ID, TeamID: s.owner.TeamID, Role: teams.RoleAdmin}
		require.NoError(t, s.svc.RevokeKey(s.ctx, admin, memberKey.ID), "a key at or below the actor's role")
		require.NoError(t, s.svc.RevokeKey(s.ctx, s.owner, ownerKey.ID), "the owner revokes any key")
	})
}

// TestServiceKeyMadeByKeyAnswersToItsCreator checks that a key made with an
// API key is attributed to the user who made that key, so that it works
// and goes with them.
func TestServiceKeyMadeByKeyAnswersToItsCreator(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := setupService(t, d)
		adminUser := addMember(t, d, s.owner.TeamID, "admin@example.com", teams.RoleAdmin)
		adminActor := access.Actor{UserID: adminUser, TeamID: s.owner.TeamID, Role: teams.RoleAdmin}
		parent, _, err := s.svc.CreateKey(s.ctx, adminActor, "parent", teams.RoleAdmin, nil)
		require.NoError(t, err)

		viaKey := access.Actor{APIKeyID: parent.ID, TeamID: s.owner.TeamID, Role: teams.RoleAdmin}
		child, secret, err := s.svc.CreateKey(s.ctx, viaKey, "child", teams.RoleMember, nil)
		require.NoError(t, err)
		require.Equal(t, adminUser, child.CreatedBy.Int64)
		_, _, err = apikeys.Authenticate(s.ctx, d, secret)
		require.NoError(t, err)

		revoked, err := apikeys.RevokeCreatedBy(s.ctx, d, s.owner.TeamID, adminUser)
		require.NoError(t, err)
		require.Len(t, revoked, 2, "the key and the key it made go together")

		_, _, err = s.svc.CreateKey(s.ctx, access.Actor{APIKeyID: 999999, TeamID: s.owner.TeamID, Role: teams.RoleAdmin}, "x", teams.RoleViewer, nil)
		require.ErrorIs(t, err, access.ErrForbidden, "an unknown key makes nothing")
	})
}
