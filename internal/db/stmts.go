package db

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
)

// maxStmts caps how many distinct queries a DB keeps prepared; queries
// beyond it run unprepared, as through the plain helpers.
const maxStmts = 256

// stmtCache holds the statements prepared on a DB, by query text, and the
// queries waiting to be prepared.
type stmtCache struct {
	mu     sync.Mutex
	stmts  map[string]*sqlx.Stmt
	wanted map[string]struct{}
	failed map[string]int // preparations that failed, by query
}

func newStmtCache() *stmtCache {
	return &stmtCache{stmts: map[string]*sqlx.Stmt{}, wanted: map[string]struct{}{}, failed: map[string]int{}}
}

// maxPrepareFailures is how often a query may fail to prepare before it
// always runs unprepared.
const maxPrepareFailures = 3

// lookup returns the statement prepared for query, or nil after noting
// that it is wanted.
func (c *stmtCache) lookup(query string) *sqlx.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.stmts[query]; st != nil {
		return st
	}
	if len(c.stmts)+len(c.wanted) < maxStmts && c.failed[query] < maxPrepareFailures {
		c.wanted[query] = struct{}{}
	}
	return nil
}

// prepareWanted prepares the queries that transactions asked for. It takes
// a connection, so it runs outside any transaction: before one begins.
func (d *DB) prepareWanted(ctx context.Context) {
	c := d.stmts
	if c == nil {
		return
	}
	c.mu.Lock()
	if len(c.wanted) == 0 {
		c.mu.Unlock()
		return
	}
	queries := make([]string, 0, len(c.wanted))
	for q := range c.wanted {
		queries = append(queries, q)
	}
	c.wanted = map[string]struct{}{}
	c.mu.Unlock()
	for _, q := range queries {
		d.prepare(ctx, q)
	}
}

// prepare prepares query on d and keeps it; it returns nil when that
// fails, and the query then runs unprepared.
func (d *DB) prepare(ctx context.Context, query string) *sqlx.Stmt {
	c := d.stmts
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	st, err := d.DB.PreparexContext(pctx, query)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.failed[query]++
		return nil
	}
	if old := c.stmts[query]; old != nil {
		st.Close()
		return old
	}
	if len(c.stmts) >= maxStmts {
		st.Close()
		return nil
	}
	c.stmts[query] = st
	return st
}

// closeStmts closes every prepared statement.
func (d *DB) closeStmts() {
	c := d.stmts
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, st := range c.stmts {
		st.Close()
		delete(c.stmts, q)
	}
}

// Close closes the prepared statements, the readers and the database.
func (d *DB) Close() error {
	d.closeStmts()
	var rerr error
	if d.reader != nil {
		rerr = d.reader.Close()
	}
	return errors.Join(d.DB.Close(), rerr)
}

// Prepared returns q, which is d or a transaction begun on d, running each
// query as a statement prepared once per connection and kept: PostgreSQL
// then neither parses nor plans it again, and each statement is one round
// trip instead of two. It suits the fixed queries that run on every step;
// use the plain q for one-off and ad-hoc queries.
//
// A transaction never prepares: the first time a query runs in one it runs
// unprepared, and it is prepared on the pool before the next WithTx begins
// (preparing takes a connection, which a transaction holding the only
// SQLite connection could wait for forever).
func (d *DB) Prepared(q Queryer) Queryer {
	if d.stmts == nil {
		return q
	}
	if tx, ok := q.(*sqlx.Tx); ok {
		return preparedTx{Tx: tx, d: d}
	}
	return preparedDB{DB: d}
}

// preparedTx runs a transaction's queries through the statements prepared
// on its DB.
type preparedTx struct {
	*sqlx.Tx
	d *DB
}

func (p preparedTx) stmt(ctx context.Context, query string) *sqlx.Stmt {
	st := p.d.stmts.lookup(query)
	if st == nil {
		return nil
	}
	return p.Tx.StmtxContext(ctx, st)
}

func (p preparedTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := p.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return p.Tx.ExecContext(ctx, query, args...)
}

func (p preparedTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := p.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return p.Tx.QueryContext(ctx, query, args...)
}

func (p preparedTx) QueryxContext(ctx context.Context, query string, args ...any) (*sqlx.Rows, error) {
	if st := p.stmt(ctx, query); st != nil {
		return st.QueryxContext(ctx, args...)
	}
	return p.Tx.QueryxContext(ctx, query, args...)
}

func (p preparedTx) QueryRowxContext(ctx context.Context, query string, args ...any) *sqlx.Row {
	if st := p.stmt(ctx, query); st != nil {
		return st.QueryRowxContext(ctx, args...)
	}
	return p.Tx.QueryRowxContext(ctx, query, args...)
}

// preparedDB runs queries on the pool through statements prepared on
// first use.
type preparedDB struct {
	*DB
}

func (p preparedDB) stmt(ctx context.Context, query string) *sqlx.Stmt {
	c := p.DB.stmts
	c.mu.Lock()
	st, failed := c.stmts[query], c.failed[query] >= maxPrepareFailures || len(c.stmts) >= maxStmts
	c.mu.Unlock()
	if st != nil || failed {
		return st
	}
	return p.DB.prepare(ctx, query)
}

func (p preparedDB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := p.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return p.DB.ExecContext(ctx, query, args...)
}

func (p preparedDB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := p.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return p.DB.QueryContext(ctx, query, args...)
}

func (p preparedDB) QueryxContext(ctx context.Context, query string, args ...any) (*sqlx.Rows, error) {
	if st := p.stmt(ctx, query); st != nil {
		return st.QueryxContext(ctx, args...)
	}
	return p.DB.QueryxContext(ctx, query, args...)
}

func (p preparedDB) QueryRowxContext(ctx context.Context, query string, args ...any) *sqlx.Row {
	if st := p.stmt(ctx, query); st != nil {
		return st.QueryRowxContext(ctx, args...)
	}
	return p.DB.QueryRowxContext(ctx, query, args...)
}
