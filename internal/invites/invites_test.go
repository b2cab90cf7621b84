package invites_test

import (
	"context"
	"errors"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/invites"
	"github.com/nofxhq/nofx/internal/mail"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/validation"
)

// capture is a mailer that keeps what it is given.
type capture struct {
	mu   sync.Mutex
	sent []mail.Message
	fail error
}

func (c *capture) Send(_ context.Context, m mail.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return c.fail
	}
	c.sent = append(c.sent, m)
	return nil
}

var linkRE = regexp.MustCompile(`https://nofx\.test/invites/([A-Za-z0-9_-]+)`)

// lastToken returns the token in the newest mail to to.
func (c *capture) lastToken(t *testing.T, to string) string {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.sent) - 1; i >= 0; i-- {
		if c.sent[i].To == to {
			m := linkRE.FindStringSubmatch(c.sent[i].Body)
			require.NotNil(t, m, "no link in %q", c.sent[i].Body)
			return m[1]
		}
	}
	t.Fatalf("no mail to %s", to)
	return ""
}

type fixture struct {
	d      *db.DB
	svc    *invites.Service
	mailer *capture
	auth   *auth.Service
	owner  access.Actor
	team   teams.Team
}

func setup(t *testing.T, d *db.DB) fixture {
	t.Helper()
	ctx := context.Background()
	a := &auth.Service{DB: d}
	u, team, err := a.SignUp(ctx, auth.SignUp{Email: "owner@example.com", Password: "correct horse battery"})
	require.NoError(t, err)
	m := &capture{}
	return fixture{
		d: d, mailer: m, auth: a, team: team,
		svc:   &invites.Service{DB: d, Mailer: m, BaseURL: "https://nofx.test/"},
		owner: access.Actor{UserID: u.ID, TeamID: team.ID, Role: teams.RoleOwner},
	}
}

func (f fixture) user(t *testing.T, email string) auth.User {
	t.Helper()
	u, _, err := f.auth.SignUp(context.Background(), auth.SignUp{Email: email, Password: "correct horse battery"})
	require.NoError(t, err)
	return u
}

func TestInviteAndAccept(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := setup(t, d)

		inv, err := f.svc.Invite(ctx, f.owner, "  Alice@Example.com ", teams.RoleAdmin)
		require.NoError(t, err)
		require.Equal(t, "alice@example.com", inv.Email)
		require.Equal(t, teams.RoleAdmin, inv.Role)
		require.WithinDuration(t, time.Now().Add(invites.TTL), inv.ExpiresAt, time.Minute)
		token := f.mailer.lastToken(t, "alice@example.com")

		// Only the hash is stored.
		var stored string
		require.NoError(t, db.Get(ctx, d, &stored, `SELECT token_hash FROM invites WHERE id = ?`, inv.ID))
		require.Equal(t, auth.HashToken(token), stored)
		require.NotEqual(t, token, stored)

		list, err := f.svc.List(ctx, f.owner)
		require.NoError(t, err)
		require.Len(t, list, 1)

		got, err := f.svc.Lookup(ctx, token)
		require.NoError(t, err)
		require.Equal(t, f.team.Name, got.TeamName)

		// Another address cannot accept.
		bob := f.user(t, "bob@example.com")
		_, err = f.svc.Accept(ctx, token, bob.ID)
		require.ErrorIs(t, err, invites.ErrWrongEmail)

		alice := f.user(t, "ALICE@example.com")
		_, err = f.svc.Accept(ctx, token, alice.ID)
		require.NoError(t, err)
		m, err := teams.MembershipOf(ctx, d, f.team.ID, alice.ID)
		require.NoError(t, err)
		require.Equal(t, teams.RoleAdmin, m.Role)

		// Single use.
		_, err = f.svc.Accept(ctx, token, alice.ID)
		require.ErrorIs(t, err, invites.ErrUsed)
		_, err = f.svc.Lookup(ctx, token)
		require.ErrorIs(t, err, invites.ErrUsed)
		list, err = f.svc.List(ctx, f.owner)
		require.NoError(t, err)
		require.Empty(t, list)

		for _, action := range []string{"invite.create", "invite.accept"} {
			entries, err := audit.Recent(ctx, d, action, 10)
			require.NoError(t, err)
			require.Len(t, entries, 1, action)
		}

		// Already a member.
		_, err = f.svc.Invite(ctx, f.owner, "alice@example.com", teams.RoleViewer)
		var verrs validation.Errors
		require.ErrorAs(t, err, &verrs)
		require.Contains(t, verrs, "email")
	})
}

func TestInviteRefusals(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := setup(t, d)
		admin := f.owner
		admin.Role = teams.RoleAdmin
		member := f.owner
		member.Role = teams.RoleMember

		_, err := f.svc.Invite(ctx, member, "x@example.com", teams.RoleViewer)
		require.ErrorIs(t, err, access.ErrForbidden)
		_, err = f.svc.List(ctx, member)
		require.ErrorIs(t, err, access.ErrForbidden)

		for name, tc := range map[string]struct {
			actor access.Actor
			email string
			role  teams.Role
			field string
		}{
			"bad email":       {f.owner, "not-an-email", teams.RoleMember, "email"},
			"empty email":     {f.owner, "", teams.RoleMember, "email"},
			"owner role":      {f.owner, "x@example.com", teams.RoleOwner, "role"},
			"unknown role":    {f.owner, "x@example.com", "boss", "role"},
			"above own":       {admin, "x@example.com", teams.RoleOwner, "role"},
			"existing member": {f.owner, "owner@example.com", teams.RoleMember, "email"},
		} {
			_, err := f.svc.Invite(ctx, tc.actor, tc.email, tc.role)
			var verrs validation.Errors
			require.ErrorAs(t, err, &verrs, name)
			require.Contains(t, verrs, tc.field, name)
		}
		_, err = f.svc.Invite(ctx, admin, "x@example.com", teams.RoleAdmin)
		require.NoError(t, err)

		// A failed mail keeps the invitation and says so.
		f.mailer.fail = errors.New("smtp down")
		_, err = f.svc.Invite(ctx, f.owner, "y@example.com", teams.RoleMember)
		require.ErrorIs(t, err, invites.ErrNotSent)
		list, err := f.svc.List(ctx, f.owner)
		require.NoError(t, err)
		require.Len(t, list, 2)
	})
}

func TestReplaceRevokeResendExpire(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := setup(t, d)

		_, err := f.svc.Invite(ctx, f.owner, "carol@example.com", teams.RoleViewer)
		require.NoError(t, err)
		first := f.mailer.lastToken(t, "carol@example.com")
		inv, err := f.svc.Invite(ctx, f.owner, "carol@example.com", teams.RoleMember)
		require.NoError(t, err)
		second := f.mailer.lastToken(t, "carol@example.com")

		// The pending invitation was replaced.
		_, err = f.svc.Lookup(ctx, first)
		require.ErrorIs(t, err, invites.ErrRevoked)
		list, err := f.svc.List(ctx, f.owner)
		require.NoError(t, err)
		require.Len(t, list, 1)
		require.Equal(t, teams.RoleMember, list[0].Role)

		// Expiry, then resend gives a new link and a new week.
		_, err = db.Exec(ctx, d, `UPDATE invites SET expires_at = ? WHERE id = ?`, db.Now().Add(-time.Hour), inv.ID)
		require.NoError(t, err)
		_, err = f.svc.Lookup(ctx, second)
		require.ErrorIs(t, err, invites.ErrExpired)
		carol := f.user(t, "carol@example.com")
		_, err = f.svc.Accept(ctx, second, carol.ID)
		require.ErrorIs(t, err, invites.ErrExpired)

		member := f.owner
		member.Role = teams.RoleMember
		_, err = f.svc.Resend(ctx, member, inv.ID)
		require.ErrorIs(t, err, access.ErrForbidden)
		resent, err := f.svc.Resend(ctx, f.owner, inv.ID)
		require.NoError(t, err)
		require.True(t, resent.ExpiresAt.After(time.Now().Add(invites.TTL-time.Minute)))
		third := f.mailer.lastToken(t, "carol@example.com")
		require.NotEqual(t, second, third)
		_, err = f.svc.Lookup(ctx, second)
		require.ErrorIs(t, err, invites.ErrUnknown)
		_, err = f.svc.Lookup(ctx, third)
		require.NoError(t, err)

		// Another team cannot see, revoke or resend it.
		other := f.user(t, "other@example.com")
		otherTeams, err := teams.ForUser(ctx, d, other.ID)
		require.NoError(t, err)
		stranger := access.Actor{UserID: other.ID, TeamID: otherTeams[0].ID, Role: teams.RoleOwner}
		require.ErrorIs(t, f.svc.Revoke(ctx, stranger, inv.ID), db.ErrNotFound)
		_, err = f.svc.Resend(ctx, stranger, inv.ID)
		require.ErrorIs(t, err, db.ErrNotFound)

		require.ErrorIs(t, f.svc.Revoke(ctx, member, inv.ID), access.ErrForbidden)
		require.NoError(t, f.svc.Revoke(ctx, f.owner, inv.ID))
		require.ErrorIs(t, f.svc.Revoke(ctx, f.owner, inv.ID), db.ErrNotFound)
		_, err = f.svc.Lookup(ctx, third)
		require.ErrorIs(t, err, invites.ErrRevoked)
		_, err = f.svc.Accept(ctx, third, carol.ID)
		require.ErrorIs(t, err, invites.ErrRevoked)
		_, err = f.svc.Lookup(ctx, "nonsense")
		require.ErrorIs(t, err, invites.ErrUnknown)

		for _, action := range []string{"invite.revoke", "invite.resend"} {
			entries, err := audit.Recent(ctx, d, action, 10)
			require.NoError(t, err)
			require.Len(t, entries, 1, action)
		}
	})
}

func TestOutboxMailIsWrittenInTheTransaction(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := setup(t, d)
		f.svc.Mailer = &mail.Outbox{DB: d}
		_, err := f.svc.Invite(ctx, f.owner, "dan@example.com", teams.RoleMember)
		require.NoError(t, err)
		msgs, err := mail.List(ctx, d, 10)
		require.NoError(t, err)
		require.Len(t, msgs, 1)
		require.Equal(t, "dan@example.com", msgs[0].To)
		require.Regexp(t, linkRE, msgs[0].Body)

		// A refused invitation writes no mail.
		_, err = f.svc.Invite(ctx, f.owner, "owner@example.com", teams.RoleMember)
		require.Error(t, err)
		msgs, err = mail.List(ctx, d, 10)
		require.NoError(t, err)
		require.Len(t, msgs, 1)
	})
}

// A configured public address wins over the address of the request, which
// a client can forge with its Host header.
func TestConfiguredBaseURLWins(t *testing.T) {
	t.Parallel()
	f := setup(t, dbtest.SQLite(t))
	ctx := invites.WithBaseURL(context.Background(), "https://evil.example")
	_, err := f.svc.Invite(ctx, f.owner, "bob@example.com", teams.RoleMember)
	require.NoError(t, err)
	require.NotEmpty(t, f.mailer.lastToken(t, "bob@example.com"), "the link starts with https://nofx.test/")

	f.svc.BaseURL = ""
	_, err = f.svc.Invite(ctx, f.owner, "carol@example.com", teams.RoleMember)
	require.NoError(t, err)
	f.mailer.mu.Lock()
	defer f.mailer.mu.Unlock()
	require.Contains(t, f.mailer.sent[len(f.mailer.sent)-1].Body, "https://evil.example/invites/", "without one, the request's address is used")
}
