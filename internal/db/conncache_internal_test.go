package db

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// Queries whose texts vary without end (one placeholder per id) do not
// crowd out the ones used all the time: the statement used longest ago
// gives way.
func TestConnectionCacheKeepsWhatIsUsed(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "cache.db"))
	require.NoError(t, err)
	defer d.Close()
	conn, err := d.DB.Conn(ctx) // one connection: its cache is the one looked at
	require.NoError(t, err)
	defer conn.Close()

	hot := `SELECT ? + 1`
	for i := range 3 * maxConnStmts {
		var n int
		require.NoError(t, conn.QueryRowContext(ctx, fmt.Sprintf(`SELECT ? + %d`, 1000+i), 1).Scan(&n))
		require.Equal(t, 1001+i, n)
		require.NoError(t, conn.QueryRowContext(ctx, hot, 1).Scan(&n))
		require.Equal(t, 2, n)
	}
	require.NoError(t, conn.Raw(func(c any) error {
		cc := c.(*cachingConn)
		require.Len(t, cc.stmts, maxConnStmts, "bounded")
		require.Equal(t, maxConnStmts, cc.used.Len())
		require.Contains(t, cc.stmts, hot, "the query used all along is still prepared")
		require.NotContains(t, cc.stmts, `SELECT ? + 1000`, "the one used longest ago gave way")
		return nil
	}))
}

// A query marked OneOff runs, unprepared, and pushes out nothing.
func TestOneOffQueriesAreNotKept(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "cache.db"))
	require.NoError(t, err)
	defer d.Close()
	conn, err := d.DB.Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()

	var n int
	require.NoError(t, conn.QueryRowContext(ctx, `SELECT ? + 1`, 1).Scan(&n))
	for i := range 3 {
		require.NoError(t, conn.QueryRowContext(ctx, OneOff+fmt.Sprintf(`SELECT ? + %d`, i), 1).Scan(&n))
		require.Equal(t, 1+i, n)
	}
	require.NoError(t, conn.Raw(func(c any) error {
		cc := c.(*cachingConn)
		require.Len(t, cc.stmts, 1, "only the query without the mark is kept")
		require.Contains(t, cc.stmts, `SELECT ? + 1`)
		return nil
	}))
}
