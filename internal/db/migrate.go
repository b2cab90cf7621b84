package db

import (
	"context"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

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

// Migrate applies every pending migration and returns how many it applied.
func (d *DB) Migrate(ctx context.Context) (int, error) {
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
