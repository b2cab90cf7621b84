package members_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/members"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/validation"
)

// fixture is a shared team with one user in each role.
type fixture struct {
	db    *db.DB
	svc   *members.Service
	team  teams.Team
	users map[teams.Role]int64
}

func (f fixture) actor(role teams.Role) access.Actor {
	return access.Actor{UserID: f.users[role], TeamID: f.team.ID, Role: role}
}

func (f fixture) role(t *testing.T, role teams.Role) teams.Role {
	t.Helper()
	return f.roleOf(t, f.users[role])
}

func (f fixture) roleOf(t *testing.T, userID int64) teams.Role {
	t.Helper()
	m, err := teams.MembershipOf(context.Background(), f.db, f.team.ID, userID)
	require.NoError(t, err)
	return m.Role
}

func (f fixture) audited(t *testing.T, action string) int {
	t.Helper()
	var n int
	require.NoError(t, db.Get(context.Background(), f.db, &n, `SELECT COUNT(*) FROM audit_log WHERE action = ?`, action))
	return n
}

func addUser(t *testing.T, d *db.DB, email string) int64 {
	t.Helper()
	var id int64
	require.NoError(t, db.Get(context.Background(), d, &id,
		`INSERT INTO users (email, password_hash, created_at, updated_at) VALUES (?, 'x', ?, ?) RETURNING id`,
		email, db.Now(), db.Now()))
	return id
}

func setup(t *testing.T, d *db.DB) fixture {
	t.Helper()
	ctx := context.Background()
	team, err := teams.Create(ctx, d, "Acme", "acme", false)
	require.NoError(t, err)
	f := fixture{db: d, svc: &members.Service{DB: d}, team: team, users: map[teams.Role]int64{}}
	for _, r := range teams.Roles {
		f.users[r] = addUser(t, d, string(r)+"@example.com")
		require.NoError(t, teams.AddMember(ctx, d, team.ID, f.users[r], r))
	}
	return f
}

func requireField(t *testing.T, err error, field string) {
	t.Helper()
	var verrs validation.Errors
	require.ErrorAs(t, err, &verrs)
	require.NotEmpty(t, verrs[field], "want an error on %s, got %v", field, verrs)
}

func TestChangeRole(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := setup(t, d)

		require.NoError(t, f.svc.ChangeRole(ctx, f.actor(teams.RoleAdmin), f.users[teams.RoleViewer], "admin"))
		require.Equal(t, teams.RoleAdmin, f.role(t, teams.RoleViewer))
		require.Equal(t, 1, f.audited(t, "member.role_change"))
		require.NoError(t, f.svc.ChangeRole(ctx, f.actor(teams.RoleOwner), f.users[teams.RoleViewer], "viewer"))
		require.Equal(t, teams.RoleViewer, f.role(t, teams.RoleViewer))

		for _, tc := range []struct {
			name   string
			actor  teams.Role
			target int64
			role   string
			field  string
			err    error
		}{
			{name: "member lacks the permission", actor: teams.RoleMember, target: f.users[teams.RoleViewer], role: "member", err: access.ErrForbidden},
			{name: "viewer lacks the permission", actor: teams.RoleViewer, target: f.users[teams.RoleMember], role: "viewer", err: access.ErrForbidden},
			{name: "unknown role", actor: teams.RoleOwner, target: f.users[teams.RoleMember], role: "boss", field: "role"},
			{name: "empty role", actor: teams.RoleOwner, target: f.users[teams.RoleMember], role: "", field: "role"},
			{name: "nobody becomes owner this way", actor: teams.RoleOwner, target: f.users[teams.RoleMember], role: "owner", field: "role"},
			{name: "the owner is not demoted", actor: teams.RoleAdmin, target: f.users[teams.RoleOwner], role: "member", field: "user_id"},
			{name: "not a member", actor: teams.RoleOwner, target: 999999, role: "member", err: db.ErrNotFound},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := f.svc.ChangeRole(ctx, f.actor(tc.actor), tc.target, tc.role)
				if tc.err != nil {
					require.ErrorIs(t, err, tc.err)
				} else {
					requireField(t, err, tc.field)
				}
			})
		}
		require.Equal(t, teams.RoleOwner, f.role(t, teams.RoleOwner))
		require.Equal(t, teams.RoleMember, f.role(t, teams.RoleMember))
		require.Equal(t, 2, f.audited(t, "member.role_change"), "refusals write nothing")
	})
}

func TestRemoveAndLeave(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := setup(t, d)

		require.ErrorIs(t, f.svc.Remove(ctx, f.actor(teams.RoleMember), f.users[teams.RoleViewer]), access.ErrForbidden)
		requireField(t, f.svc.Remove(ctx, f.actor(teams.RoleAdmin), f.users[teams.RoleOwner]), "user_id")
		requireField(t, f.svc.Remove(ctx, f.actor(teams.RoleAdmin), f.users[teams.RoleAdmin]), "user_id")
		require.ErrorIs(t, f.svc.Remove(ctx, f.actor(teams.RoleAdmin), 999999), db.ErrNotFound)

		require.NoError(t, f.svc.Remove(ctx, f.actor(teams.RoleAdmin), f.users[teams.RoleViewer]))
		_, err := teams.MembershipOf(ctx, d, f.team.ID, f.users[teams.RoleViewer])
		require.ErrorIs(t, err, db.ErrNotFound)
		require.Equal(t, 1, f.audited(t, "member.remove"))
		require.ErrorIs(t, f.svc.Remove(ctx, f.actor(teams.RoleAdmin), f.users[teams.RoleViewer]), db.ErrNotFound, "already gone")

		requireField(t, f.svc.Leave(ctx, f.actor(teams.RoleOwner)), "user_id")
		require.Equal(t, teams.RoleOwner, f.role(t, teams.RoleOwner))
		require.NoError(t, f.svc.Leave(ctx, f.actor(teams.RoleMember)))
		_, err = teams.MembershipOf(ctx, d, f.team.ID, f.users[teams.RoleMember])
		require.ErrorIs(t, err, db.ErrNotFound)
		require.Equal(t, 1, f.audited(t, "member.leave"))
		require.ErrorIs(t, f.svc.Leave(ctx, access.Actor{APIKeyID: 1, TeamID: f.team.ID, Role: teams.RoleAdmin}), access.ErrForbidden)
	})
}

func TestTransferOwnership(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := setup(t, d)

		require.ErrorIs(t, f.svc.TransferOwnership(ctx, f.actor(teams.RoleAdmin), f.users[teams.RoleAdmin]), access.ErrForbidden)
		requireField(t, f.svc.TransferOwnership(ctx, f.actor(teams.RoleOwner), 0), "user_id")
		requireField(t, f.svc.TransferOwnership(ctx, f.actor(teams.RoleOwner), 999999), "user_id")
		requireField(t, f.svc.TransferOwnership(ctx, f.actor(teams.RoleOwner), f.users[teams.RoleOwner]), "user_id")

		require.NoError(t, f.svc.TransferOwnership(ctx, f.actor(teams.RoleOwner), f.users[teams.RoleViewer]))
		require.Equal(t, teams.RoleAdmin, f.role(t, teams.RoleOwner), "the old owner becomes an admin")
		require.Equal(t, teams.RoleOwner, f.role(t, teams.RoleViewer))
		require.Equal(t, 1, f.audited(t, "team.transfer"))

		personal, err := teams.CreatePersonal(ctx, d, f.users[teams.RoleMember], "member@example.com")
		require.NoError(t, err)
		require.NoError(t, teams.AddMember(ctx, d, personal.ID, f.users[teams.RoleAdmin], teams.RoleAdmin))
		err = f.svc.TransferOwnership(ctx, access.Actor{UserID: f.users[teams.RoleMember], TeamID: personal.ID, Role: teams.RoleOwner}, f.users[teams.RoleAdmin])
		requireField(t, err, "user_id")
	})
}

func TestDeleteTeam(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := setup(t, d)
		owner := f.actor(teams.RoleOwner)

		require.ErrorIs(t, f.svc.Delete(ctx, f.actor(teams.RoleAdmin), "Acme"), access.ErrForbidden)
		requireField(t, f.svc.Delete(ctx, owner, ""), "confirm")
		requireField(t, f.svc.Delete(ctx, owner, "acme"), "confirm")
		requireField(t, f.svc.Delete(ctx, owner, "Acme "), "confirm")

		personal, err := teams.CreatePersonal(ctx, d, f.users[teams.RoleOwner], "owner@example.com")
		require.NoError(t, err)
		err = f.svc.Delete(ctx, access.Actor{UserID: f.users[teams.RoleOwner], TeamID: personal.ID, Role: teams.RoleOwner}, personal.Name)
		requireField(t, err, "confirm")

		require.NoError(t, f.svc.Delete(ctx, owner, "Acme"))
		_, err = teams.ByID(ctx, d, f.team.ID)
		require.ErrorIs(t, err, db.ErrNotFound)
		var n int
		require.NoError(t, db.Get(ctx, d, &n, `SELECT COUNT(*) FROM memberships WHERE team_id = ?`, f.team.ID))
		require.Zero(t, n, "memberships go with the team")
		require.Equal(t, 1, f.audited(t, "team.delete"))
		_, err = teams.ByID(ctx, d, personal.ID)
		require.NoError(t, err)
	})
}

// TestFailedAuditChangesNothing breaks the audit table, so that each
// operation fails at its last statement, and checks nothing changed.
func TestFailedAuditChangesNothing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := setup(t, d)
		owner := f.actor(teams.RoleOwner)
		_, err := db.Exec(ctx, d, `ALTER TABLE audit_log RENAME TO audit_log_gone`)
		require.NoError(t, err)

		for name, op := range map[string]func() error{
			"change role": func() error { return f.svc.ChangeRole(ctx, owner, f.users[teams.RoleViewer], "admin") },
			"remove":      func() error { return f.svc.Remove(ctx, owner, f.users[teams.RoleViewer]) },
			"leave":       func() error { return f.svc.Leave(ctx, f.actor(teams.RoleViewer)) },
			"transfer":    func() error { return f.svc.TransferOwnership(ctx, owner, f.users[teams.RoleViewer]) },
			"delete":      func() error { return f.svc.Delete(ctx, owner, "Acme") },
		} {
			err := op()
			require.Error(t, err, name)
			require.Contains(t, err.Error(), "audit", name)
		}

		_, err = db.Exec(ctx, d, `ALTER TABLE audit_log_gone RENAME TO audit_log`)
		require.NoError(t, err)
		for _, r := range teams.Roles {
			require.Equal(t, r, f.role(t, r), fmt.Sprintf("%s keeps their role", r))
		}
		_, err = teams.ByID(ctx, d, f.team.ID)
		require.NoError(t, err, "the team is still there")
		var n int
		require.NoError(t, db.Get(ctx, d, &n, `SELECT COUNT(*) FROM audit_log`))
		require.Zero(t, n)
	})
}

func TestListAndGet(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := setup(t, d)

		list, err := f.svc.List(ctx, f.actor(teams.RoleViewer))
		require.NoError(t, err)
		require.Len(t, list, len(teams.Roles))
		require.Equal(t, f.users[teams.RoleOwner], list[0].UserID, "the owner first")

		m, err := f.svc.Get(ctx, f.actor(teams.RoleViewer), f.users[teams.RoleAdmin])
		require.NoError(t, err)
		require.Equal(t, "admin@example.com", m.Email)
		require.Equal(t, teams.RoleAdmin, m.Role)

		other, err := teams.Create(ctx, d, "Other", "other", false)
		require.NoError(t, err)
		stranger := access.Actor{UserID: addUser(t, d, "stranger@example.com"), TeamID: other.ID, Role: teams.RoleOwner}
		_, err = f.svc.Get(ctx, stranger, f.users[teams.RoleAdmin])
		require.ErrorIs(t, err, db.ErrNotFound, "another team's member is not found")
		_, err = f.svc.List(ctx, access.Actor{UserID: f.users[teams.RoleViewer], TeamID: f.team.ID, Role: "nobody"})
		require.ErrorIs(t, err, access.ErrForbidden)
		_, err = f.svc.Get(ctx, access.Actor{UserID: f.users[teams.RoleViewer], TeamID: f.team.ID, Role: "nobody"}, f.users[teams.RoleAdmin])
		require.ErrorIs(t, err, access.ErrForbidden)
	})
}
