package db_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
)

// An aggregate of a time column reads as a time on both databases, though
// SQLite returns it as text.
func TestNullTimeReadsAggregates(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		var none db.NullTime
		require.NoError(t, db.Get(ctx, d, &none, `SELECT MAX(created_at) FROM teams`))
		require.False(t, none.Valid)
		at := time.Date(2026, 12, 1, 10, 11, 12, 345678000, time.UTC)
		_, err := db.Exec(ctx, d, `INSERT INTO teams (name, slug, created_at) VALUES ('a', 'a', ?)`, at)
		require.NoError(t, err)
		var got db.NullTime
		require.NoError(t, db.Get(ctx, d, &got, `SELECT MAX(created_at) FROM teams`))
		require.True(t, got.Valid)
		require.True(t, at.Equal(got.Time), "%s != %s", at, got.Time)
		require.NoError(t, db.Get(ctx, d, &got, `SELECT (SELECT created_at FROM teams ORDER BY id LIMIT 1)`))
		require.True(t, at.Equal(got.Time))
	})
}
