package db

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/nofxhq/nofx/migrations"
)

// provider builds the goose provider for this database's dialect.
func (d *DB) provider() (*goose.Provider, error) {
	sub, err := fs.Sub(migrations.FS, string(d.Dialect))
	if err != nil {
		return nil, fmt.Errorf("db: migrations for %s: %w", d.Dialect, err)
	}
	var opts []goose.ProviderOption
	dialect := goose.DialectSQLite3
	if d.Dialect == Postgres {
		dialect = goose.DialectPostgres
		// A lock table in the connection's own schema lets several processes
		// start at once without applying a migration twice.
		locker, err := lock.NewPostgresTableLocker()
		if err != nil {
			return nil, fmt.Errorf("db: migration lock: %w", err)
		}
		opts = append(opts, goose.WithLocker(locker))
	}
	p, err := goose.NewProvider(dialect, d.DB.DB, sub, opts...)
	if err != nil {
		return nil, fmt.Errorf("db: migrations: %w", err)
	}
	return p, nil
}

// Migrate applies every pending migration, River's job tables first, and
// returns how many of NOFX's own it applied.
func (d *DB) Migrate(ctx context.Context) (int, error) {
	if d.Dialect == Postgres {
		// Processes starting at once take turns; the lock is per schema.
		conn, err := d.DB.DB.Conn(ctx)
		if err != nil {
			return 0, fmt.Errorf("db: migrate: %w", err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(hashtext('nofx-migrate:' || current_schema()))`); err != nil {
			return 0, fmt.Errorf("db: migrate: lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtext('nofx-migrate:' || current_schema()))`) //nolint:errcheck // closing the connection unlocks too
	}
	if err := d.migrateRiver(ctx); err != nil {
		return 0, err
	}
	p, err := d.provider()
	if err != nil {
		return 0, err
	}
	results, err := p.Up(ctx)
	if err != nil {
		return 0, fmt.Errorf("db: migrate: %w", err)
	}
	return len(results), nil
}

// MigrateTo applies River's migrations and NOFX's own up to version, for
// tests of what one migration does to the rows before it.
func (d *DB) MigrateTo(ctx context.Context, version int64) error {
	if err := d.migrateRiver(ctx); err != nil {
		return err
	}
	p, err := d.provider()
	if err != nil {
		return err
	}
	if _, err := p.UpTo(ctx, version); err != nil {
		return fmt.Errorf("db: migrate to %d: %w", version, err)
	}
	return nil
}

// migrateRiver brings River's tables (jobs, leaders, queues) up to date.
func (d *DB) migrateRiver(ctx context.Context) error {
	var err error
	if d.Dialect == Postgres {
		var m *rivermigrate.Migrator[*sql.Tx]
		if m, err = rivermigrate.New(riverdatabasesql.New(d.DB.DB), nil); err == nil {
			_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
		}
	} else {
		var m *rivermigrate.Migrator[*sql.Tx]
		if m, err = rivermigrate.New(riversqlite.New(d.DB.DB), nil); err == nil {
			_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
		}
	}
	if err != nil {
		return fmt.Errorf("db: migrate river: %w", err)
	}
	return nil
}

// MigrationVersions returns the schema version of the database and the
// newest version this binary knows.
func (d *DB) MigrationVersions(ctx context.Context) (current, latest int64, err error) {
	p, err := d.provider()
	if err != nil {
		return 0, 0, err
	}
	current, latest, err = p.GetVersions(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("db: migration versions: %w", err)
	}
	return current, latest, nil
}

// LatestMigration is the version the embedded migrations of dialect bring
// a database to.
func LatestMigration(dialect Dialect) (int64, error) {
	entries, err := fs.ReadDir(migrations.FS, string(dialect))
	if err != nil {
		return 0, fmt.Errorf("db: migrations for %s: %w", dialect, err)
	}
	var latest int64
	for _, e := range entries {
		name := e.Name()
		i := strings.IndexByte(name, '_')
		if i <= 0 || !strings.HasSuffix(name, ".sql") {
			continue
		}
		if n, err := strconv.ParseInt(name[:i], 10, 64); err == nil && n > latest {
			latest = n
		}
	}
	return latest, nil
}
