package db_test

import (
	"context"
	"database/sql"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
)

// TestSchemasMatch checks that after every migration SQLite and PostgreSQL
// have the same tables, the same columns in each (NULL allowed or not), the same indexes, each on
// the same columns, unique or not, partial or not, and the same UNIQUE
// constraints: the two sets of migrations are
// written by hand, and a column or index missing on one database shows only
// where that database runs. River's and goose's own tables are theirs.
func TestSchemasMatch(t *testing.T) {
	ctx := context.Background()
	sqlite := sqliteSchema(t, ctx, dbtest.SQLite(t))
	postgres := postgresSchema(t, ctx, dbtest.Postgres(t))
	require.NotEmpty(t, sqlite)
	require.Equal(t, sqlite, postgres)
}

// ours says whether a table is NOFX's own.
func ours(table string) bool {
	return !strings.HasPrefix(table, "river_") && !strings.HasPrefix(table, "goose_")
}

// schema is a database's tables, each as its sorted columns, indexes,
// UNIQUE constraints and triggers, one line each: "column name", "index
// name (cols) unique partial", "unique (cols)", "trigger name".
type schema map[string][]string

func sqliteSchema(t *testing.T, ctx context.Context, d *db.DB) schema {
	t.Helper()
	var tables []string
	require.NoError(t, db.Select(ctx, d, &tables, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`))
	s := schema{}
	for _, table := range tables {
		if !ours(table) {
			continue
		}
		var cols []column
		// SQLite lets an INTEGER PRIMARY KEY say it may be null; it may not.
		require.NoError(t, db.Select(ctx, d, &cols, `SELECT name, ("notnull" OR pk > 0) AS not_null FROM pragma_table_info(?)`, table))
		lines := columnLines(cols)
		var indexes []struct {
			Name    string `db:"name"`
			Unique  bool   `db:"unique"`
			Partial bool   `db:"partial"`
			Origin  string `db:"origin"`
		}
		require.NoError(t, db.Select(ctx, d, &indexes, `SELECT name, "unique", partial, origin FROM pragma_index_list(?) WHERE origin IN ('c', 'u')`, table))
		for _, ix := range indexes {
			var on []string
			require.NoError(t, db.Select(ctx, d, &on, `SELECT COALESCE(name, '(expression)') FROM pragma_index_info(?) ORDER BY seqno`, ix.Name))
			if ix.Origin == "u" { // a UNIQUE constraint's, which SQLite names itself
				lines = append(lines, "unique ("+strings.Join(on, ", ")+")")
				continue
			}
			lines = append(lines, indexLine(ix.Name, on, ix.Unique, ix.Partial))
		}
		var triggers []string
		require.NoError(t, db.Select(ctx, d, &triggers, `SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?`, table))
		lines = append(lines, triggerLines(triggers)...)
		sort.Strings(lines)
		s[table] = lines
	}
	return s
}

func postgresSchema(t *testing.T, ctx context.Context, d *db.DB) schema {
	t.Helper()
	var tables []string
	require.NoError(t, db.Select(ctx, d, &tables, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`))
	s := schema{}
	for _, table := range tables {
		if !ours(table) {
			continue
		}
		var cols []column
		require.NoError(t, db.Select(ctx, d, &cols, `SELECT column_name AS name, is_nullable = 'NO' AS not_null FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name = ?`, table))
		lines := columnLines(cols)
		var indexes []struct {
			Name       string         `db:"name"`
			Unique     bool           `db:"indisunique"`
			Partial    bool           `db:"partial"`
			On         string         `db:"columns"`
			Constraint sql.NullString `db:"contype"`
		}
		// Primary keys aside: SQLite has no index for an INTEGER PRIMARY KEY.
		require.NoError(t, db.Select(ctx, d, &indexes, `SELECT i.relname AS name, ix.indisunique, ix.indpred IS NOT NULL AS partial,
			(SELECT c.contype FROM pg_constraint c WHERE c.conindid = ix.indexrelid) AS contype,
			(SELECT string_agg(COALESCE(a.attname, '(expression)'), ',' ORDER BY k.n)
			 FROM unnest(ix.indkey) WITH ORDINALITY AS k(attnum, n)
			 LEFT JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.attnum AND k.attnum > 0) AS columns
			FROM pg_index ix
			JOIN pg_class i ON i.oid = ix.indexrelid
			JOIN pg_class t ON t.oid = ix.indrelid
			WHERE t.relnamespace = current_schema()::regnamespace AND t.relname = ?
			AND NOT ix.indisprimary`, table))
		for _, ix := range indexes {
			on := strings.Split(ix.On, ",")
			if ix.Constraint.String == "u" {
				lines = append(lines, "unique ("+strings.Join(on, ", ")+")")
				continue
			}
			lines = append(lines, indexLine(ix.Name, on, ix.Unique, ix.Partial))
		}
		var triggers []string
		require.NoError(t, db.Select(ctx, d, &triggers, `SELECT tg.tgname FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid
			WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ? AND NOT tg.tgisinternal`, table))
		lines = append(lines, triggerLines(triggers)...)
		sort.Strings(lines)
		s[table] = lines
	}
	return s
}

// triggerLines are a table's triggers, by name: both databases must keep
// the same counters (such as migration 13's runs list versions).
func triggerLines(names []string) []string {
	lines := make([]string, len(names))
	for i, n := range names {
		lines[i] = "trigger " + n
	}
	return lines
}

// column is a column's name and whether it refuses NULL.
type column struct {
	Name    string `db:"name"`
	NotNull bool   `db:"not_null"`
}

func columnLines(cols []column) []string {
	lines := make([]string, len(cols))
	for i, c := range cols {
		lines[i] = "column " + c.Name
		if c.NotNull {
			lines[i] += " not null"
		}
	}
	return lines
}

func indexLine(name string, on []string, unique, partial bool) string {
	line := "index " + name + " (" + strings.Join(on, ", ") + ")"
	if unique {
		line += " unique"
	}
	if partial {
		line += " partial"
	}
	return line
}
