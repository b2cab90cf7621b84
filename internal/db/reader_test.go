package db_test

import (
	"context"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
)

func TestReaderSeesCommittedWrites(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		count := func() int {
			t.Helper()
			var n int
			require.NoError(t, db.Get(ctx, d.Reader(), &n, `SELECT COUNT(*) FROM teams WHERE slug = ?`, "seen"))
			return n
		}
		require.Zero(t, count())

		_, err := db.Exec(ctx, d, `INSERT INTO teams (name, slug, created_at) VALUES (?, ?, ?)`, "Seen", "seen", db.Now())
		require.NoError(t, err)
		require.Equal(t, 1, count(), "a write outside a transaction is seen at once")

		err = db.WithTx(ctx, d, func(tx *sqlx.Tx) error {
			_, err := db.Exec(ctx, tx, `UPDATE teams SET slug = ? WHERE slug = ?`, "gone", "seen")
			return err
		})
		require.NoError(t, err)
		require.Zero(t, count(), "a committed transaction is seen at once")

		// Times bound as arguments compare as the writer stored them.
		var n int
		require.NoError(t, db.Get(ctx, d.Reader(), &n, `SELECT COUNT(*) FROM teams WHERE created_at <= ?`, db.Now().Add(time.Second)))
		require.Equal(t, 1, n)
	})
}

func TestReaderDoesNotWaitForTheWriter(t *testing.T) {
	d := dbtest.SQLite(t)
	ctx := context.Background()
	_, err := db.Exec(ctx, d, `INSERT INTO teams (name, slug, created_at) VALUES (?, ?, ?)`, "Before", "before", db.Now())
	require.NoError(t, err)

	inTx := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- db.WithTx(ctx, d, func(tx *sqlx.Tx) error {
			if _, err := db.Exec(ctx, tx, `INSERT INTO teams (name, slug, created_at) VALUES (?, ?, ?)`, "Pending", "pending", db.Now()); err != nil {
				return err
			}
			close(inTx)
			<-release // hold the write transaction, and the only writer connection, open
			return nil
		})
	}()
	<-inTx

	readCtx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var slugs []string
	require.NoError(t, db.Select(readCtx, d.Reader(), &slugs, `SELECT slug FROM teams ORDER BY slug`),
		"a read beside an open write transaction answers at once")
	require.Equal(t, []string{"before"}, slugs, "the reader sees committed rows only")

	// The writer's own pool is held by the transaction: a read there waits.
	blockedCtx, cancelBlocked := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelBlocked()
	var n int
	require.ErrorIs(t, db.Get(blockedCtx, d, &n, `SELECT COUNT(*) FROM teams`), context.DeadlineExceeded)

	close(release)
	require.NoError(t, <-done)
	require.NoError(t, db.Select(ctx, d.Reader(), &slugs, `SELECT slug FROM teams ORDER BY slug`))
	require.Equal(t, []string{"before", "pending"}, slugs)
}

func TestReaderRefusesWritesOnSQLite(t *testing.T) {
	d := dbtest.SQLite(t)
	ctx := context.Background()
	_, err := db.Exec(ctx, d.Reader(), `INSERT INTO teams (name, slug, created_at) VALUES (?, ?, ?)`, "No", "no", db.Now())
	require.Error(t, err)
	require.ErrorContains(t, err, "readonly")

	var n int
	require.NoError(t, db.Get(ctx, d, &n, `SELECT COUNT(*) FROM teams`))
	require.Zero(t, n)
}

func TestReaderPreparesItsQueries(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		_, err := db.Exec(ctx, d, `INSERT INTO teams (name, slug, created_at) VALUES (?, ?, ?)`, "A", "a", db.Now())
		require.NoError(t, err)
		for range 3 { // prepared on first use, then reused
			var name string
			require.NoError(t, db.Get(ctx, d.Reader(), &name, `SELECT name FROM teams WHERE slug = ?`, "a"))
			require.Equal(t, "A", name)
			var names []string
			require.NoError(t, db.Select(ctx, d.Reader(), &names, `SELECT name FROM teams ORDER BY id`))
			require.Equal(t, []string{"A"}, names)
			require.ErrorIs(t, db.Get(ctx, d.Reader(), &name, `SELECT name FROM teams WHERE slug = ?`, "missing"), db.ErrNotFound)
		}
	})
}

func TestCloseClosesTheReader(t *testing.T) {
	d, err := db.Open(context.Background(), "sqlite://"+t.TempDir()+"/close.db")
	require.NoError(t, err)
	reader := d.Reader()
	var one int
	require.NoError(t, db.Get(context.Background(), reader, &one, `SELECT 1`))
	require.NoError(t, d.Close())
	require.Error(t, db.Get(context.Background(), reader, &one, `SELECT 1`), "the reader is closed with the database")
}
