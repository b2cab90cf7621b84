package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nofxhq/nofx/internal/config"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/health"
	"github.com/nofxhq/nofx/internal/nodes"
)

// errPostgresBackup is the answer to nofx backup and restore on PostgreSQL.
var errPostgresBackup = errors.New(`on PostgreSQL, use PostgreSQL's own tools, which copy a live database consistently:
  pg_dump --format=custom --file=nofx.dump "$NOFX_DATABASE_URL"
  pg_restore --clean --if-exists --no-owner --dbname="$NOFX_DATABASE_URL" nofx.dump
(stop every nofx serve before pg_restore, and start them again after)`)

// sqlitePath is the file of a sqlite:// database URL.
func sqlitePath(rawURL string) (string, bool) {
	path, ok := strings.CutPrefix(rawURL, "sqlite://")
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	return path, ok
}

// backup writes a consistent copy of the live SQLite database to --out
// (while serve runs), checks that it opens with its migrations current, and
// records it for Admin → Health.
func backup(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "the file to write (required; it must not exist)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("--out is required: nofx backup --out FILE")
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	if _, ok := sqlitePath(cfg.DatabaseURL); !ok {
		return errPostgresBackup
	}
	target, err := filepath.Abs(*out)
	if err != nil {
		return err
	}
	if _, err := os.Stat(target); err == nil {
		return fmt.Errorf("--out: %s exists already; choose a new file", target)
	}
	// The database as it is: a backup is taken before an upgrade, so it
	// must not migrate anything.
	d, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer d.Close()
	live, _, err := d.MigrationVersions(ctx)
	if err != nil {
		return err
	}
	// The file exists, empty and private, before it holds anything.
	f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	f.Close()
	// VACUUM INTO reads one snapshot of the database (WAL lets serve go on
	// writing meanwhile) and writes it compacted to the file.
	if _, err := d.ExecContext(ctx, `VACUUM INTO ?`, target); err != nil {
		os.Remove(target)
		return fmt.Errorf("write the backup: %w", err)
	}
	if err := forgetNodes(ctx, target); err != nil {
		os.Remove(target)
		return err
	}
	version, err := checkBackup(ctx, target, live)
	if err != nil {
		os.Remove(target)
		return err
	}
	st, err := os.Stat(target)
	if err != nil {
		return err
	}
	if _, err := db.Exec(ctx, d, `INSERT INTO backups (path, size_bytes, created_at) VALUES (?, ?, ?)`, target, st.Size(), db.Now()); err != nil {
		return fmt.Errorf("record the backup: %w", err)
	}
	fmt.Fprintf(stdout, "backup written to %s (%s, schema version %d)\n", target, health.Bytes(st.Size()), version)
	return nil
}

// checkBackup reads a backup's schema version, read-only, and checks that
// it is a NOFX schema no newer than this binary's; with want (the version
// of the database it was taken from) it must be that version.
func checkBackup(ctx context.Context, path string, want int64) (int64, error) {
	if _, err := os.Stat(path); err != nil {
		return 0, err // opening would create it
	}
	b, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		return 0, fmt.Errorf("the backup does not open: %w", err)
	}
	defer b.Close()
	var version sql.NullInt64
	if err := b.QueryRowContext(ctx, `SELECT MAX(version_id) FROM goose_db_version WHERE is_applied`).Scan(&version); err != nil || !version.Valid {
		return 0, fmt.Errorf("the backup holds no NOFX schema: %v", err)
	}
	latest, err := db.LatestMigration(db.SQLite)
	if err != nil {
		return 0, err
	}
	if version.Int64 > latest {
		return 0, fmt.Errorf("the backup's schema (version %d) is newer than this binary's (%d): use a newer nofx", version.Int64, latest)
	}
	if want > 0 && version.Int64 != want {
		return 0, fmt.Errorf("the backup's schema is at version %d, not %d", version.Int64, want)
	}
	var n int
	if err := b.QueryRowContext(ctx, `SELECT COUNT(*) FROM teams`).Scan(&n); err != nil {
		return 0, fmt.Errorf("the backup cannot be read: %w", err)
	}
	return version.Int64, nil
}

// forgetNodes removes the copied heartbeats from a backup: they are the
// processes of the database it came from.
func forgetNodes(ctx context.Context, path string) error {
	b, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		return err
	}
	defer b.Close()
	if _, err := b.ExecContext(ctx, `DELETE FROM nodes`); err != nil {
		return fmt.Errorf("clean the backup: %w", err)
	}
	return nil
}

// restore puts a backup in place of the SQLite database, keeping the old
// file aside; it refuses while a server runs on the database.
func restore(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "the backup to restore (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *from == "" {
		return errors.New("--from is required: nofx restore --from FILE")
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	path, ok := sqlitePath(cfg.DatabaseURL)
	if !ok {
		return errPostgresBackup
	}
	if _, err := checkBackup(ctx, *from, 0); err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	if _, err := os.Stat(path); err == nil {
		if err := refuseWhileServing(ctx, path); err != nil {
			return err
		}
	}
	// Copied next to the database first, so that a failed copy (a full
	// disk) leaves the old database where it was.
	tmp := path + ".restoring"
	os.Remove(tmp)
	if err := copyFile(*from, tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("restore: %w", err)
	}
	aside := ""
	if _, err := os.Stat(path); err == nil {
		aside = path + ".before-restore-" + time.Now().UTC().Format("20060102T150405Z")
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if err := os.Rename(path+suffix, aside+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				os.Remove(tmp)
				return fmt.Errorf("keep the old database aside: %w", err)
			}
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if aside != "" {
		fmt.Fprintf(stdout, "restored %s from %s; the old database is kept as %s\n", path, *from, aside)
	} else {
		fmt.Fprintf(stdout, "restored %s from %s\n", path, *from)
	}
	return nil
}

// refuseWhileServing refuses when a nofx serve beats on the database at
// path: replacing the file under it would lose what it writes.
func refuseWhileServing(ctx context.Context, path string) error {
	d, err := db.Open(ctx, "sqlite://"+path)
	if err != nil {
		return nil // not a database a server could use
	}
	defer d.Close()
	list, err := nodes.List(ctx, d, db.Now())
	if err != nil {
		return nil // a schema without nodes: no server of this version
	}
	for _, n := range list {
		if !n.Lost(db.Now()) {
			return fmt.Errorf("nofx serve is running on this database (%s, pid %d): stop it first, then restore", n.Host, n.PID)
		}
	}
	return nil
}

// copyFile copies src to dst, which it creates readable by its owner only.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
