package apikeys_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/apikeys"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/teams"
)

func TestKeys(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		team, err := teams.Create(ctx, d, "Acme", "acme", false)
		require.NoError(t, err)
		creator := addMember(t, d, team.ID, "creator@example.com", teams.RoleAdmin)

		key, secret, err := apikeys.Create(ctx, d, team.ID, "ci", teams.RoleMember, creator, nil)
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(secret, "nofx_"))
		require.True(t, strings.HasPrefix(secret, key.Prefix))
		require.Less(t, len(key.Prefix), len(secret))

		var stored int
		require.NoError(t, db.Get(ctx, d, &stored, `SELECT COUNT(*) FROM api_keys WHERE key_hash = ? OR prefix = ?`, secret, secret))
		require.Zero(t, stored, "the secret itself is never stored")

		got, gotTeam, err := apikeys.Authenticate(ctx, d, secret)
		require.NoError(t, err)
		require.Equal(t, key.ID, got.ID)
		want, err := teams.ByID(ctx, d, team.ID)
		require.NoError(t, err)
		require.Equal(t, want.ID, gotTeam.ID, "the key's team comes in the same read")
		gotTeam.CreatedAt, want.CreatedAt = gotTeam.CreatedAt.UTC(), want.CreatedAt.UTC()
		require.Equal(t, want, gotTeam)
		require.Equal(t, teams.RoleMember, got.Role)
		require.NotNil(t, got.LastUsedAt)

		for _, bad := range []string{"", "nofx_", "nofx_nope", "bearer " + secret, secret + "x"} {
			_, _, err := apikeys.Authenticate(ctx, d, bad)
			require.ErrorIs(t, err, apikeys.ErrInvalid, "secret %q", bad)
		}

		require.NoError(t, apikeys.Revoke(ctx, d, team.ID, key.ID))
		_, _, err = apikeys.Authenticate(ctx, d, secret)
		require.ErrorIs(t, err, apikeys.ErrInvalid, "a revoked key is refused at once")
		require.ErrorIs(t, apikeys.Revoke(ctx, d, team.ID, key.ID), db.ErrNotFound)

		past := db.Now().Add(-time.Second)
		_, expired, err := apikeys.Create(ctx, d, team.ID, "old", teams.RoleViewer, creator, &past)
		require.NoError(t, err)
		_, _, err = apikeys.Authenticate(ctx, d, expired)
		require.ErrorIs(t, err, apikeys.ErrInvalid, "an expired key is refused")
	})
}
