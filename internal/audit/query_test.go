package audit_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/teams"
)

// logSetup is two teams and a few entries in each.
type logSetup struct {
	d          *db.DB
	team       int64
	other      int64
	jan, march time.Time
}

func setupLog(t *testing.T, d *db.DB) logSetup {
	t.Helper()
	ctx := context.Background()
	a, err := teams.Create(ctx, d, "Alpha", "alpha", false)
	require.NoError(t, err)
	b, err := teams.Create(ctx, d, "Beta", "beta", false)
	require.NoError(t, err)
	s := logSetup{d: d, team: a.ID, other: b.ID,
		jan: time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC), march: time.Date(2026, 3, 10, 9, 30, 0, 0, time.UTC)}
	for _, e := range []audit.Entry{
		{TeamID: &a.ID, Actor: "Ann@Example.com", Action: "run.created", Target: "run #1", CreatedAt: s.jan},
		{TeamID: &a.ID, Actor: "bob@example.com", Action: "run.cancelled", Target: "run #1", CreatedAt: s.jan},
		{TeamID: &a.ID, Actor: "ann@example.com", Action: "runner.started", Target: "Template 50%_off", CreatedAt: s.march},
		{TeamID: &a.ID, Actor: "ci key", Action: "provider_key.set", Target: "anthropic", CreatedAt: s.march},
		{TeamID: &b.ID, Actor: "ann@example.com", Action: "run.created", Target: "run #9", CreatedAt: s.jan},
		{Actor: "admin@example.com", Action: "circuit.reset", Target: "openai", CreatedAt: s.jan},
	} {
		require.NoError(t, audit.Record(ctx, d, e))
	}
	return s
}

func actions(entries []audit.Entry) []string {
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.Action)
	}
	return out
}

func TestListFilters(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := setupLog(t, d)
		ctx := context.Background()
		for _, tc := range []struct {
			name string
			f    audit.Filter
			want []string
		}{
			{"all of the team's, newest first", audit.Filter{}, []string{"provider_key.set", "runner.started", "run.cancelled", "run.created"}},
			{"actor substring, any case", audit.Filter{Actor: "ANN@"}, []string{"runner.started", "run.created"}},
			{"action exact", audit.Filter{Action: "run.created"}, []string{"run.created"}},
			{"action exact is not a prefix", audit.Filter{Action: "run"}, []string{}},
			{"action prefix with a dot", audit.Filter{Action: "run."}, []string{"run.cancelled", "run.created"}},
			{"target substring, any case", audit.Filter{Target: "ANTHROP"}, []string{"provider_key.set"}},
			{"from a date", audit.Filter{From: s.march.Truncate(24 * time.Hour)}, []string{"provider_key.set", "runner.started"}},
			{"to a date", audit.Filter{To: s.march.Truncate(24 * time.Hour)}, []string{"run.cancelled", "run.created"}},
			{"percent is literal", audit.Filter{Target: "50%_"}, []string{"runner.started"}},
			{"percent alone matches only a percent", audit.Filter{Target: "%"}, []string{"runner.started"}},
			{"underscore is literal", audit.Filter{Actor: "_"}, []string{}},
			{"backslash is literal", audit.Filter{Target: `\`}, []string{}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, next, err := audit.List(ctx, d, s.team, tc.f)
				require.NoError(t, err)
				require.Zero(t, next)
				require.Equal(t, tc.want, actions(got))
				for _, e := range got {
					require.Equal(t, s.team, *e.TeamID)
				}
			})
		}
	})
}

func TestListPagesAndHidesOtherTeams(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := setupLog(t, d)
		ctx := context.Background()

		var seen []string
		before, pages := int64(0), 0
		for {
			got, next, err := audit.List(ctx, d, s.team, audit.Filter{Limit: 3, Before: before})
			require.NoError(t, err)
			require.LessOrEqual(t, len(got), 3)
			seen = append(seen, actions(got)...)
			pages++
			if next == 0 {
				break
			}
			require.Equal(t, got[len(got)-1].ID, next)
			before = next
		}
		require.Equal(t, 2, pages)
		require.Equal(t, []string{"provider_key.set", "runner.started", "run.cancelled", "run.created"}, seen)

		other, _, err := audit.List(ctx, d, s.other, audit.Filter{})
		require.NoError(t, err)
		require.Len(t, other, 1)
		require.Equal(t, "run #9", other[0].Target)

		got, _, err := audit.List(ctx, d, s.team, audit.Filter{Target: "run #9"})
		require.NoError(t, err)
		require.Empty(t, got, "another team's rows are invisible")

		acts, err := audit.Actions(ctx, d, s.team)
		require.NoError(t, err)
		require.Equal(t, []string{"provider_key.set", "run.cancelled", "run.created", "runner.started"}, acts)
	})
}

func TestListForChecksTheActor(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := setupLog(t, d)
		ctx := context.Background()
		got, _, err := audit.ListFor(ctx, d, access.Actor{UserID: 1, TeamID: s.team, Role: teams.RoleViewer}, audit.Filter{})
		require.NoError(t, err)
		require.Len(t, got, 4)

		_, _, err = audit.ListFor(ctx, d, access.Actor{UserID: 1, TeamID: s.team, Role: teams.Role("stranger")}, audit.Filter{})
		require.ErrorIs(t, err, access.ErrForbidden)

		// The service the pages read through holds to the same.
		svc := &audit.Service{DB: d}
		viewer := access.Actor{UserID: 1, TeamID: s.team, Role: teams.RoleViewer}
		got, _, err = svc.List(ctx, viewer, audit.Filter{})
		require.NoError(t, err)
		require.Len(t, got, 4)
		acts, err := svc.Actions(ctx, viewer)
		require.NoError(t, err)
		require.Equal(t, []string{"provider_key.set", "run.cancelled", "run.created", "runner.started"}, acts)
		stranger := access.Actor{UserID: 1, TeamID: s.team, Role: teams.Role("stranger")}
		_, _, err = svc.List(ctx, stranger, audit.Filter{})
		require.ErrorIs(t, err, access.ErrForbidden)
		_, err = svc.Actions(ctx, stranger)
		require.ErrorIs(t, err, access.ErrForbidden)
	})
}
