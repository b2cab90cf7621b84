package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/templates"
	"github.com/nofxhq/nofx/internal/validation"
)

// teamSetup is a signed-up user and the service that seeds new teams the
// way the app does.
type teamSetup struct {
	ctx  context.Context
	db   *db.DB
	svc  *auth.Service
	user auth.User
}

func setupTeams(t *testing.T, d *db.DB) teamSetup {
	t.Helper()
	ctx := context.Background()
	svc := &auth.Service{DB: d, SeedTeam: templates.SeedStarters}
	user, _, err := svc.SignUp(ctx, auth.SignUp{Email: "lin@example.com", Password: "long enough pw"})
	require.NoError(t, err)
	return teamSetup{ctx: ctx, db: d, svc: svc, user: user}
}

// rows counts the rows of the tables a new team writes to.
func (s teamSetup) rows(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, table := range []string{"teams", "memberships", "templates", "template_versions", "audit_log"} {
		var n int
		require.NoError(t, db.Get(s.ctx, s.db, &n, `SELECT COUNT(*) FROM `+table))
		out[table] = n
	}
	return out
}

func TestCreateTeam(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := setupTeams(t, d)

		team, err := s.svc.CreateTeam(s.ctx, s.user.ID, "  Research & Ops  ")
		require.NoError(t, err)
		require.Equal(t, "Research & Ops", team.Name, "the name is trimmed")
		require.Equal(t, "research-ops", team.Slug)
		require.False(t, team.Personal)

		m, err := teams.MembershipOf(s.ctx, d, team.ID, s.user.ID)
		require.NoError(t, err)
		require.Equal(t, teams.RoleOwner, m.Role)
		members, err := teams.Members(s.ctx, d, team.ID)
		require.NoError(t, err)
		require.Len(t, members, 1, "the creator is the only member")

		owner := access.Actor{UserID: s.user.ID, TeamID: team.ID, Role: teams.RoleOwner}
		list, err := (&templates.Service{DB: d}).List(s.ctx, owner)
		require.NoError(t, err)
		require.Len(t, list, len(templates.Starters()), "the new team has the starter templates")
		require.Len(t, list, 3)

		entries, _, err := audit.List(s.ctx, d, team.ID, audit.Filter{Action: "team.create"})
		require.NoError(t, err)
		require.Len(t, entries, 1)
		require.Equal(t, "research-ops", entries[0].Target)
		require.Equal(t, "lin@example.com", entries[0].Actor)
		require.Equal(t, s.user.ID, *entries[0].ActorUserID)

		again, err := s.svc.CreateTeam(s.ctx, s.user.ID, "Research & Ops")
		require.NoError(t, err)
		require.NotEqual(t, team.ID, again.ID)
		require.NotEqual(t, team.Slug, again.Slug, "a repeated name gets a slug of its own")
		require.True(t, strings.HasPrefix(again.Slug, "research-ops-"), again.Slug)

		ms, err := teams.ForUser(s.ctx, d, s.user.ID)
		require.NoError(t, err)
		require.Len(t, ms, 3, "the personal team and the two new ones")
		require.True(t, ms[0].Personal, "the personal team stays first")
	})
}

func TestCreateTeamWritesNothingOnFailure(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := setupTeams(t, d)
		before := s.rows(t)

		for _, tc := range []struct {
			name, team, field string
		}{
			{"empty", "", "name"},
			{"blank", " \t ", "name"},
			{"too long", strings.Repeat("x", auth.MaxTeamNameLen+1), "name"},
			{"two lines", "Ops\nteam", "name"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := s.svc.CreateTeam(s.ctx, s.user.ID, tc.team)
				var verrs validation.Errors
				require.ErrorAs(t, err, &verrs)
				require.NotEmpty(t, verrs[tc.field], "errors: %v", verrs)
			})
		}
		require.Equal(t, before, s.rows(t), "refused names write nothing")

		// A failure inside the transaction (here, while seeding, after the
		// team, its owner and some templates exist) rolls it all back.
		boom := errors.New("seed failed")
		failing := &auth.Service{DB: d, SeedTeam: func(ctx context.Context, q db.Queryer, teamID int64, owner access.Actor) error {
			if err := templates.SeedStarters(ctx, q, teamID, owner); err != nil {
				return err
			}
			return boom
		}}
		_, err := failing.CreateTeam(s.ctx, s.user.ID, "Doomed")
		require.ErrorIs(t, err, boom)
		require.Equal(t, before, s.rows(t), "a failed create writes nothing")
		_, err = teams.BySlug(s.ctx, d, "doomed")
		require.ErrorIs(t, err, db.ErrNotFound)

		_, err = s.svc.CreateTeam(s.ctx, s.user.ID+1000, "Nobody's")
		require.ErrorIs(t, err, db.ErrNotFound, "an unknown user creates no team")
		require.Equal(t, before, s.rows(t))

		long := strings.Repeat("é", auth.MaxTeamNameLen)
		team, err := s.svc.CreateTeam(s.ctx, s.user.ID, long)
		require.NoError(t, err, "the limit counts characters, not bytes")
		require.Equal(t, long, team.Name)
	})
}
