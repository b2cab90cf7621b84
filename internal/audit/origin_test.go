package audit_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/teams"
)

// TestListForShowsOriginToAdminsOnly checks that viewers and members read
// the log without where each change came from, and admins and owners with.
func TestListForShowsOriginToAdminsOnly(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		team, err := teams.Create(ctx, d, "Alpha", "alpha", false)
		require.NoError(t, err)
		require.NoError(t, audit.Record(ctx, d, audit.Entry{TeamID: &team.ID, Actor: "ann@example.com", Action: "member.remove",
			Target: "bob@example.com", IP: "203.0.113.7", UserAgent: "AnnBrowser/1.0", RequestID: "req-1"}))

		for _, tc := range []struct {
			role teams.Role
			sees bool
		}{
			{teams.RoleOwner, true},
			{teams.RoleAdmin, true},
			{teams.RoleMember, false},
			{teams.RoleViewer, false},
		} {
			t.Run(string(tc.role), func(t *testing.T) {
				for _, a := range []access.Actor{
					{UserID: 1, TeamID: team.ID, Role: tc.role},
					{APIKeyID: 1, TeamID: team.ID, Role: tc.role},
				} {
					require.Equal(t, tc.sees, audit.ShowsOrigin(a))
					got, _, err := audit.ListFor(ctx, d, a, audit.Filter{})
					require.NoError(t, err)
					require.Len(t, got, 1)
					require.Equal(t, "member.remove", got[0].Action, "the change itself is shown to every reader")
					require.Equal(t, "req-1", got[0].RequestID)
					if tc.sees {
						require.Equal(t, "203.0.113.7", got[0].IP)
						require.Equal(t, "AnnBrowser/1.0", got[0].UserAgent)
					} else {
						require.Empty(t, got[0].IP)
						require.Empty(t, got[0].UserAgent)
					}
				}
			})
		}
	})
}
