package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/app"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/config"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/plan"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/teams"
)

// A backup taken while runs are being written holds every run committed
// before it began; restore refuses while a server beats on the database,
// then puts the backup in place and keeps the old file aside.
func TestBackupDuringWritesAndRestore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"NOFX_DATA_DIR": dir}
	c := &cli{t: t, env: env}
	c.mustRun("users", "create", "--email", testEmail, "--password", testPassword)
	c.mustRun("plans", "set", "free", "--runs", "-1") // the write load runs past Free's 200 a month

	cfg, err := config.Load(c.getenv)
	require.NoError(t, err)
	cfg.Workers = 0 // runs stay queued: only their rows matter here
	a, err := app.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), true, app.Tuning{})
	require.NoError(t, err)
	require.NoError(t, a.Start(context.Background()))
	ctx := context.Background()
	user, err := auth.UserByEmail(ctx, a.DB, testEmail)
	require.NoError(t, err)
	ms, err := teams.ForUser(ctx, a.DB, user.ID)
	require.NoError(t, err)
	actor := access.Actor{UserID: user.ID, TeamID: ms[0].ID, Role: teams.RoleOwner}
	plan, err := plan.Parse([]byte(`{"goal":"load","steps":[{"name":"s","kind":"text","prompt":"x"}]}`))
	require.NoError(t, err)

	var (
		mu        sync.Mutex
		committed []int64
		stop      atomic.Bool
		wg        sync.WaitGroup
	)
	wg.Go(func() {
		for !stop.Load() {
			run, _, err := a.Runs.Create(ctx, actor, runs.CreateInput{Plan: plan})
			if err != nil {
				t.Errorf("create a run: %v", err)
				return
			}
			mu.Lock()
			committed = append(committed, run.ID)
			mu.Unlock()
		}
	})
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(committed) >= 20 }, 30*time.Second, 5*time.Millisecond)
	mu.Lock()
	before := append([]int64(nil), committed...)
	mu.Unlock()
	out := filepath.Join(t.TempDir(), "nofx-backup.db")
	stdout := c.mustRun("backup", "--out", out)
	require.Contains(t, stdout, "backup written to "+out)
	stop.Store(true)
	wg.Wait()

	b, err := db.Open(ctx, "sqlite://"+out)
	require.NoError(t, err)
	var inBackup []int64
	require.NoError(t, db.Select(ctx, b, &inBackup, `SELECT id FROM runs ORDER BY id`))
	require.NoError(t, b.Close())
	require.Subset(t, inBackup, before, "every run committed before the backup is in it")
	require.NotEmpty(t, inBackup)
	var recorded int
	require.NoError(t, db.Get(ctx, a.DB, &recorded, `SELECT COUNT(*) FROM backups`))
	require.Equal(t, 1, recorded, "Admin → Health shows it")

	code, _, stderr := c.run("backup", "--out", out)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "exists already")

	code, _, stderr = c.run("restore", "--from", out)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "nofx serve is running on this database")
	require.NoError(t, a.Close(context.Background()))

	stdout = c.mustRun("restore", "--from", out)
	require.Contains(t, stdout, "the old database is kept as")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	aside := 0
	for _, e := range entries {
		if strings.Contains(e.Name(), ".before-restore-") && !strings.HasSuffix(e.Name(), "-wal") && !strings.HasSuffix(e.Name(), "-shm") {
			aside++
		}
	}
	require.Equal(t, 1, aside)
	restored, err := db.Open(ctx, "sqlite://"+filepath.Join(dir, "nofx.db"))
	require.NoError(t, err)
	var n int
	require.NoError(t, db.Get(ctx, restored, &n, `SELECT COUNT(*) FROM runs`))
	require.NoError(t, restored.Close())
	require.Equal(t, len(inBackup), n)

	code, _, stderr = c.run("restore", "--from", filepath.Join(dir, "missing.db"))
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "--from")
	require.NoFileExists(t, filepath.Join(dir, "missing.db"), "a missing backup is not created")
}

// On PostgreSQL, backup and restore explain pg_dump and exit non-zero.
func TestBackupOnPostgresExplainsPgDump(t *testing.T) {
	t.Parallel()
	c := &cli{t: t, env: map[string]string{"NOFX_DATA_DIR": t.TempDir(), "NOFX_DATABASE_URL": "postgres://nobody@127.0.0.1:1/none?sslmode=disable"}}
	for _, args := range [][]string{{"backup", "--out", filepath.Join(t.TempDir(), "x")}, {"restore", "--from", "x"}} {
		code, stdout, stderr := c.run(args...)
		require.Equal(t, 1, code)
		require.Empty(t, stdout)
		require.Contains(t, stderr, "pg_dump --format=custom")
	}
}
