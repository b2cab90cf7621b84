package db_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
)

func TestMigrationsAreCurrent(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		current, latest, err := d.MigrationVersions(ctx)
		require.NoError(t, err)
		require.Positive(t, latest)
		require.Equal(t, latest, current)

		n, err := d.Migrate(ctx)
		require.NoError(t, err)
		require.Zero(t, n, "a second migrate applies nothing")
	})
}

func TestWithTxRollsBackOnError(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		boom := errors.New("boom")
		err := db.WithTx(ctx, d, func(tx *sqlx.Tx) error {
			_, err := db.Exec(ctx, tx, `INSERT INTO teams (name, slug, created_at) VALUES (?, ?, ?)`, "A", "a", db.Now())
			require.NoError(t, err)
			return boom
		})
		require.ErrorIs(t, err, boom)

		var n int
		require.NoError(t, db.Get(ctx, d, &n, `SELECT COUNT(*) FROM teams`))
		require.Zero(t, n)
	})
}

func TestUniqueViolationAndNotFound(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		insert := `INSERT INTO teams (name, slug, created_at) VALUES (?, ?, ?)`
		_, err := db.Exec(ctx, d, insert, "A", "same", db.Now())
		require.NoError(t, err)
		_, err = db.Exec(ctx, d, insert, "B", "same", db.Now())
		require.Error(t, err)
		require.True(t, db.IsUniqueViolation(err), "got %v", err)
		require.False(t, db.IsUniqueViolation(errors.New("other")))

		var name string
		err = db.Get(ctx, d, &name, `SELECT name FROM teams WHERE slug = ?`, "missing")
		require.ErrorIs(t, err, db.ErrNotFound)
	})
}

func TestOpenRejectsUnknownURL(t *testing.T) {
	_, err := db.Open(context.Background(), "mysql://localhost/x")
	require.ErrorContains(t, err, "sqlite:// or postgres://")
}

func TestPreparedStatements(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		insert := `INSERT INTO teams (name, slug, created_at) VALUES (?, ?, ?)`
		count := `SELECT COUNT(*) FROM teams WHERE name = ?`
		for i := range 3 {
			err := db.WithTx(ctx, d, func(tx *sqlx.Tx) error {
				q := d.Prepared(tx)
				_, err := db.Exec(ctx, q, insert, "T", fmt.Sprintf("t%d", i), db.Now())
				require.NoError(t, err)
				var n int
				require.NoError(t, db.Get(ctx, q, &n, count, "T"))
				require.Equal(t, i+1, n, "sees its own transaction's insert")
				var slugs []string
				require.NoError(t, db.Select(ctx, q, &slugs, `SELECT slug FROM teams WHERE name = ? ORDER BY slug`, "T"))
				require.Len(t, slugs, i+1)
				if d.Dialect == db.Postgres && i > 0 {
					// Prepared after the first transaction, on this
					// transaction's connection since.
					var prepared int
					require.NoError(t, db.Get(ctx, tx, &prepared, `SELECT COUNT(*) FROM pg_prepared_statements WHERE statement = ?`, tx.Rebind(insert)))
					require.Equal(t, 1, prepared)
				}
				return nil
			})
			require.NoError(t, err)
		}

		boom := errors.New("boom")
		err := db.WithTx(ctx, d, func(tx *sqlx.Tx) error {
			_, err := db.Exec(ctx, d.Prepared(tx), insert, "T", "rolled-back", db.Now())
			require.NoError(t, err)
			return boom
		})
		require.ErrorIs(t, err, boom)

		var n int
		require.NoError(t, db.Get(ctx, d.Prepared(d), &n, count, "T"))
		require.Equal(t, 3, n, "on the pool too; the rolled-back insert is gone")
		_, err = db.Exec(ctx, d.Prepared(d), insert, "T", "t0", db.Now())
		require.True(t, db.IsUniqueViolation(err), "errors come through: %v", err)
	})
}
