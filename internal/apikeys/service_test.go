package apikeys_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/apikeys"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/validation"
)

// serviceSetup is a team with an owner acting in it.
type serviceSetup struct {
	ctx   context.Context
	db    *db.DB
	svc   *apikeys.Service
	owner access.Actor
}

func setupService(t *testing.T, d *db.DB) serviceSetup {
	t.Helper()
	ctx := context.Background()
	team, err := teams.Create(ctx, d, "Acme", "acme", false)
	require.NoError(t, err)
	var userID int64
	require.NoError(t, db.Get(ctx, d, &userID, `INSERT INTO users (email, name, password_hash, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?) RETURNING id`, "owner@example.com", "Owner", "x", db.Now(), db.Now()))
	require.NoError(t, teams.AddMember(ctx, d, team.ID, userID, teams.RoleOwner))
	return serviceSetup{ctx: ctx, db: d, svc: &apikeys.Service{DB: d},
		owner: access.Actor{UserID: userID, TeamID: team.ID, Role: teams.RoleOwner}}
}

func countRows(t *testing.T, s serviceSetup, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, db.Get(s.ctx, s.db, &n, query, args...))
	return n
}

func TestServiceCreateListRevoke(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := setupService(t, d)
		expires := db.Now().Add(30 * 24 * time.Hour)

		first, _, err := s.svc.CreateKey(s.ctx, s.owner, "  ci  ", teams.RoleMember, nil)
		require.NoError(t, err)
		require.Equal(t, "ci", first.Name)
		second, secret, err := s.svc.CreateKey(s.ctx, s.owner, "deploy", teams.RoleViewer, &expires)
		require.NoError(t, err)

		got, _, err := apikeys.Authenticate(s.ctx, d, secret)
		require.NoError(t, err)
		require.Equal(t, second.ID, got.ID)

		keys, err := s.svc.List(s.ctx, s.owner)
		require.NoError(t, err)
		require.Len(t, keys, 2)
		require.Equal(t, second.ID, keys[0].ID, "newest first")
		require.NotNil(t, keys[0].ExpiresAt)
		require.Equal(t, s.owner.UserID, keys[0].CreatedBy.Int64)

		var summary string
		require.NoError(t, db.Get(s.ctx, d, &summary, `SELECT summary FROM audit_log WHERE action = 'api_key.create' AND target = 'deploy'`))
		require.Contains(t, summary, "viewer")
		require.NotContains(t, summary, secret)
		require.Zero(t, countRows(t, s, `SELECT COUNT(*) FROM audit_log WHERE summary LIKE ? OR target LIKE ?`, "%"+secret+"%", "%"+secret+"%"),
			"the secret is never audited")

		require.NoError(t, s.svc.RevokeKey(s.ctx, s.owner, second.ID))
		_, _, err = apikeys.Authenticate(s.ctx, d, secret)
		require.ErrorIs(t, err, apikeys.ErrInvalid)
		require.Equal(t, 1, countRows(t, s, `SELECT COUNT(*) FROM audit_log WHERE action = 'api_key.revoke' AND target = 'deploy'`))
		require.ErrorIs(t, s.svc.RevokeKey(s.ctx, s.owner, second.ID), db.ErrNotFound, "a key is revoked once")

		keys, err = s.svc.List(s.ctx, s.owner)
		require.NoError(t, err)
		require.Len(t, keys, 2, "revoked keys stay listed")
		require.NotNil(t, keys[0].RevokedAt)
		require.Nil(t, keys[1].RevokedAt)
	})
}

func TestServiceValidation(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := setupService(t, d)
		admin := s.owner
		admin.Role = teams.RoleAdmin
		now := db.Now()
		past, far := now.Add(-time.Minute), now.Add(3*365*24*time.Hour)
		long := make([]byte, apikeys.MaxNameLen+1)
		for i := range long {
			long[i] = 'a'
		}
		for _, tc := range []struct {
			name    string
			actor   access.Actor
			keyName string
			role    teams.Role
			expires *time.Time
			field   string
		}{
			{"empty name", s.owner, " ", teams.RoleMember, nil, "name"},
			{"long name", s.owner, string(long), teams.RoleMember, nil, "name"},
			{"unknown role", s.owner, "ci", teams.Role("root"), nil, "role"},
			{"admin makes owner key", admin, "ci", teams.RoleOwner, nil, "role"},
			{"expiry in the past", s.owner, "ci", teams.RoleMember, &past, "expires_at"},
			{"expiry too far", s.owner, "ci", teams.RoleMember, &far, "expires_at"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, _, err := s.svc.CreateKey(s.ctx, tc.actor, tc.keyName, tc.role, tc.expires)
				var verrs validation.Errors
				require.ErrorAs(t, err, &verrs)
				require.Contains(t, verrs, tc.field)
			})
		}
		require.Zero(t, countRows(t, s, `SELECT COUNT(*) FROM api_keys`), "no key written")
		require.Zero(t, countRows(t, s, `SELECT COUNT(*) FROM audit_log`), "no audit row written")

		_, _, err := s.svc.CreateKey(s.ctx, admin, "ops", teams.RoleAdmin, nil)
		require.NoError(t, err, "an admin may make a key of its own role")
	})
}

func TestServiceForbiddenAndOtherTeams(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := setupService(t, d)
		key, _, err := s.svc.CreateKey(s.ctx, s.owner, "ci", teams.RoleMember, nil)
		require.NoError(t, err)

		for _, role := range []teams.Role{teams.RoleMember, teams.RoleViewer} {
			a := s.owner
			a.Role = role
			_, err := s.svc.List(s.ctx, a)
			require.ErrorIs(t, err, access.ErrForbidden, role)
			_, _, err = s.svc.CreateKey(s.ctx, a, "mine", teams.RoleViewer, nil)
			require.ErrorIs(t, err, access.ErrForbidden, role)
			require.ErrorIs(t, s.svc.RevokeKey(s.ctx, a, key.ID), access.ErrForbidden, role)
		}

		other, err := teams.Create(s.ctx, d, "Other", "other", false)
		require.NoError(t, err)
		stranger := access.Actor{UserID: s.owner.UserID, TeamID: other.ID, Role: teams.RoleOwner}
		require.ErrorIs(t, s.svc.RevokeKey(s.ctx, stranger, key.ID), db.ErrNotFound)
		keys, err := s.svc.List(s.ctx, stranger)
		require.NoError(t, err)
		require.Empty(t, keys)

		keys, err = s.svc.List(s.ctx, s.owner)
		require.NoError(t, err)
		require.Nil(t, keys[0].RevokedAt, "the key survives")
	})
}

func TestServiceFailureMidTransactionWritesNothing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := setupService(t, d)
		// Take the audit table away so the audit row, written after the
		// key, fails.
		_, err := db.Exec(s.ctx, d, `ALTER TABLE audit_log RENAME TO audit_log_away`)
		require.NoError(t, err)
		_, _, err = s.svc.CreateKey(s.ctx, s.owner, "ci", teams.RoleMember, nil)
		require.Error(t, err)
		_, err = db.Exec(s.ctx, d, `ALTER TABLE audit_log_away RENAME TO audit_log`)
		require.NoError(t, err)

		require.Zero(t, countRows(t, s, `SELECT COUNT(*) FROM api_keys`), "no key without its audit row")
		require.Zero(t, countRows(t, s, `SELECT COUNT(*) FROM audit_log`))
	})
}
