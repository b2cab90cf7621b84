package db

import "github.com/pressly/goose/v3"

// Provider opens the goose provider of NOFX's own migrations to tests.
func (d *DB) Provider() (*goose.Provider, error) { return d.provider() }
