package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/app"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/config"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/plan"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/transfer"
)

// fill gives the database behind env users, finished and waiting runs,
// their events, templates, usage and audit entries, as an instance has.
func fill(t *testing.T, c *cli) (waitingRun int64) {
	t.Helper()
	c.mustRun("users", "create", "--email", testEmail, "--password", testPassword, "--site-admin")
	c.mustRun("users", "create", "--email", "b@example.com", "--password", testPassword)
	c.mustRun("plans", "set", "starter", "--stripe-price-monthly", "price_1")
	cfg, err := config.Load(c.getenv)
	require.NoError(t, err)
	cfg.Workers = 2
	a, err := app.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), true, app.Tuning{})
	require.NoError(t, err)
	require.NoError(t, a.Start(context.Background()))
	defer func() { require.NoError(t, a.Close(context.Background())) }()
	ctx := context.Background()
	user, err := auth.UserByEmail(ctx, a.DB, testEmail)
	require.NoError(t, err)
	ms, err := teams.ForUser(ctx, a.DB, user.ID)
	require.NoError(t, err)
	actor := access.Actor{UserID: user.ID, TeamID: ms[0].ID, Role: teams.RoleOwner}
	done, err := plan.Parse([]byte(`{"goal":"done","steps":[{"name":"a","kind":"llm","provider":"simulated","model":"echo","prompt":"hello there"},
		{"name":"b","kind":"text","prompt":"{{steps.a.output}}!","needs":["a"]}]}`))
	require.NoError(t, err)
	for range 5 {
		_, _, err := a.Runs.Create(ctx, actor, runs.CreateInput{Plan: done, Inputs: map[string]any{"n": 9007199254740993}})
		require.NoError(t, err)
	}
	for _, id := range []string{"evt_1a", "evt_1B", "evt_1C", "evt_1b"} { // byte order is not every collation's order
		_, err := db.Exec(ctx, a.DB, `INSERT INTO stripe_events (id, type, created_at, received_at) VALUES (?, 'x', ?, ?)`, id, db.Now(), db.Now())
		require.NoError(t, err)
	}
	gate, err := plan.Parse([]byte(`{"goal":"gate","steps":[{"name":"gate","kind":"approval","prompt":"ok?"},
		{"name":"after","kind":"text","prompt":"yes","needs":["gate"]}]}`))
	require.NoError(t, err)
	waiting, _, err := a.Runs.Create(ctx, actor, runs.CreateInput{Plan: gate})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		var open int
		require.NoError(t, db.Get(ctx, a.DB, &open, `SELECT COUNT(*) FROM runs WHERE status IN ('queued', 'running')`))
		return open == 0
	}, 30*time.Second, 10*time.Millisecond)
	return waiting.ID
}

// The whole database goes SQLite → PostgreSQL → SQLite through nofx export
// and nofx import with every table's rows and checksum unchanged, and the
// copy works: new ids follow the copied ones, and a waiting run still waits.
func TestExportImportRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := &cli{t: t, env: map[string]string{"NOFX_DATA_DIR": t.TempDir()}}
	waiting := fill(t, src)
	first := filepath.Join(t.TempDir(), "sqlite.jsonl")
	src.mustRun("export", "--out", first)

	pg := &cli{t: t, env: map[string]string{"NOFX_DATA_DIR": t.TempDir(), "NOFX_DATABASE_URL": dbtest.PostgresURL(t)}}
	out := pg.mustRun("import", "--from", first)
	require.Contains(t, out, "rows in 25 tables")
	second := filepath.Join(t.TempDir(), "postgres.jsonl")
	pg.mustRun("export", "--out", second)

	// A stream spoilt in its last table fails the import and writes nothing
	// at all: the same database takes the good stream after.
	back := &cli{t: t, env: map[string]string{"NOFX_DATA_DIR": t.TempDir()}}
	raw, err := os.ReadFile(second)
	require.NoError(t, err)
	spoilt := filepath.Join(t.TempDir(), "spoilt.jsonl")
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	lines[len(lines)-1] = `{"end":"backups","rows":7,"sha256":"00"}`
	require.NoError(t, os.WriteFile(spoilt, []byte(strings.Join(lines, "\n")+"\n"), 0o600))
	code, _, stderr := back.run("import", "--from", spoilt)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "backups arrived as 0 rows")
	dback, err := openForCommand(ctx, back.getenv)
	require.NoError(t, err)
	var users int
	require.NoError(t, db.Get(ctx, dback, &users, `SELECT COUNT(*) FROM users`))
	require.NoError(t, dback.Close())
	require.Zero(t, users, "nothing of the failed import stays")
	back.mustRun("import", "--from", second)

	sums := func(c *cli) transfer.Summary {
		d, err := openForCommand(ctx, c.getenv)
		require.NoError(t, err)
		defer d.Close()
		s, err := transfer.Sums(ctx, d)
		require.NoError(t, err)
		return s
	}
	a, b, c := sums(src), sums(pg), sums(back)
	require.Equal(t, a, b, "PostgreSQL holds what SQLite held")
	require.Equal(t, a, c, "and back in SQLite, every table is as it was")
	rows := map[string]int64{}
	for _, ts := range a.Tables {
		rows[ts.Table] = ts.Rows
	}
	require.Equal(t, int64(6), rows["runs"])
	require.Equal(t, int64(2), rows["users"])
	require.Positive(t, rows["run_events"])
	require.Positive(t, rows["audit_log"])
	require.Equal(t, int64(4), rows["plans"])

	// Into a database that has accounts already: refused, nothing written.
	code, _, stderr = back.run("import", "--from", second)
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "not empty")

	// The copy on PostgreSQL works: new ids follow the copied ones, and the
	// waiting run still waits.
	d, err := openForCommand(ctx, pg.getenv)
	require.NoError(t, err)
	defer d.Close()
	var maxID, newID int64
	require.NoError(t, db.Get(ctx, d, &maxID, `SELECT MAX(id) FROM audit_log`))
	require.NoError(t, db.Get(ctx, d, &newID, `INSERT INTO audit_log (actor, action, target, summary, ip, user_agent, request_id, created_at)
		VALUES ('test', 'test', '', '', '', '', '', ?) RETURNING id`, db.Now()))
	require.Greater(t, newID, maxID)
	var status string
	require.NoError(t, db.Get(ctx, d, &status, `SELECT status FROM runs WHERE id = ?`, waiting))
	require.Equal(t, "waiting", status)
}
