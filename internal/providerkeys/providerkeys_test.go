package providerkeys_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/providerkeys"
	"github.com/nofxhq/nofx/internal/secrets"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/validation"
)

func TestTeamKeys(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		box, err := secrets.New(bytes.Repeat([]byte{1}, 32))
		require.NoError(t, err)
		svc := &providerkeys.Service{DB: d, Box: box, Providers: []string{"anthropic", "openai"}}
		team, err := teams.Create(ctx, d, "Acme", "acme", false)
		require.NoError(t, err)
		other, err := teams.Create(ctx, d, "Other", "other", false)
		require.NoError(t, err)
		owner := access.Actor{TeamID: team.ID, Role: teams.RoleOwner}

		key, err := svc.Resolve(ctx, team.ID, "anthropic")
		require.NoError(t, err)
		require.Empty(t, key, "no team key: the instance's applies")

		require.NoError(t, svc.Set(ctx, owner, "anthropic", "sk-ant-api03-secret-1234"))
		key, err = svc.Resolve(ctx, team.ID, "anthropic")
		require.NoError(t, err)
		require.Equal(t, "sk-ant-api03-secret-1234", key)

		var stored string
		require.NoError(t, db.Get(ctx, d, &stored, `SELECT sealed FROM provider_keys WHERE team_id = ?`, team.ID))
		require.NotContains(t, stored, "secret-1234", "encrypted at rest")

		keys, err := svc.List(ctx, owner)
		require.NoError(t, err)
		require.Equal(t, []string{"anthropic"}, []string{keys[0].Provider})
		require.Equal(t, "…1234", keys[0].Hint, "only a hint is ever shown again")

		key, err = svc.Resolve(ctx, other.ID, "anthropic")
		require.NoError(t, err)
		require.Empty(t, key, "keys are per team")
		// A sealed key copied to another team's row does not open.
		_, err = db.Exec(ctx, d, `INSERT INTO provider_keys (team_id, provider, sealed, hint, created_at) VALUES (?, 'anthropic', ?, 'x', ?)`, other.ID, stored, db.Now())
		require.NoError(t, err)
		_, err = svc.Resolve(ctx, other.ID, "anthropic")
		require.ErrorIs(t, err, secrets.ErrUndecryptable)

		require.NoError(t, svc.Set(ctx, owner, "anthropic", "sk-ant-api03-replaced-9999"))
		key, err = svc.Resolve(ctx, team.ID, "anthropic")
		require.NoError(t, err)
		require.Equal(t, "sk-ant-api03-replaced-9999", key)

		var verrs validation.Errors
		require.ErrorAs(t, svc.Set(ctx, owner, "simulated", "whatever-key"), &verrs)
		require.Contains(t, verrs, "provider")
		require.ErrorAs(t, svc.Set(ctx, owner, "openai", "short"), &verrs)
		require.Contains(t, verrs, "key")

		member := access.Actor{TeamID: team.ID, Role: teams.RoleMember}
		require.ErrorIs(t, svc.Set(ctx, member, "openai", "sk-member-key-0000"), access.ErrForbidden)
		require.ErrorIs(t, svc.Delete(ctx, member, "anthropic"), access.ErrForbidden)

		require.NoError(t, svc.Delete(ctx, owner, "anthropic"))
		require.ErrorIs(t, svc.Delete(ctx, owner, "anthropic"), db.ErrNotFound)

		var audited int
		require.NoError(t, db.Get(ctx, d, &audited, `SELECT COUNT(*) FROM audit_log WHERE team_id = ? AND action LIKE 'provider_key.%'`, team.ID))
		require.Equal(t, 3, audited)
		var leaked int
		require.NoError(t, db.Get(ctx, d, &leaked, `SELECT COUNT(*) FROM audit_log WHERE summary LIKE '%secret%' OR summary LIKE '%replaced%'`))
		require.Zero(t, leaked, "the audit log never holds a key")
	})
}
