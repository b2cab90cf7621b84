package db_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

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

func TestSQLiteBusyTimeoutOption(t *testing.T) {
	path := t.TempDir() + "/busy.db"
	for _, bad := range []string{"?busy_timeout=soon", "?busy_timeout=-1s", "?busy_timeout=2h", "?%zz"} {
		_, err := db.Open(context.Background(), "sqlite://"+path+bad)
		require.Error(t, err, bad)
	}
	d, err := db.Open(context.Background(), "sqlite://"+path+"?busy_timeout=250ms")
	require.NoError(t, err)
	defer d.Close()
	var ms int
	require.NoError(t, d.GetContext(context.Background(), &ms, `PRAGMA busy_timeout`))
	require.Equal(t, 250, ms)
	require.NoError(t, d.Reader().QueryRowxContext(context.Background(), `PRAGMA busy_timeout`).Scan(&ms))
	require.Equal(t, 250, ms, "the read connections wait as long")
}

func TestConnectionsKeepStatementsPrepared(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		insert := `INSERT INTO teams (name, slug, created_at) VALUES (?, ?, ?)`
		count := `SELECT COUNT(*) FROM teams WHERE name = ?`
		for i := range 3 {
			err := db.WithTx(ctx, d, func(tx *sqlx.Tx) error {
				_, err := db.Exec(ctx, tx, insert, "T", fmt.Sprintf("t%d", i), db.Now())
				require.NoError(t, err)
				var n int
				require.NoError(t, db.Get(ctx, tx, &n, count, "T"))
				require.Equal(t, i+1, n, "sees its own transaction's insert")
				if d.Dialect == db.Postgres {
					var prepared int
					require.NoError(t, db.Get(ctx, tx, &prepared, `SELECT COUNT(*) FROM pg_prepared_statements WHERE statement = ?`, tx.Rebind(insert)))
					require.Equal(t, 1, prepared, "prepared once on this connection")
				}
				return nil
			})
			require.NoError(t, err)
		}

		// On SQLite the same query again while its rows are open runs
		// beside them (lib/pq reads one result at a time on a connection).
		slugs := `SELECT slug FROM teams WHERE name = ? ORDER BY slug`
		err := db.WithTx(ctx, d, func(tx *sqlx.Tx) error {
			if d.Dialect == db.Postgres {
				return nil
			}
			rows, err := tx.QueryContext(ctx, tx.Rebind(slugs), "T")
			require.NoError(t, err)
			defer rows.Close()
			var outer []string
			for rows.Next() {
				var slug string
				require.NoError(t, rows.Scan(&slug))
				outer = append(outer, slug)
				var inner []string
				require.NoError(t, db.Select(ctx, tx, &inner, slugs, "T"))
				require.Equal(t, []string{"t0", "t1", "t2"}, inner)
			}
			require.NoError(t, rows.Err())
			require.Equal(t, []string{"t0", "t1", "t2"}, outer)
			return nil
		})
		require.NoError(t, err)

		boom := errors.New("boom")
		err = db.WithTx(ctx, d, func(tx *sqlx.Tx) error {
			_, err := db.Exec(ctx, tx, insert, "T", "rolled-back", db.Now())
			require.NoError(t, err)
			return boom
		})
		require.ErrorIs(t, err, boom)

		var n int
		require.NoError(t, db.Get(ctx, d, &n, count, "T"))
		require.Equal(t, 3, n, "on the pool too; the rolled-back insert is gone")
		_, err = db.Exec(ctx, d, insert, "T", "t0", db.Now())
		require.True(t, db.IsUniqueViolation(err), "errors come through: %v", err)
	})
}

// A statement whose result columns a migration changed is prepared again
// after PostgreSQL refuses it once.
func TestStalePreparedStatementIsPreparedAgain(t *testing.T) {
	d := dbtest.Postgres(t)
	ctx := context.Background()
	conn, err := d.Connx(ctx) // one connection, so its statements are the ones kept
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(ctx, `CREATE TEMPORARY TABLE shapes (id int PRIMARY KEY, name text)`)
	require.NoError(t, err)
	_, err = conn.ExecContext(ctx, `INSERT INTO shapes VALUES (1, 'one')`)
	require.NoError(t, err)
	read := func() (map[string]any, error) {
		row := map[string]any{}
		err := conn.QueryRowxContext(ctx, `SELECT * FROM shapes WHERE id = $1`, 1).MapScan(row)
		return row, err
	}
	for range 2 {
		row, err := read()
		require.NoError(t, err)
		require.Len(t, row, 2)
	}
	_, err = conn.ExecContext(ctx, `ALTER TABLE shapes ADD COLUMN extra int`)
	require.NoError(t, err)
	_, err = read()
	require.ErrorContains(t, err, "cached plan must not change result type")
	row, err := read()
	require.NoError(t, err)
	require.Len(t, row, 3, "prepared again with the new column")
}

// Once a write has waited out its busy timeout on a file another
// connection holds, the writer's next calls fail at once with ErrLocked
// (queued writes do not each wait the timeout), and go through again soon
// after the file is free.
func TestLockedSQLiteFileFailsWritesAtOnce(t *testing.T) {
	ctx := context.Background()
	path := t.TempDir() + "/locked.db"
	d, err := db.Open(ctx, "sqlite://"+path+"?busy_timeout=100ms")
	require.NoError(t, err)
	defer d.Close()
	_, err = d.Migrate(ctx)
	require.NoError(t, err)

	other, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	defer other.Close()
	conn, err := other.Conn(ctx)
	require.NoError(t, err)
	_, err = conn.ExecContext(ctx, `BEGIN IMMEDIATE`)
	require.NoError(t, err)

	insert := func() error {
		_, err := db.Exec(ctx, d, `INSERT INTO teams (name, slug, created_at) VALUES (?, ?, ?)`, "T", fmt.Sprint(time.Now().UnixNano()), db.Now())
		return err
	}
	err = insert()
	require.True(t, db.Unavailable(err), "%v", err)
	require.NotErrorIs(t, err, db.ErrLocked, "the first write waited for the file")
	err = insert()
	require.ErrorIs(t, err, db.ErrLocked, "the next one is refused at once")
	var n int
	require.NoError(t, d.Reader().QueryRowxContext(ctx, `SELECT COUNT(*) FROM teams`).Scan(&n), "reads go on")

	_, err = conn.ExecContext(ctx, `ROLLBACK`)
	require.NoError(t, err)
	require.NoError(t, conn.Close())
	require.Eventually(t, func() bool { return insert() == nil }, 10*time.Second, 20*time.Millisecond)
}
