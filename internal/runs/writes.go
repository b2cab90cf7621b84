package runs

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/nofxhq/nofx/internal/db"
)

// write is a statement held back until the transaction settles; see later.
type write struct {
	query string
	args  []any
	// rows, when set, is the statement that writes this write's row with
	// those of the same statement in other runs (see rowSQL); args are the
	// row's values.
	rows *rowSQL
}

// later holds back a write until the transaction settles, when flush sends
// it with the run's other writes. Writes held back together must change
// distinct rows: on PostgreSQL they run as one statement, whose parts do
// not see each other's changes. Nothing in the transaction may read what
// they change before then.
func (st *state) later(query string, args ...any) {
	st.writes = append(st.writes, write{query: query, args: args})
}

// laterRow is later for a statement that writes one row.
func (st *state) laterRow(r *rowSQL, args ...any) {
	st.writes = append(st.writes, write{query: r.plain, args: args, rows: r})
}

// column is a column that a rowSQL sets from a value of the row.
type column struct {
	name string // the column
	typ  string // the value's PostgreSQL type
	expr string // how the value sets the column, ? standing for the value; "" for the value itself
}

// rowSQL is a statement that writes one row, whose ? are the row's values
// in order, and that writes the rows of a whole batch in one statement on
// PostgreSQL (see many): a batch of a hundred runs then costs one statement
// to parse and plan instead of a hundred.
type rowSQL struct {
	plain string
	// many's text around the VALUES list of n rows, and the types of the
	// values, which the first row states.
	head, tail string
	types      []string
}

// many is the statement that writes n rows, from their values in order.
func (r *rowSQL) many(n int) string {
	var b strings.Builder
	b.WriteString(r.head)
	b.WriteString("VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for j, typ := range r.types {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('?')
			if i == 0 {
				b.WriteString("::" + typ)
			}
		}
		b.WriteByte(')')
	}
	b.WriteString(r.tail)
	return b.String()
}

// updateByID is the rowSQL that updates a row of table, found by its id
// (the last value), setting cols from the values before it and fixed as
// written.
func updateByID(table, fixed string, cols ...column) *rowSQL {
	var plain, many, names, types []string
	if fixed != "" {
		plain, many = append(plain, fixed), append(many, fixed)
	}
	for i, c := range cols {
		expr := c.expr
		if expr == "" {
			expr = "?"
		}
		plain = append(plain, c.name+" = "+expr)
		many = append(many, c.name+" = "+strings.Replace(expr, "?", fmt.Sprintf("v.p%d", i+1), 1))
		names, types = append(names, fmt.Sprintf("p%d", i+1)), append(types, c.typ)
	}
	id := fmt.Sprintf("p%d", len(cols)+1)
	names, types = append(names, id), append(types, "bigint")
	return &rowSQL{
		plain: fmt.Sprintf("UPDATE %s SET %s WHERE id = ?", table, strings.Join(plain, ", ")),
		head:  fmt.Sprintf("UPDATE %s SET %s FROM (", table, strings.Join(many, ", ")),
		tail:  fmt.Sprintf(") AS v(%s) WHERE %s.id = v.%s", strings.Join(names, ", "), table, id),
		types: types,
	}
}

// insertRow is the rowSQL that inserts a row of table with cols from its
// values; many inserts the rows in the order given.
func insertRow(table string, cols ...column) *rowSQL {
	names, marks, types := make([]string, len(cols)), make([]string, len(cols)), make([]string, len(cols))
	for i, c := range cols {
		names[i], marks[i], types[i] = c.name, "?", c.typ
	}
	head := fmt.Sprintf("INSERT INTO %s (%s) ", table, strings.Join(names, ", "))
	return &rowSQL{plain: head + "VALUES (" + strings.Join(marks, ", ") + ")", head: head, types: types}
}

// eventSQL records a timeline event.
var eventSQL = insertRow("run_events",
	column{name: "run_id", typ: "bigint"}, column{name: "step", typ: "text"}, column{name: "kind", typ: "text"},
	column{name: "message", typ: "text"}, column{name: "actor_user_id", typ: "bigint"}, column{name: "actor_key_id", typ: "bigint"},
	column{name: "created_at", typ: "timestamptz"})

// flush writes what the transaction held back: its writes and its
// timeline events. With combine (PostgreSQL) they go as one statement, the
// writes as parts of a WITH, which saves a round trip per write; SQLite,
// in-process, runs them one by one.
func (st *state) flush(ctx context.Context, q db.Queryer, combine bool) error {
	return flushAll(ctx, q, combine, []*state{st})
}

// flushAll is flush for the runs of a batch (see ClaimAll). With combine,
// the writes of all of them go as one statement, in which the rows of each
// rowSQL are one part.
func flushAll(ctx context.Context, q db.Queryer, combine bool, states []*state) error {
	var writes []write
	for _, st := range states {
		writes = append(writes, st.writes...)
		if len(st.pending) > 0 {
			if combine {
				writes = append(writes, st.eventWrites()...)
			} else {
				writes = append(writes, st.eventsWrite())
			}
		}
		st.writes, st.pending = nil, nil
	}
	if len(writes) == 0 {
		return nil
	}
	if !combine {
		for _, w := range writes {
			if _, err := db.Exec(ctx, q, w.query, w.args...); err != nil {
				return fmt.Errorf("runs: write %d runs: %w", len(states), err)
			}
		}
		return nil
	}
	parts, oneOff := combined(writes)
	var b strings.Builder
	if oneOff && len(states) > 1 {
		b.WriteString(db.OneOff) // its text depends on the batch
	}
	var args []any
	last := len(parts) - 1
	for i, w := range parts[:last] {
		if i == 0 {
			b.WriteString("WITH ")
		} else {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "w%d AS (%s)", i, w.query)
		args = append(args, w.args...)
	}
	if last > 0 {
		b.WriteString(" ")
	}
	b.WriteString(parts[last].query)
	args = append(args, parts[last].args...)
	if _, err := db.Exec(ctx, q, b.String(), args...); err != nil {
		return fmt.Errorf("runs: write %d runs: %w", len(states), err)
	}
	return nil
}

// combined turns writes into the parts of one statement: the writes of a
// rowSQL become one part, in the place of the first, that writes all their
// rows; the others stay as they are. oneOff says that the statement's text
// depends on the batch.
func combined(writes []write) (parts []write, oneOff bool) {
	rows := map[*rowSQL][]write{}
	for _, w := range writes {
		switch {
		case w.rows == nil:
			parts, oneOff = append(parts, w), true
		case rows[w.rows] == nil:
			parts = append(parts, write{rows: w.rows})
			fallthrough
		default:
			rows[w.rows] = append(rows[w.rows], w)
		}
	}
	for i, p := range parts {
		if p.rows == nil {
			continue
		}
		group := rows[p.rows]
		if len(group) == 1 {
			parts[i] = group[0]
			continue
		}
		oneOff = true
		part := write{query: p.rows.many(len(group))}
		for _, w := range group {
			part.args = append(part.args, w.args...)
		}
		parts[i] = part
	}
	return parts, oneOff
}

// eventWrites are the pending timeline events as writes of eventSQL.
func (st *state) eventWrites() []write {
	writes := make([]write, len(st.pending))
	for i, e := range st.pending {
		writes[i] = write{query: eventSQL.plain, args: st.eventArgs(e), rows: eventSQL}
	}
	return writes
}

// eventsWrite inserts the pending timeline events in one statement.
func (st *state) eventsWrite() write {
	var b strings.Builder
	b.WriteString(`INSERT INTO run_events (run_id, step, kind, message, actor_user_id, actor_key_id, created_at) VALUES `)
	args := make([]any, 0, 7*len(st.pending))
	for i, e := range st.pending {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?)")
		args = append(args, st.eventArgs(e)...)
	}
	return write{query: b.String(), args: args}
}

// eventArgs are the values of e's row, in eventSQL's order.
func (st *state) eventArgs(e pendingEvent) []any {
	var userID, keyID sql.NullInt64
	if e.actor != nil {
		userID = sql.NullInt64{Int64: e.actor.UserID, Valid: e.actor.UserID != 0}
		keyID = sql.NullInt64{Int64: e.actor.APIKeyID, Valid: e.actor.APIKeyID != 0}
	}
	return []any{st.run.ID, e.step, e.kind, e.message, userID, keyID, st.now}
}
