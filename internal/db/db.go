// Package db opens NOFX's database (SQLite or PostgreSQL, from one URL),
// applies its embedded migrations and runs work in transactions.
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect names the SQL database behind a DB.
type Dialect string

// The supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// ErrNotFound is returned by stores when the row asked for does not exist.
var ErrNotFound = errors.New("not found")

func init() {
	sqlx.BindDriver("sqlite", sqlx.QUESTION)
}

// DB is an open database with its dialect.
type DB struct {
	*sqlx.DB
	Dialect Dialect
	reader  *DB    // SQLite's read-only connections; nil on PostgreSQL, which reads through its one pool
	url     string // what Open was given, for connections outside the pool (see URL)
}

// URL is the database URL the DB was opened from, password included: for
// what needs a connection of its own (the engine's LISTEN connection on
// PostgreSQL). Never log it.
func (d *DB) URL() string { return d.url }

// Reader returns what reads run against when they need not see a
// transaction's own uncommitted writes: on SQLite, read-only connections to
// the same file that read beside the single writer instead of queueing
// behind it (WAL readers see every committed write); on PostgreSQL, the one
// pool. Writes, and reads inside a transaction, go through the DB itself.
func (d *DB) Reader() Queryer {
	if d.reader != nil {
		return d.reader
	}
	return d
}

// Close closes the readers and the database.
func (d *DB) Close() error {
	var rerr error
	if d.reader != nil {
		rerr = d.reader.Close()
	}
	return errors.Join(d.DB.Close(), rerr)
}

// Queryer is what stores run SQL against: a *DB's embedded *sqlx.DB or a
// *sqlx.Tx.
type Queryer = sqlx.ExtContext

// Open connects to the database named by rawURL, which starts with
// sqlite:// (a file path follows) or postgres://, and checks that it answers.
func Open(ctx context.Context, rawURL string) (*DB, error) {
	var (
		d   *DB
		err error
	)
	switch {
	case strings.HasPrefix(rawURL, "sqlite://"):
		d, err = openSQLite(strings.TrimPrefix(rawURL, "sqlite://"))
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		d, err = openPostgres(rawURL)
	default:
		return nil, fmt.Errorf("db: unsupported database URL %q: use sqlite:// or postgres://", redact(rawURL))
	}
	if err != nil {
		return nil, err
	}
	d.url = rawURL
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := d.PingContext(pingCtx); err != nil {
		d.Close()
		return nil, fmt.Errorf("db: connect to %s: %w", redact(rawURL), err)
	}
	if d.reader != nil {
		if err := d.reader.PingContext(pingCtx); err != nil {
			d.Close()
			return nil, fmt.Errorf("db: connect to %s for reading: %w", redact(rawURL), err)
		}
	}
	return d, nil
}

// defaultBusyTimeout is how long a statement waits for another
// connection's lock on the SQLite file (another process, a backup) before
// it fails as unavailable; ?busy_timeout= in the URL changes it.
const defaultBusyTimeout = 10 * time.Second

func openSQLite(path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("db: sqlite:// needs a file path, such as sqlite://data/nofx.db")
	}
	busy := defaultBusyTimeout
	if i := strings.IndexByte(path, '?'); i >= 0 {
		opts, err := url.ParseQuery(path[i+1:])
		if err != nil {
			return nil, fmt.Errorf("db: sqlite options %q: %w", path[i+1:], err)
		}
		if v := opts.Get("busy_timeout"); v != "" {
			if busy, err = time.ParseDuration(v); err != nil || busy < 0 || busy > time.Hour {
				return nil, fmt.Errorf("db: sqlite busy_timeout %q: use a duration such as 10s, at most 1h", v)
			}
		}
		path = path[:i]
	}
	if err := privateFiles(path); err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	q.Set("_time_format", "sqlite")
	sqlDB, err := openCaching("sqlite", "file:"+path+"?"+q.Encode(), nil, &fileLock{})
	if err != nil {
		return nil, fmt.Errorf("db: open sqlite %s: %w", path, err)
	}
	// SQLite has one writer at a time; one connection makes that explicit
	// and keeps every transaction from waiting on another's lock.
	sqlDB.SetMaxOpenConns(1)
	sqlDB.SetConnMaxLifetime(0)
	sqlDB.SetConnMaxIdleTime(0)
	d := &DB{DB: sqlx.NewDb(sqlDB, "sqlite"), Dialect: SQLite}
	if isMemory(path) {
		return d, nil // another connection would open another database
	}
	reader, err := openSQLiteReader(path, busy)
	if err != nil {
		sqlDB.Close()
		return nil, err
	}
	d.reader = &DB{DB: reader, Dialect: SQLite}
	return d, nil
}

// openSQLiteReader opens the read-only connections of Reader. They leave
// the journal mode to the writer (WAL is a property of the file) and use
// the writer's time format, so that times bound as arguments compare as
// the stored ones do.
func openSQLiteReader(path string, busy time.Duration) (*sqlx.DB, error) {
	q := url.Values{}
	q.Set("mode", "ro")
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
	q.Add("_pragma", "query_only(1)")
	q.Set("_time_format", "sqlite")
	sqlDB, err := openCaching("sqlite", "file:"+path+"?"+q.Encode(), nil, nil)
	if err != nil {
		return nil, fmt.Errorf("db: open sqlite reader %s: %w", path, err)
	}
	n := max(4, 2*runtime.GOMAXPROCS(0))
	sqlDB.SetMaxOpenConns(n)
	sqlDB.SetMaxIdleConns(n)
	sqlDB.SetConnMaxLifetime(0)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	return sqlx.NewDb(sqlDB, "sqlite"), nil
}

func isMemory(path string) bool {
	return path == ":memory:" || strings.HasPrefix(path, "file::memory:")
}

// privateFiles makes the SQLite database file readable by its owner only
// (0600) before SQLite opens it, which gives its WAL and shared-memory files
// the same mode; files left by an older version are narrowed too.
func privateFiles(path string) error {
	if isMemory(path) {
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("db: open sqlite %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("db: open sqlite %s: %w", path, err)
	}
	for _, name := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		if err := os.Chmod(name, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("db: make %s private: %w", name, err)
		}
	}
	return nil
}

func openPostgres(rawURL string) (*DB, error) {
	sqlDB, err := openCaching("postgres", rawURL, stalePlan, nil)
	if err != nil {
		return nil, fmt.Errorf("db: open postgres %s: %w", redact(rawURL), err)
	}
	sqlDB.SetMaxOpenConns(25)
	sqlDB.SetMaxIdleConns(25) // as many as open: re-opening a connection costs a backend fork
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	return &DB{DB: sqlx.NewDb(sqlDB, "postgres"), Dialect: Postgres}, nil
}

// openCaching opens a pool of the registered driver name whose
// connections keep their statements prepared (see cachingConnector).
func openCaching(name, dsn string, stale func(error) bool, locked *fileLock) (*sql.DB, error) {
	probe, err := sql.Open(name, "") // connects to nothing: only to reach the driver
	if err != nil {
		return nil, err
	}
	d := probe.Driver()
	_ = probe.Close()
	return sql.OpenDB(&cachingConnector{driver: d, dsn: dsn, stale: stale, locked: locked}), nil
}

// stalePlan reports PostgreSQL's refusal to run a prepared statement whose
// result columns a migration changed.
func stalePlan(err error) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && pqErr.Code == "0A000"
}

// redact hides the password in a database URL for messages and logs.
func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		return rawURL
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// WithTx runs fn in a transaction: it commits when fn returns nil and rolls
// back otherwise, or when fn panics.
func WithTx(ctx context.Context, d *DB, fn func(tx *sqlx.Tx) error) error {
	tx, err := d.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("db: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after commit
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("db: commit: %w", err)
	}
	return nil
}

// Get runs query (written with ? placeholders) and scans one row into dest;
// no row is ErrNotFound.
func Get(ctx context.Context, q Queryer, dest any, query string, args ...any) error {
	err := sqlx.GetContext(ctx, q, dest, q.Rebind(query), args...)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// Select runs query (written with ? placeholders) and scans every row into
// dest, a pointer to a slice.
func Select(ctx context.Context, q Queryer, dest any, query string, args ...any) error {
	return sqlx.SelectContext(ctx, q, dest, q.Rebind(query), args...)
}

// Exec runs a statement written with ? placeholders.
func Exec(ctx context.Context, q Queryer, query string, args ...any) (sql.Result, error) {
	return q.ExecContext(ctx, q.Rebind(query), args...)
}

// ExecOne runs a statement that must change exactly one row; changing none
// is ErrNotFound.
func ExecOne(ctx context.Context, q Queryer, query string, args ...any) error {
	res, err := Exec(ctx, q, query, args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// IsUniqueViolation reports whether err is a unique-constraint violation on
// either database.
func IsUniqueViolation(err error) bool {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		return pqErr.Code == "23505"
	}
	var sqliteErr *sqlite.Error
	if errors.As(err, &sqliteErr) {
		code := sqliteErr.Code()
		return code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// IsLockTimeout reports whether err is PostgreSQL giving up a lock wait
// past lock_timeout.
func IsLockTimeout(err error) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && pqErr.Code == "55P03"
}

// Now is the current time as stored in the database: UTC, to the
// microsecond, so that both dialects keep and return the same value.
func Now() time.Time {
	return time.Now().UTC().Truncate(time.Microsecond)
}

// Clock is the time by the database: PostgreSQL's own clock, for what
// processes on several hosts compare (a host whose clock is off must not
// make the others look late or early), and this host's on SQLite, whose
// processes share one host.
func Clock(ctx context.Context, q Queryer) (time.Time, error) {
	if q.DriverName() != "postgres" {
		return Now(), nil
	}
	var t time.Time
	if err := Get(ctx, q, &t, `SELECT CURRENT_TIMESTAMP`); err != nil {
		return time.Time{}, fmt.Errorf("db: clock: %w", err)
	}
	return t.UTC().Truncate(time.Microsecond), nil
}

// BeginSnapshot begins a read-only transaction that sees one moment of the
// database throughout (REPEATABLE READ on PostgreSQL; a read transaction
// on SQLite's readers, which WAL keeps at one snapshot). Roll it back when
// done.
func (d *DB) BeginSnapshot(ctx context.Context) (*sqlx.Tx, error) {
	if d.Dialect == Postgres {
		return d.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	}
	r := d
	if d.reader != nil {
		r = d.reader
	}
	tx, err := r.BeginTxx(ctx, nil)
	if err != nil {
		return nil, err
	}
	// SQLite's snapshot starts with the first read, not with BEGIN.
	if _, err := tx.ExecContext(ctx, `SELECT COUNT(*) FROM sqlite_master`); err != nil {
		tx.Rollback() //nolint:errcheck // the read failed already
		return nil, err
	}
	return tx, nil
}

// InIDs is a condition that column is one of ids, with its one argument:
// one statement whatever the number of ids (an array on PostgreSQL, a JSON
// array on SQLite), so that its prepared form is kept and reused.
func (d *DB) InIDs(column string, ids []int64) (string, any) {
	if d.Dialect == Postgres {
		return column + ` = ANY(?)`, pq.Array(ids)
	}
	var b strings.Builder
	b.WriteByte('[')
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(id, 10))
	}
	b.WriteByte(']')
	return column + ` IN (SELECT value FROM json_each(?))`, b.String()
}
