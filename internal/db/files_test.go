package db_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/db"
)

// The SQLite file and its WAL and shared-memory files hold every secret
// hash of the instance: only their owner may read them, whatever the umask.
func TestSQLiteFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })

	dir := t.TempDir()
	path := filepath.Join(dir, "nofx.db")
	d, err := db.Open(context.Background(), "sqlite://"+path)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	_, err = d.Migrate(context.Background())
	require.NoError(t, err)

	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		info, err := os.Stat(name)
		require.NoError(t, err, "SQLite in WAL mode keeps %s", name)
		require.Equal(t, os.FileMode(0o600), info.Mode().Perm(), name)
	}

	// A file an older version left readable is narrowed when it opens.
	d.Close()
	require.NoError(t, os.Chmod(path, 0o644))
	d2, err := db.Open(context.Background(), "sqlite://"+path)
	require.NoError(t, err)
	defer d2.Close()
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
}
