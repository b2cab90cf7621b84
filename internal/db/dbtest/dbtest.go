// Package dbtest gives tests a fresh, migrated database: SQLite in a
// temporary directory, and PostgreSQL in a schema of its own when
// NOFX_TEST_DATABASE_URL is set.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/lib/pq" // the postgres driver, for the admin connection

	"github.com/nofxhq/nofx/internal/db"
)

// Each runs fn once on SQLite and once on PostgreSQL, each on a fresh
// database. Without NOFX_TEST_DATABASE_URL the PostgreSQL run is skipped,
// unless CI=true, where that is a failure.
func Each(t *testing.T, fn func(t *testing.T, d *db.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		fn(t, SQLite(t))
	})
	t.Run("postgres", func(t *testing.T) {
		fn(t, Postgres(t))
	})
}

// SQLite opens a migrated SQLite database in a temporary directory.
func SQLite(t testing.TB) *db.DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "test.db")
	return open(t, "sqlite://"+path)
}

// SQLiteURL returns the URL of a migrated SQLite database in a temporary
// directory, for tests that start their own process.
func SQLiteURL(t testing.TB) string {
	t.Helper()
	u := "sqlite://" + filepath.Join(t.TempDir(), "test.db")
	open(t, u)
	return u
}

// Postgres opens a migrated PostgreSQL database in a new schema that is
// dropped when the test ends, so tests never see each other's rows.
func Postgres(t testing.TB) *db.DB {
	t.Helper()
	return open(t, PostgresURL(t))
}

// PostgresURL creates an empty schema for this test and returns a URL whose
// connections use it.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv("NOFX_TEST_DATABASE_URL")
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("NOFX_TEST_DATABASE_URL is not set, and CI=true requires the PostgreSQL tests")
		}
		t.Skip("NOFX_TEST_DATABASE_URL is not set; skipping PostgreSQL")
	}
	admin, err := sql.Open("postgres", base)
	if err != nil {
		t.Fatalf("dbtest: open %s: %v", base, err)
	}
	t.Cleanup(func() { admin.Close() })

	schema := "test_" + randomHex(8)
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("dbtest: create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Logf("dbtest: drop schema %s: %v", schema, err)
		}
	})

	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("dbtest: parse NOFX_TEST_DATABASE_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func open(t testing.TB, rawURL string) *db.DB {
	t.Helper()
	ctx := context.Background()
	d, err := db.Open(ctx, rawURL)
	if err != nil {
		t.Fatalf("dbtest: open: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := d.Migrate(ctx); err != nil {
		t.Fatalf("dbtest: migrate: %v", err)
	}
	return d
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
