package auth_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/validation"
)

func TestPasswordHash(t *testing.T) {
	t.Parallel()
	h, err := auth.HashPassword("correct horse battery")
	require.NoError(t, err)
	require.Contains(t, h, "$argon2id$v=19$")

	ok, err := auth.CheckPassword(h, "correct horse battery")
	require.NoError(t, err)
	require.True(t, ok)

	ok, err = auth.CheckPassword(h, "Correct horse battery")
	require.NoError(t, err)
	require.False(t, ok)

	h2, err := auth.HashPassword("correct horse battery")
	require.NoError(t, err)
	require.NotEqual(t, h, h2, "each hash has its own salt")

	_, err = auth.CheckPassword("$bcrypt$whatever", "x")
	require.Error(t, err)
}

func TestSignUp(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		svc := &auth.Service{DB: d}

		first, team, err := svc.SignUp(ctx, auth.SignUp{Email: "  Ada@Example.com ", Name: "Ada", Password: "long enough pw"})
		require.NoError(t, err)
		require.Equal(t, "ada@example.com", first.Email)
		require.True(t, first.IsSiteAdmin, "the first user is the site admin")
		require.True(t, team.Personal)
		require.Equal(t, "ada", team.Slug)

		m, err := teams.MembershipOf(ctx, d, team.ID, first.ID)
		require.NoError(t, err)
		require.Equal(t, teams.RoleOwner, m.Role)

		second, team2, err := svc.SignUp(ctx, auth.SignUp{Email: "ada@example.org", Password: "long enough pw"})
		require.NoError(t, err)
		require.False(t, second.IsSiteAdmin)
		require.NotEqual(t, team.Slug, team2.Slug, "team slugs are unique")
		require.Contains(t, team2.Slug, "ada-")

		_, _, err = svc.SignUp(ctx, auth.SignUp{Email: "ADA@example.COM", Password: "long enough pw"})
		var verrs validation.Errors
		require.ErrorAs(t, err, &verrs)
		require.Contains(t, verrs["email"], "already exists")

		n, err := auth.CountUsers(ctx, d)
		require.NoError(t, err)
		require.Equal(t, 2, n, "a refused sign-up writes nothing")
	})
}

func TestSignUpValidation(t *testing.T) {
	t.Parallel()
	d := dbtest.SQLite(t)
	svc := &auth.Service{DB: d}
	for _, tc := range []struct {
		name, email, password, field string
	}{
		{"empty email", "", "long enough pw", "email"},
		{"no at", "ada.example.com", "long enough pw", "email"},
		{"no domain dot", "ada@localhost", "long enough pw", "email"},
		{"display name form", "Ada <ada@example.com>", "long enough pw", "email"},
		{"short password", "ada@example.com", "short", "password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := svc.SignUp(context.Background(), auth.SignUp{Email: tc.email, Password: tc.password})
			var verrs validation.Errors
			require.ErrorAs(t, err, &verrs)
			require.NotEmpty(t, verrs[tc.field], "errors: %v", verrs)
		})
	}
}

func TestAuthenticateAndSessions(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		svc := &auth.Service{DB: d}
		user, team, err := svc.SignUp(ctx, auth.SignUp{Email: "grace@example.com", Password: "first password"})
		require.NoError(t, err)

		_, err = svc.Authenticate(ctx, "grace@example.com", "wrong password")
		require.ErrorIs(t, err, auth.ErrInvalidCredentials)
		_, err = svc.Authenticate(ctx, "nobody@example.com", "first password")
		require.ErrorIs(t, err, auth.ErrInvalidCredentials)
		got, err := svc.Authenticate(ctx, "GRACE@example.com", "first password")
		require.NoError(t, err)
		require.Equal(t, user.ID, got.ID)

		token, err := svc.StartSession(ctx, user.ID, "", "127.0.0.1", "test")
		require.NoError(t, err)
		sess, u, err := svc.ResolveSession(ctx, token)
		require.NoError(t, err)
		require.Equal(t, user.ID, u.ID)
		require.Equal(t, team.ID, sess.TeamID.Int64, "a session starts on the user's personal team")

		rotated, err := svc.StartSession(ctx, user.ID, token, "127.0.0.1", "test")
		require.NoError(t, err)
		require.NotEqual(t, token, rotated)
		_, _, err = svc.ResolveSession(ctx, token)
		require.ErrorIs(t, err, db.ErrNotFound, "the old session id is gone after log-in")

		other, err := svc.StartSession(ctx, user.ID, "", "127.0.0.1", "other browser")
		require.NoError(t, err)

		err = svc.ChangePassword(ctx, user.ID, rotated, "not it", "second password")
		var verrs validation.Errors
		require.ErrorAs(t, err, &verrs)
		require.Contains(t, verrs, "current_password")
		err = svc.ChangePassword(ctx, user.ID, rotated, "first password", "short")
		require.ErrorAs(t, err, &verrs)
		require.Contains(t, verrs, "new_password")

		require.NoError(t, svc.ChangePassword(ctx, user.ID, rotated, "first password", "second password"))
		_, err = svc.Authenticate(ctx, "grace@example.com", "second password")
		require.NoError(t, err)
		_, _, err = svc.ResolveSession(ctx, other)
		require.ErrorIs(t, err, db.ErrNotFound, "changing the password ends other sessions")
		_, _, err = svc.ResolveSession(ctx, rotated)
		require.NoError(t, err, "but keeps this one")

		require.NoError(t, svc.EndSession(ctx, user.ID, rotated))
		_, _, err = svc.ResolveSession(ctx, rotated)
		require.ErrorIs(t, err, db.ErrNotFound)
	})
}

func TestSwitchTeam(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		svc := &auth.Service{DB: d}
		ada, _, err := svc.SignUp(ctx, auth.SignUp{Email: "ada@example.com", Password: "long enough pw"})
		require.NoError(t, err)
		_, bobTeam, err := svc.SignUp(ctx, auth.SignUp{Email: "bob@example.com", Password: "long enough pw"})
		require.NoError(t, err)
		shared, err := teams.Create(ctx, d, "Shared", "shared", false)
		require.NoError(t, err)
		require.NoError(t, teams.AddMember(ctx, d, shared.ID, ada.ID, teams.RoleMember))

		token, err := svc.StartSession(ctx, ada.ID, "", "", "")
		require.NoError(t, err)
		require.NoError(t, svc.SwitchTeam(ctx, token, ada.ID, shared.ID))
		sess, _, err := svc.ResolveSession(ctx, token)
		require.NoError(t, err)
		require.Equal(t, shared.ID, sess.TeamID.Int64)

		err = svc.SwitchTeam(ctx, token, ada.ID, bobTeam.ID)
		require.ErrorIs(t, err, db.ErrNotFound, "another user's team cannot be chosen")

		ms, err := teams.ForUser(ctx, d, ada.ID)
		require.NoError(t, err)
		require.Len(t, ms, 2)
		require.True(t, ms[0].Personal, "the personal team comes first")
		members, err := teams.Members(ctx, d, shared.ID)
		require.NoError(t, err)
		require.Len(t, members, 1)
		require.Equal(t, "ada@example.com", members[0].Email)
	})
}

func TestAccountChangesAreAudited(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := audit.WithRequest(context.Background(), audit.RequestInfo{IP: "203.0.113.7", UserAgent: "test-agent", RequestID: "req-1"})
		svc := &auth.Service{DB: d}
		user, team, err := svc.SignUp(ctx, auth.SignUp{Email: "aud@example.com", Password: "long enough pw"})
		require.NoError(t, err)
		_, err = svc.Authenticate(ctx, "aud@example.com", "wrong password!")
		require.ErrorIs(t, err, auth.ErrInvalidCredentials)
		_, err = svc.Authenticate(ctx, "nobody@example.com", "wrong password!")
		require.ErrorIs(t, err, auth.ErrInvalidCredentials)
		token, err := svc.StartSession(ctx, user.ID, "", "", "")
		require.NoError(t, err)
		require.NoError(t, svc.ChangePassword(ctx, user.ID, token, "long enough pw", "another long pw"))
		require.NoError(t, svc.EndSession(ctx, user.ID, token))

		var rows []struct {
			Action    string        `db:"action"`
			Actor     string        `db:"actor"`
			TeamID    sql.NullInt64 `db:"team_id"`
			IP        string        `db:"ip"`
			RequestID string        `db:"request_id"`
		}
		require.NoError(t, db.Select(ctx, d, &rows, `SELECT action, actor, team_id, ip, request_id FROM audit_log ORDER BY id`))
		var actions []string
		for _, r := range rows {
			actions = append(actions, r.Action)
			require.Equal(t, "203.0.113.7", r.IP)
			require.Equal(t, "req-1", r.RequestID)
		}
		require.Equal(t, []string{"user.signup", "user.login_failed", "user.login_failed", "user.login", "user.password_change", "user.logout"}, actions)
		require.Equal(t, "aud@example.com", rows[0].Actor, "the actor's name is kept")
		require.Equal(t, team.ID, rows[0].TeamID.Int64)

		// A sign-up that fails part-way writes neither the user nor its audit row.
		_, _, err = svc.SignUp(ctx, auth.SignUp{Email: "aud@example.com", Password: "long enough pw"})
		require.Error(t, err)
		var n int
		require.NoError(t, db.Get(ctx, d, &n, `SELECT COUNT(*) FROM audit_log WHERE action = 'user.signup'`))
		require.Equal(t, 1, n)
	})
}

func TestUpdateProfile(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		svc := &auth.Service{DB: d}
		user, _, err := svc.SignUp(ctx, auth.SignUp{Email: "ada@example.com", Password: "long enough pw"})
		require.NoError(t, err)
		_, _, err = svc.SignUp(ctx, auth.SignUp{Email: "taken@example.com", Password: "long enough pw"})
		require.NoError(t, err)
		audited := func() int {
			var n int
			require.NoError(t, db.Get(ctx, d, &n, `SELECT COUNT(*) FROM audit_log WHERE action = 'user.profile_change'`))
			return n
		}
		field := func(err error, name, want string) {
			t.Helper()
			var errs validation.Errors
			require.ErrorAs(t, err, &errs)
			require.Contains(t, errs[name], want, "%v", errs)
		}

		// The name alone needs no password.
		got, err := svc.UpdateProfile(ctx, user.ID, auth.Profile{Name: "  Ada Lovelace ", Email: "ada@example.com"})
		require.NoError(t, err)
		require.Equal(t, "Ada Lovelace", got.Name)
		require.Equal(t, 1, audited())

		// The email needs the current password, and must be free and valid.
		_, err = svc.UpdateProfile(ctx, user.ID, auth.Profile{Name: "Ada", Email: "countess@example.com"})
		field(err, "current_password", "Enter your current password")
		_, err = svc.UpdateProfile(ctx, user.ID, auth.Profile{Name: "Ada", Email: "countess@example.com", CurrentPassword: "not my password"})
		field(err, "current_password", "not your current password")
		_, err = svc.UpdateProfile(ctx, user.ID, auth.Profile{Name: "Ada", Email: "Taken@Example.com", CurrentPassword: "long enough pw"})
		field(err, "email", "Another account")
		_, err = svc.UpdateProfile(ctx, user.ID, auth.Profile{Name: "Ada", Email: "not an email"})
		field(err, "email", "like name@example.com")
		_, err = svc.UpdateProfile(ctx, user.ID, auth.Profile{Name: strings.Repeat("n", auth.MaxNameChars+1), Email: "ada@example.com"})
		field(err, "name", "at most")
		same, err := auth.UserByID(ctx, d, user.ID)
		require.NoError(t, err)
		require.Equal(t, "Ada Lovelace", same.Name, "a refused change writes nothing")
		require.Equal(t, "ada@example.com", same.Email)
		require.Equal(t, 1, audited())

		here, err := svc.StartSession(ctx, user.ID, "", "", "")
		require.NoError(t, err)
		elsewhere, err := svc.StartSession(ctx, user.ID, "", "", "")
		require.NoError(t, err)
		got, err = svc.UpdateProfile(ctx, user.ID, auth.Profile{Name: "Ada", Email: " Countess@Example.com ", CurrentPassword: "long enough pw", KeepToken: here})
		require.NoError(t, err)
		_, _, err = svc.ResolveSession(ctx, here)
		require.NoError(t, err, "the session that asked stays signed in")
		_, _, err = svc.ResolveSession(ctx, elsewhere)
		require.Error(t, err, "a new email signs out the other sessions")
		require.Equal(t, "countess@example.com", got.Email)
		_, err = svc.Authenticate(ctx, "countess@example.com", "long enough pw")
		require.NoError(t, err, "the new email signs in")
		_, err = svc.Authenticate(ctx, "ada@example.com", "long enough pw")
		require.ErrorIs(t, err, auth.ErrInvalidCredentials)
		require.Equal(t, 2, audited())

		// Nothing changed, nothing written.
		_, err = svc.UpdateProfile(ctx, user.ID, auth.Profile{Name: "Ada", Email: "countess@example.com"})
		require.NoError(t, err)
		require.Equal(t, 2, audited())
	})
}
