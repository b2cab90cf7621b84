// Package transfer copies every NOFX table from one database to another,
// of either dialect, through a stream of JSON lines: nofx export writes it,
// nofx import reads it into an empty database, checking each table's row
// count and checksum on arrival. It moves an instance from SQLite to
// PostgreSQL (or back).
package transfer

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/nofxhq/nofx/internal/db"
)

// Format is the version of the stream's layout.
const Format = 1

// table is one table to copy, in an order where every row's references
// exist before it: its key orders rows for the checksum, seeded tables are
// emptied before import (their migration filled them), and identity tables
// have their id sequence moved past the copied ids on PostgreSQL.
type table struct {
	name     string
	key      string
	seeded   bool
	identity bool
}

// tables are NOFX's tables in dependency order. River's own tables and the
// nodes are not copied: jobs are made again for the steps that need them,
// and nodes are the processes of the old database.
var tables = []table{
	{name: "users", key: "id", identity: true},
	{name: "teams", key: "id", identity: true},
	{name: "memberships", key: "team_id, user_id"},
	{name: "sessions", key: "token_hash"},
	{name: "api_keys", key: "id", identity: true},
	{name: "provider_keys", key: "team_id, provider"},
	{name: "model_prices", key: "provider, model", seeded: true},
	{name: "audit_log", key: "id", identity: true},
	{name: "invites", key: "id", identity: true},
	{name: "outbox", key: "id", identity: true},
	{name: "templates", key: "id", identity: true},
	{name: "template_versions", key: "id", identity: true},
	{name: "deployments", key: "id", identity: true},
	{name: "runs", key: "id", identity: true},
	{name: "steps", key: "id", identity: true},
	{name: "run_events", key: "id", identity: true},
	{name: "comparisons", key: "id", identity: true},
	{name: "webhook_deliveries", key: "id", identity: true},
	{name: "login_throttles", key: "email"},
	{name: "plans", key: "id", seeded: true},
	{name: "subscriptions", key: "team_id"},
	{name: "team_usage", key: "team_id, period_start"},
	{name: "usage_warnings", key: "team_id, period_start, metric, quota, threshold"},
	{name: "stripe_events", key: "id"},
	{name: "backups", key: "id", identity: true},
}

// kinds of column values, as both dialects declare them.
const (
	kindInt  = "int"
	kindBool = "bool"
	kindTime = "time"
	kindText = "text"
)

// columnKinds returns each column of t in the database's order, with its
// kind.
func columnKinds(ctx context.Context, q db.Queryer, dialect db.Dialect, t string) ([]string, map[string]string, error) {
	var cols []string
	kinds := map[string]string{}
	if dialect == db.Postgres {
		var rows []struct {
			Name string `db:"column_name"`
			Type string `db:"data_type"`
		}
		err := db.Select(ctx, q, &rows, `SELECT column_name, data_type FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position`, t)
		if err != nil {
			return nil, nil, fmt.Errorf("transfer: columns of %s: %w", t, err)
		}
		for _, r := range rows {
			cols = append(cols, r.Name)
			switch {
			case r.Type == "boolean":
				kinds[r.Name] = kindBool
			case strings.HasPrefix(r.Type, "timestamp"):
				kinds[r.Name] = kindTime
			case r.Type == "bigint" || r.Type == "integer" || r.Type == "smallint":
				kinds[r.Name] = kindInt
			default:
				kinds[r.Name] = kindText
			}
		}
	} else {
		var rows []struct {
			Name string `db:"name"`
			Type string `db:"type"`
		}
		err := db.Select(ctx, q, &rows, `SELECT name, type FROM pragma_table_info(?) ORDER BY cid`, t)
		if err != nil {
			return nil, nil, fmt.Errorf("transfer: columns of %s: %w", t, err)
		}
		for _, r := range rows {
			cols = append(cols, r.Name)
			switch strings.ToUpper(r.Type) {
			case "BOOLEAN":
				kinds[r.Name] = kindBool
			case "DATETIME":
				kinds[r.Name] = kindTime
			case "INTEGER", "BIGINT":
				kinds[r.Name] = kindInt
			default:
				kinds[r.Name] = kindText
			}
		}
	}
	if len(cols) == 0 {
		return nil, nil, fmt.Errorf("transfer: no table %s", t)
	}
	return cols, kinds, nil
}

// normalize turns a scanned value of kind into the stream's value: an
// int64, a bool, a time as UTC RFC 3339 text to the microsecond, a string,
// or nil.
func normalize(v any, kind string) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch kind {
	case kindBool:
		switch b := v.(type) {
		case bool:
			return b, nil
		case int64:
			return b != 0, nil
		}
	case kindInt:
		switch n := v.(type) {
		case int64:
			return n, nil
		case []byte:
			return strconv.ParseInt(string(n), 10, 64)
		case string:
			return strconv.ParseInt(n, 10, 64)
		}
	case kindTime:
		var t db.NullTime
		if err := t.Scan(v); err != nil {
			return nil, err
		}
		return t.Time.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano), nil
	default:
		switch s := v.(type) {
		case string:
			return s, nil
		case []byte:
			return string(s), nil
		case int64:
			return strconv.FormatInt(s, 10), nil
		case float64:
			return strconv.FormatFloat(s, 'g', -1, 64), nil
		}
	}
	return nil, fmt.Errorf("transfer: a %T in a %s column", v, kind)
}

// header is the stream's first line; tableStart and tableEnd enclose each
// table's rows (one JSON array per row, in the columns' order).
type header struct {
	Format int    `json:"nofx_export"`
	Schema int64  `json:"schema_version"`
	From   string `json:"from"`
}

type tableStart struct {
	Table   string   `json:"table"`
	Columns []string `json:"columns"`
}

type tableEnd struct {
	End    string `json:"end"`
	Rows   int64  `json:"rows"`
	SHA256 string `json:"sha256"`
}

// Progress hears how far a copy is: rows of table done so far, of total
// (total is -1 when unknown).
type Progress func(table string, done, total int64)

// Summary is what a copy moved: rows and checksum per table, in order.
type Summary struct {
	Tables []TableSum
}

// TableSum is one table's rows and checksum.
type TableSum struct {
	Table  string
	Rows   int64
	SHA256 string
}

// checksum hashes normalized rows the same way on export and import.
type checksum struct{ h hashWriter }

type hashWriter interface {
	io.Writer
	Sum([]byte) []byte
}

func newChecksum() *checksum { return &checksum{h: sha256.New()} }

func (c *checksum) add(row []any) {
	b, _ := json.Marshal(row) // normalized values always encode
	c.h.Write(b)
	c.h.Write([]byte{'\n'})
}

func (c *checksum) sum() string { return hex.EncodeToString(c.h.Sum(nil)) }

// Export writes every table of d to w, and returns what it wrote.
func Export(ctx context.Context, d *db.DB, w io.Writer, progress Progress) (Summary, error) {
	current, latest, err := d.MigrationVersions(ctx)
	if err != nil {
		return Summary{}, err
	}
	if current != latest {
		return Summary{}, fmt.Errorf("transfer: the schema is at version %d, not %d: run nofx migrate first", current, latest)
	}
	// One snapshot for every table, so that a live database exports whole
	// (no step without its run).
	snap, err := d.BeginSnapshot(ctx)
	if err != nil {
		return Summary{}, fmt.Errorf("transfer: begin the export's snapshot: %w", err)
	}
	defer snap.Rollback() //nolint:errcheck // read only
	if err := checkTables(ctx, snap, d.Dialect); err != nil {
		return Summary{}, err
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(header{Format: Format, Schema: current, From: string(d.Dialect)}); err != nil {
		return Summary{}, err
	}
	var sum Summary
	for _, t := range tables {
		ts, err := exportTable(ctx, snap, d.Dialect, t, enc, progress)
		if err != nil {
			return Summary{}, err
		}
		sum.Tables = append(sum.Tables, ts)
	}
	return sum, bw.Flush()
}

// notCopied are the tables no export holds: River's (jobs are made again),
// goose's (the schema is migrated), the node list, and the runs list's
// version counters (the import's inserts count them again).
func notCopied(name string) bool {
	return strings.HasPrefix(name, "river_") || strings.HasPrefix(name, "sqlite_") || strings.HasPrefix(name, "goose_") ||
		name == "nodes" || name == "run_list_versions"
}

// checkTables refuses a database with a table the export would leave out:
// a new table must be added to tables.
func checkTables(ctx context.Context, q db.Queryer, dialect db.Dialect) error {
	query := `SELECT name FROM sqlite_master WHERE type = 'table'`
	if dialect == db.Postgres {
		query = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
	}
	var names []string
	if err := db.Select(ctx, q, &names, query); err != nil {
		return fmt.Errorf("transfer: list tables: %w", err)
	}
	known := map[string]bool{}
	for _, t := range tables {
		known[t.name] = true
	}
	for _, n := range names {
		if !known[n] && !notCopied(n) {
			return fmt.Errorf("transfer: table %s is not one this version of nofx knows how to copy", n)
		}
	}
	return nil
}

func exportTable(ctx context.Context, q db.Queryer, dialect db.Dialect, t table, enc *json.Encoder, progress Progress) (TableSum, error) {
	cols, kinds, err := columnKinds(ctx, q, dialect, t.name)
	if err != nil {
		return TableSum{}, err
	}
	var total int64
	if err := db.Get(ctx, q, &total, `SELECT COUNT(*) FROM `+t.name); err != nil {
		return TableSum{}, fmt.Errorf("transfer: count %s: %w", t.name, err)
	}
	if err := enc.Encode(tableStart{Table: t.name, Columns: cols}); err != nil {
		return TableSum{}, err
	}
	ck := newChecksum()
	var n int64
	err = eachRow(ctx, q, dialect, t, cols, kinds, func(row []any) error {
		ck.add(row)
		n++
		if progress != nil && n%1000 == 0 {
			progress(t.name, n, total)
		}
		return enc.Encode(row)
	})
	if err != nil {
		return TableSum{}, err
	}
	if progress != nil {
		progress(t.name, n, total)
	}
	ts := TableSum{Table: t.name, Rows: n, SHA256: ck.sum()}
	return ts, enc.Encode(tableEnd{End: t.name, Rows: n, SHA256: ts.SHA256})
}

// eachRow calls fn with every row of t, normalized, in key order: text
// keys in byte order on both databases (PostgreSQL's collation would sort
// them otherwise, and the checksums would differ).
func eachRow(ctx context.Context, q db.Queryer, dialect db.Dialect, t table, cols []string, kinds map[string]string, fn func([]any) error) error {
	order := strings.Split(t.key, ", ")
	for i, k := range order {
		if dialect == db.Postgres && kinds[k] == kindText {
			order[i] = k + ` COLLATE "C"`
		}
	}
	rows, err := q.QueryContext(ctx, `SELECT `+strings.Join(cols, ", ")+` FROM `+t.name+` ORDER BY `+strings.Join(order, ", "))
	if err != nil {
		return fmt.Errorf("transfer: read %s: %w", t.name, err)
	}
	defer rows.Close()
	raw := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("transfer: read %s: %w", t.name, err)
		}
		row := make([]any, len(cols))
		for i, c := range cols {
			v, err := normalize(raw[i], kinds[c])
			if err != nil {
				return fmt.Errorf("transfer: %s.%s: %w", t.name, c, err)
			}
			row[i] = v
		}
		if err := fn(row); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Sums computes every table's rows and checksum in d, as Export would.
func Sums(ctx context.Context, d *db.DB) (Summary, error) {
	var sum Summary
	for _, t := range tables {
		ts, err := tableSum(ctx, d, d.Dialect, t)
		if err != nil {
			return Summary{}, err
		}
		sum.Tables = append(sum.Tables, ts)
	}
	return sum, nil
}

// ErrNotEmpty is an import into a database that holds accounts already.
var ErrNotEmpty = errors.New("transfer: the database to import into is not empty: import into a new, migrated database")

// importBatch is how many rows one INSERT of an import writes.
const importBatch = 200

// Import reads a stream written by Export into d, which must be migrated
// to the stream's schema version and hold no accounts. Each table arrives
// in one transaction, and its count and checksum, read back from d, must
// match the stream's; the whole import stops at the first mismatch.
func Import(ctx context.Context, d *db.DB, r io.Reader, progress Progress) (Summary, error) {
	dec := json.NewDecoder(bufio.NewReaderSize(r, 1<<20))
	dec.UseNumber()
	var h header
	if err := dec.Decode(&h); err != nil || h.Format != Format {
		return Summary{}, fmt.Errorf("transfer: not a nofx export stream (format %d)", Format)
	}
	current, latest, err := d.MigrationVersions(ctx)
	if err != nil {
		return Summary{}, err
	}
	if current != latest || h.Schema != current {
		return Summary{}, fmt.Errorf("transfer: the export is of schema version %d, the database is at %d and this binary at %d: use the same version of nofx for both", h.Schema, current, latest)
	}
	var users int
	if err := db.Get(ctx, d, &users, `SELECT COUNT(*) FROM users`); err != nil {
		return Summary{}, err
	}
	if users > 0 {
		return Summary{}, ErrNotEmpty
	}
	// One transaction for everything: an import that fails (a checksum,
	// a full disk, Ctrl-C) leaves the database empty, ready to try again.
	var sum Summary
	err = db.WithTx(ctx, d, func(tx *sqlx.Tx) error {
		sum = Summary{}
		for _, t := range tables {
			ts, err := importTable(ctx, tx, d.Dialect, t, dec, progress)
			if err != nil {
				return err
			}
			sum.Tables = append(sum.Tables, ts)
		}
		return nil
	})
	if err != nil {
		return Summary{}, err
	}
	return sum, nil
}

func importTable(ctx context.Context, tx *sqlx.Tx, dialect db.Dialect, t table, dec *json.Decoder, progress Progress) (TableSum, error) {
	var start tableStart
	if err := dec.Decode(&start); err != nil || start.Table != t.name {
		return TableSum{}, fmt.Errorf("transfer: expected table %s in the stream: %v", t.name, err)
	}
	cols, kinds, err := columnKinds(ctx, tx, dialect, t.name)
	if err != nil {
		return TableSum{}, err
	}
	if strings.Join(cols, ",") != strings.Join(start.Columns, ",") {
		return TableSum{}, fmt.Errorf("transfer: %s has columns %v here and %v in the export", t.name, cols, start.Columns)
	}
	var end tableEnd
	err = func() error {
		if t.seeded {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+t.name); err != nil {
				return fmt.Errorf("transfer: empty %s: %w", t.name, err)
			}
		}
		var batch [][]any
		var n int64
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			if err := insertRows(ctx, tx, dialect, t, cols, batch); err != nil {
				return err
			}
			n += int64(len(batch))
			batch = batch[:0]
			if progress != nil {
				progress(t.name, n, -1)
			}
			return nil
		}
		for {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return fmt.Errorf("transfer: read %s: %w", t.name, err)
			}
			if len(raw) > 0 && raw[0] == '{' {
				if err := json.Unmarshal(raw, &end); err != nil || end.End != t.name {
					return fmt.Errorf("transfer: the stream's %s does not end as it should", t.name)
				}
				break
			}
			var row []any
			if err := unmarshalRow(raw, &row); err != nil || len(row) != len(cols) {
				return fmt.Errorf("transfer: a row of %s does not read: %v", t.name, err)
			}
			vals := make([]any, len(cols))
			for i, c := range cols {
				if vals[i], err = bind(row[i], kinds[c]); err != nil {
					return fmt.Errorf("transfer: %s.%s: %w", t.name, c, err)
				}
			}
			batch = append(batch, vals)
			if len(batch) == importBatch {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := flush(); err != nil {
			return err
		}
		if t.identity && dialect == db.Postgres {
			if _, err := tx.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence('`+t.name+`', 'id'),
				COALESCE((SELECT MAX(id) FROM `+t.name+`), 0) + 1, false)`); err != nil {
				return fmt.Errorf("transfer: move the ids of %s on: %w", t.name, err)
			}
		}
		return nil
	}()
	if err != nil {
		return TableSum{}, err
	}
	got, err := tableSum(ctx, tx, dialect, t)
	if err != nil {
		return TableSum{}, err
	}
	if got.Rows != end.Rows || got.SHA256 != end.SHA256 {
		return TableSum{}, fmt.Errorf("transfer: %s arrived as %d rows (checksum %s), not %d (%s)", t.name, got.Rows, got.SHA256[:12], end.Rows, end.SHA256[:min(12, len(end.SHA256))])
	}
	return got, nil
}

// tableSum is one table's rows and checksum as q reads them.
func tableSum(ctx context.Context, q db.Queryer, dialect db.Dialect, t table) (TableSum, error) {
	cols, kinds, err := columnKinds(ctx, q, dialect, t.name)
	if err != nil {
		return TableSum{}, err
	}
	ck := newChecksum()
	var n int64
	if err := eachRow(ctx, q, dialect, t, cols, kinds, func(row []any) error { ck.add(row); n++; return nil }); err != nil {
		return TableSum{}, err
	}
	return TableSum{Table: t.name, Rows: n, SHA256: ck.sum()}, nil
}

// unmarshalRow reads a row with its numbers as int64 where they are whole.
func unmarshalRow(raw []byte, row *[]any) error {
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	return dec.Decode(row)
}

// bind turns a stream value into what the database takes for kind.
func bind(v any, kind string) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch kind {
	case kindInt:
		if n, ok := v.(json.Number); ok {
			return n.Int64()
		}
	case kindBool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case kindTime:
		if s, ok := v.(string); ok {
			return time.Parse(time.RFC3339Nano, s)
		}
	default:
		if s, ok := v.(string); ok {
			return s, nil
		}
	}
	return nil, fmt.Errorf("transfer: a %T for a %s column", v, kind)
}

// insertRows writes rows of t in one statement; on PostgreSQL, identity
// columns take the copied ids.
func insertRows(ctx context.Context, tx *sqlx.Tx, dialect db.Dialect, t table, cols []string, rows [][]any) error {
	one := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
	values := strings.TrimSuffix(strings.Repeat(one+", ", len(rows)), ", ")
	overriding := ""
	if t.identity && dialect == db.Postgres {
		overriding = " OVERRIDING SYSTEM VALUE"
	}
	args := make([]any, 0, len(rows)*len(cols))
	for _, r := range rows {
		args = append(args, r...)
	}
	query := `INSERT INTO ` + t.name + ` (` + strings.Join(cols, ", ") + `)` + overriding + ` VALUES ` + values
	if _, err := tx.ExecContext(ctx, tx.Rebind(query), args...); err != nil {
		return fmt.Errorf("transfer: write %s: %w", t.name, err)
	}
	return nil
}
