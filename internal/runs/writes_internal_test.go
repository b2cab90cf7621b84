package runs

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRowSQLWritesOneRowOrMany(t *testing.T) {
	u := updateByID("steps", "attempt = attempt + 1",
		column{name: "status", typ: "text"}, column{name: "started_at", typ: "timestamptz", expr: "COALESCE(started_at, ?)"})
	require.Equal(t, "UPDATE steps SET attempt = attempt + 1, status = ?, started_at = COALESCE(started_at, ?) WHERE id = ?", u.plain)
	require.Equal(t, "UPDATE steps SET attempt = attempt + 1, status = v.p1, started_at = COALESCE(started_at, v.p2) "+
		"FROM (VALUES (?::text, ?::timestamptz, ?::bigint), (?, ?, ?)) AS v(p1, p2, p3) WHERE steps.id = v.p3", u.many(2))

	i := insertRow("run_events", column{name: "run_id", typ: "bigint"}, column{name: "kind", typ: "text"})
	require.Equal(t, "INSERT INTO run_events (run_id, kind) VALUES (?, ?)", i.plain)
	require.Equal(t, "INSERT INTO run_events (run_id, kind) VALUES (?::bigint, ?::text), (?, ?), (?, ?)", i.many(3))
}

func TestCombinedWritesEachRowSQLAsOnePart(t *testing.T) {
	u := updateByID("runs", "", column{name: "status", typ: "text"})
	other := write{query: "INSERT INTO audit_log (summary) VALUES (?)", args: []any{"x"}}
	one := func(id int64) write { return write{query: u.plain, args: []any{"done", id}, rows: u} }

	parts, oneOff := combined([]write{one(1)})
	require.Equal(t, []write{one(1)}, parts, "a single row is written as it is")
	require.False(t, oneOff)

	parts, oneOff = combined([]write{one(1), other, one(2), one(3)})
	require.True(t, oneOff)
	require.Equal(t, []write{{query: u.many(3), args: []any{"done", int64(1), "done", int64(2), "done", int64(3)}}, other}, parts,
		"the rows in the place of the first, in order")
}
