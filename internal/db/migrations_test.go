package db_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
)

// Migration 6 gives keys that an API key made (stored without a creator)
// the team's owner as their creator, so they keep working now that keys
// answer to their creator; revoked keys stay as they were.
func TestMigration6GivesCreatorlessKeysTheOwner(t *testing.T) {
	migratedTo(t, 5, func(t *testing.T, ctx context.Context, d *db.DB) {
		now := db.Now()
		insert := func(q string, args ...any) int64 {
			t.Helper()
			var id int64
			require.NoError(t, db.Get(ctx, d, &id, q+` RETURNING id`, args...))
			return id
		}
		owner := insert(`INSERT INTO users (email, name, password_hash, created_at, updated_at) VALUES ('owner@example.com', '', 'x', ?, ?)`, now, now)
		admin := insert(`INSERT INTO users (email, name, password_hash, created_at, updated_at) VALUES ('admin@example.com', '', 'x', ?, ?)`, now, now)
		team := insert(`INSERT INTO teams (name, slug, created_at) VALUES ('T', 't', ?)`, now)
		_, err := db.Exec(ctx, d, `INSERT INTO memberships (team_id, user_id, role, created_at) VALUES (?, ?, 'owner', ?), (?, ?, 'admin', ?)`, team, owner, now, team, admin, now)
		require.NoError(t, err)
		key := func(hash string, createdBy any, revokedAt any) int64 {
			return insert(`INSERT INTO api_keys (team_id, name, prefix, key_hash, role, created_by, created_at, revoked_at) VALUES (?, 'k', 'p', ?, 'member', ?, ?, ?)`,
				team, hash, createdBy, now, revokedAt)
		}
		madeByKey := key("h1", nil, nil)
		madeByAdmin := key("h2", admin, nil)
		revoked := key("h3", nil, now)

		_, err = d.Migrate(ctx)
		require.NoError(t, err)
		creator := func(id int64) sql.NullInt64 {
			var c sql.NullInt64
			require.NoError(t, db.Get(ctx, d, &c, `SELECT created_by FROM api_keys WHERE id = ?`, id))
			return c
		}
		require.Equal(t, sql.NullInt64{Int64: owner, Valid: true}, creator(madeByKey), "the owner")
		require.Equal(t, sql.NullInt64{Int64: admin, Valid: true}, creator(madeByAdmin), "unchanged")
		require.False(t, creator(revoked).Valid, "revoked keys are left alone")
	})
}

// Migration 12 counts the finished runs' steps that failed and that did not
// run, as the engine now does at each change.
func TestMigration12CountsStepOutcomes(t *testing.T) {
	migratedTo(t, 11, func(t *testing.T, ctx context.Context, d *db.DB) {
		now := db.Now()
		var team int64
		require.NoError(t, db.Get(ctx, d, &team, `INSERT INTO teams (name, slug, created_at) VALUES ('T', 't', ?) RETURNING id`, now))
		run := func(done int, statuses ...string) int64 {
			t.Helper()
			var id int64
			require.NoError(t, db.Get(ctx, d, &id, `INSERT INTO runs (team_id, status, plan, steps_total, steps_done, created_at, updated_at)
					VALUES (?, 'failed', '{}', ?, ?, ?, ?) RETURNING id`, team, len(statuses), done, now, now))
			for i, status := range statuses {
				_, err := db.Exec(ctx, d, `INSERT INTO steps (run_id, position, name, kind, status, max_attempts, timeout_ms, updated_at)
						VALUES (?, ?, ?, 'text', ?, 1, 1000, ?)`, id, i, fmt.Sprintf("s%d", i), status, now)
				require.NoError(t, err)
			}
			return id
		}
		mixed := run(5, "succeeded", "failed", "timed_out", "skipped", "cancelled", "queued")
		clean := run(1, "succeeded")

		_, err := d.Migrate(ctx)
		require.NoError(t, err)
		outcomes := func(id int64) [2]int {
			var o struct {
				Failed  int `db:"steps_failed"`
				Skipped int `db:"steps_skipped"`
			}
			require.NoError(t, db.Get(ctx, d, &o, `SELECT steps_failed, steps_skipped FROM runs WHERE id = ?`, id))
			return [2]int{o.Failed, o.Skipped}
		}
		require.Equal(t, [2]int{2, 2}, outcomes(mixed))
		require.Equal(t, [2]int{0, 0}, outcomes(clean))
	})
}

// migratedTo runs fn on SQLite and on PostgreSQL, each a fresh database
// migrated up to version only, for a test of what the next migrations do
// to the rows fn writes before it migrates the rest.
func migratedTo(t *testing.T, version int64, fn func(t *testing.T, ctx context.Context, d *db.DB)) {
	urls := map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "old.db") },
		"postgres": func(t *testing.T) string { return dbtest.PostgresURL(t) },
	}
	for name, url := range urls {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			d, err := db.Open(ctx, url(t))
			require.NoError(t, err)
			t.Cleanup(func() { d.Close() })
			require.NoError(t, d.MigrateTo(ctx, version))
			fn(t, ctx, d)
		})
	}
}

// The newest migration goes down and up again on both databases, so that
// its Down section is known to work when an operator needs it.
func TestNewestMigrationGoesDownAndUp(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		p, err := d.Provider()
		require.NoError(t, err)
		current, latest, err := d.MigrationVersions(ctx)
		require.NoError(t, err)
		require.Equal(t, latest, current)
		_, err = p.Down(ctx)
		require.NoError(t, err)
		after, _, err := d.MigrationVersions(ctx)
		require.NoError(t, err)
		require.Equal(t, latest-1, after)
		_, err = p.Up(ctx)
		require.NoError(t, err)
		again, _, err := d.MigrationVersions(ctx)
		require.NoError(t, err)
		require.Equal(t, latest, again)
	})
}
