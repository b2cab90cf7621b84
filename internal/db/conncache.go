package db

import (
	"container/list"
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"reflect"
	"strings"
)

// maxConnStmts caps how many statements one connection keeps prepared; the
// one used longest ago gives way to a new one (River builds some queries
// with one placeholder per id, so their texts vary without end).
const maxConnStmts = 256

// cachingConnector opens connections of a driver that keep every query
// with arguments prepared, by its text, for the life of the connection: on
// SQLite the statement is then parsed once per connection instead of on
// every call, and on PostgreSQL it is parsed and planned once by the
// server. Being below database/sql, it covers River's queries as well as
// NOFX's. Queries without arguments (migrations, scripts of several
// statements) run as the driver runs them.
type cachingConnector struct {
	driver driver.Driver
	dsn    string
	// stale reports an error after which a prepared statement must be
	// prepared again (PostgreSQL's "cached plan must not change result
	// type" after a migration altered a table it reads).
	stale func(error) bool
	// locked, for SQLite's writer, fails calls at once while another
	// connection holds the file (see fileLock); nil for the others.
	locked *fileLock
}

func (c *cachingConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.driver.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &cachingConn{Conn: conn, stmts: map[string]*cachedStmt{}, stale: c.stale, locked: c.locked}, nil
}

func (c *cachingConnector) Driver() driver.Driver { return c.driver }

// cachedStmt is a statement a connection keeps, and whether rows it
// returned are still open (then the query runs unprepared meanwhile).
type cachedStmt struct {
	query string
	stmt  driver.Stmt
	busy  bool
	use   *list.Element // its place in the connection's order of use
}

// cachingConn is a connection with its prepared statements. database/sql
// uses a connection from one goroutine at a time, so it needs no lock.
type cachingConn struct {
	driver.Conn
	stmts  map[string]*cachedStmt
	used   list.List // of *cachedStmt, the most recently used first
	stale  func(error) bool
	locked *fileLock
}

// OneOff starts a query whose text is not worth keeping prepared: built
// for one call (the writes of a batch of runs, say), it would only push
// out statements that are used again.
const OneOff = "/* one-off */ "

// errNoCache makes a call go to the connection itself.
var errNoCache = errors.New("db: not cached")

// stmt returns the statement kept for query, preparing it when there is
// room; errNoCache when the query must run unprepared.
func (c *cachingConn) stmt(ctx context.Context, query string) (*cachedStmt, error) {
	if strings.HasPrefix(query, OneOff) {
		return nil, errNoCache
	}
	if cs := c.stmts[query]; cs != nil {
		if cs.busy {
			return nil, errNoCache
		}
		c.used.MoveToFront(cs.use)
		return cs, nil
	}
	if len(c.stmts) >= maxConnStmts && !c.evict() {
		return nil, errNoCache
	}
	p, ok := c.Conn.(driver.ConnPrepareContext)
	if !ok {
		return nil, errNoCache
	}
	st, err := p.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	_, queries := st.(driver.StmtQueryContext)
	_, execs := st.(driver.StmtExecContext)
	if !queries || !execs {
		_ = st.Close()
		return nil, errNoCache
	}
	cs := &cachedStmt{query: query, stmt: st}
	cs.use = c.used.PushFront(cs)
	c.stmts[query] = cs
	return cs, nil
}

// evict closes the statement used longest ago whose rows are not open,
// and reports whether there was one.
func (c *cachingConn) evict() bool {
	for e := c.used.Back(); e != nil; e = e.Prev() {
		if cs := e.Value.(*cachedStmt); !cs.busy {
			c.drop(cs)
			return true
		}
	}
	return false
}

// drop closes a kept statement and forgets it.
func (c *cachingConn) drop(cs *cachedStmt) {
	c.used.Remove(cs.use)
	delete(c.stmts, cs.query)
	_ = cs.stmt.Close()
}

// forget drops query's statement after an error that makes it stale.
func (c *cachingConn) forget(query string, err error) {
	if c.stale == nil || !c.stale(err) {
		return
	}
	if cs := c.stmts[query]; cs != nil && !cs.busy {
		c.drop(cs)
	}
}

func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (_ driver.Rows, err error) {
	if err := c.locked.check(); err != nil {
		return nil, err
	}
	defer func() { c.locked.observe(err) }()
	if len(args) > 0 {
		cs, err := c.stmt(ctx, query)
		if err == nil {
			rows, err := cs.stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
			if err != nil {
				c.forget(query, err)
				return nil, err
			}
			cs.busy = true
			return &cachedRows{Rows: rows, stmt: cs}, nil
		}
		if !errors.Is(err, errNoCache) {
			return nil, err
		}
	}
	if q, ok := c.Conn.(driver.QueryerContext); ok {
		return q.QueryContext(ctx, query, args)
	}
	return nil, driver.ErrSkip
}

func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (_ driver.Result, err error) {
	if err := c.locked.check(); err != nil {
		return nil, err
	}
	defer func() { c.locked.observe(err) }()
	if len(args) > 0 {
		cs, err := c.stmt(ctx, query)
		if err == nil {
			res, err := cs.stmt.(driver.StmtExecContext).ExecContext(ctx, args)
			if err != nil {
				c.forget(query, err)
			}
			return res, err
		}
		if !errors.Is(err, errNoCache) {
			return nil, err
		}
	}
	if e, ok := c.Conn.(driver.ExecerContext); ok {
		return e.ExecContext(ctx, query, args)
	}
	return nil, driver.ErrSkip
}

func (c *cachingConn) Close() error {
	for _, cs := range c.stmts {
		c.drop(cs)
	}
	return c.Conn.Close()
}

// The connection's other abilities pass through.

func (c *cachingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if p, ok := c.Conn.(driver.ConnPrepareContext); ok {
		return p.PrepareContext(ctx, query)
	}
	return c.Conn.Prepare(query)
}

func (c *cachingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (_ driver.Tx, err error) {
	if err := c.locked.check(); err != nil {
		return nil, err
	}
	defer func() { c.locked.observe(err) }()
	if b, ok := c.Conn.(driver.ConnBeginTx); ok {
		return b.BeginTx(ctx, opts)
	}
	//lint:ignore SA1019 the driver has nothing else
	return c.Conn.Begin()
}

func (c *cachingConn) Ping(ctx context.Context) error {
	if p, ok := c.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *cachingConn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *cachingConn) IsValid() bool {
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c *cachingConn) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := c.Conn.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

// cachedRows frees its statement for the next call when closed.
type cachedRows struct {
	driver.Rows
	stmt *cachedStmt
}

func (r *cachedRows) Close() error {
	err := r.Rows.Close()
	r.stmt.busy = false
	return err
}

func (r *cachedRows) HasNextResultSet() bool {
	n, ok := r.Rows.(driver.RowsNextResultSet)
	return ok && n.HasNextResultSet()
}

func (r *cachedRows) NextResultSet() error {
	if n, ok := r.Rows.(driver.RowsNextResultSet); ok {
		return n.NextResultSet()
	}
	return io.EOF
}

func (r *cachedRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *cachedRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}
