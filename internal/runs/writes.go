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
}

// later holds back a write until the transaction settles, when flush sends
// it with the run's other writes. Writes held back together must change
// distinct rows: on PostgreSQL they run as one statement, whose parts do
// not see each other's changes. Nothing in the transaction may read what
// they change before then.
func (st *state) later(query string, args ...any) {
	st.writes = append(st.writes, write{query: query, args: args})
}

// flush writes what the transaction held back: its writes and its
// timeline events. With combine (PostgreSQL) they go as one statement, the
// writes as parts of a WITH, which saves a round trip per write; SQLite,
// in-process, runs them one by one.
func (st *state) flush(ctx context.Context, q db.Queryer, combine bool) error {
	return flushAll(ctx, q, combine, []*state{st})
}

// flushAll is flush for the runs of a batch (see ClaimAll): with combine,
// the writes of all of them go as one statement.
func flushAll(ctx context.Context, q db.Queryer, combine bool, states []*state) error {
	var writes []write
	for _, st := range states {
		writes = append(writes, st.writes...)
		if len(st.pending) > 0 {
			writes = append(writes, st.eventsWrite())
		}
		st.writes, st.pending = nil, nil
	}
	if len(writes) == 0 {
		return nil
	}
	if !combine || len(writes) == 1 {
		for _, w := range writes {
			if _, err := db.Exec(ctx, q, w.query, w.args...); err != nil {
				return fmt.Errorf("runs: write %d runs: %w", len(states), err)
			}
		}
		return nil
	}
	var b strings.Builder
	if len(states) > 1 {
		b.WriteString(db.OneOff) // its text depends on the batch
	}
	var args []any
	last := len(writes) - 1
	for i, w := range writes[:last] {
		if i == 0 {
			b.WriteString("WITH ")
		} else {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "w%d AS (%s)", i, w.query)
		args = append(args, w.args...)
	}
	b.WriteString(" ")
	b.WriteString(writes[last].query)
	args = append(args, writes[last].args...)
	if _, err := db.Exec(ctx, q, b.String(), args...); err != nil {
		return fmt.Errorf("runs: write %d runs: %w", len(states), err)
	}
	return nil
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
		var userID, keyID sql.NullInt64
		if e.actor != nil {
			userID = sql.NullInt64{Int64: e.actor.UserID, Valid: e.actor.UserID != 0}
			keyID = sql.NullInt64{Int64: e.actor.APIKeyID, Valid: e.actor.APIKeyID != 0}
		}
		args = append(args, st.run.ID, e.step, e.kind, e.message, userID, keyID, st.now)
	}
	return write{query: b.String(), args: args}
}
