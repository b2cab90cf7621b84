// Package health answers an operator's questions about a running instance:
// is the database well, which nodes serve, is work flowing, what is stuck,
// how providers, mail and rate limits fare. Each section says plainly what
// is wrong, with the fix.
package health

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/mail"
	"github.com/nofxhq/nofx/internal/metrics"
	"github.com/nofxhq/nofx/internal/nodes"
	"github.com/nofxhq/nofx/internal/runs"
)

// Statuses of a check.
const (
	OK   = "ok"
	Warn = "warn"
	Fail = "fail"
)

// Check is one thing that is well or not, and what to do when not.
type Check struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
}

// Checker gathers the report; the fields it cannot have are nil.
type Checker struct {
	DB      *db.DB
	DataDir string // where the SQLite file lives
	SMTP    bool   // mail goes out over SMTP (else to the outbox)
	Mail    *mail.Tracked
	Recent  *metrics.Recent
	Workers int         // this node's workers
	Running func() bool // this node's engine runs
	Now     func() time.Time
}

// Database is the database section.
type Database struct {
	Dialect       string
	ServerVersion string
	SizeBytes     int64
	FreeBytes     int64 // on the SQLite file's disk; -1 when not known
	DiskBytes     int64
	Migration     int64
	Latest        int64
	InUse, Idle   int
	MaxOpen       int
	WaitCount     int64
	WaitDuration  time.Duration
}

// Queue is the steps not finished, by what they wait for, and the flow.
type Queue struct {
	Queued          int // ready, waiting for a worker
	Running         int
	WaitingApproval int
	WaitingCircuit  int
	WaitingLimit    int // the team's spend limit
	Scheduled       int // a retry, or the team's turn, at a later time
	OldestQueued    time.Duration
	PerMinute       []int // steps finished in each of the last 60 minutes, oldest first
	DeadLetters     int
}

// Report is everything Admin → Health shows.
type Report struct {
	At         time.Time
	Checks     []Check
	Database   Database
	Nodes      []nodes.Node
	Queue      Queue
	Providers  []metrics.ProviderHour
	Refused    map[string]int64
	MailError  string
	MailErrAt  time.Time
	MailOKAt   time.Time
	LastBackup *time.Time
}

// Worst is the worst status among the checks.
func (r Report) Worst() string {
	worst := OK
	for _, c := range r.Checks {
		if c.Status == Fail {
			return Fail
		}
		if c.Status == Warn {
			worst = Warn
		}
	}
	return worst
}

// queueSlow is how long the oldest ready step may wait for a worker before
// the queue is said to be behind.
const queueSlow = time.Minute

// Report gathers the report; a part that cannot be read becomes a failed
// check rather than an error.
func (c *Checker) Report(ctx context.Context) Report {
	now := db.Now()
	if c.Now != nil {
		now = c.Now()
	}
	r := Report{At: now}
	add := func(ch Check) { r.Checks = append(r.Checks, ch) }

	if err := c.DB.PingContext(ctx); err != nil {
		add(Check{Name: "database", Status: Fail, Message: "The database does not answer: " + err.Error(),
			Fix: "Check that it runs and that NOFX_DATABASE_URL points at it."})
		return r
	}
	r.Database = c.database(ctx)
	add(c.databaseCheck(r.Database))
	add(c.migrationsCheck(r.Database))

	var err error
	if r.Nodes, err = nodes.List(ctx, c.DB.Reader(), now); err != nil {
		add(Check{Name: "nodes", Status: Fail, Message: err.Error()})
	} else {
		add(nodesCheck(r.Nodes, now))
	}
	add(c.workersCheck())

	if r.Queue, err = c.queue(ctx, now); err != nil {
		add(Check{Name: "queue", Status: Fail, Message: err.Error()})
	} else {
		add(queueCheck(r.Queue))
		add(deadLettersCheck(r.Queue.DeadLetters))
	}

	if c.Recent != nil {
		r.Providers = c.Recent.Providers()
		r.Refused = c.Recent.RefusedByTier()
	}
	add(providersCheck(r.Providers))
	if c.Mail != nil {
		r.MailError, r.MailErrAt, r.MailOKAt = c.Mail.LastError()
	}
	add(c.mailCheck(r, now))

	var last time.Time
	if err := db.Get(ctx, c.DB.Reader(), &last, `SELECT created_at FROM backups ORDER BY id DESC LIMIT 1`); err == nil {
		r.LastBackup = &last
	}
	return r
}

func (c *Checker) database(ctx context.Context) Database {
	d := Database{Dialect: string(c.DB.Dialect), FreeBytes: -1}
	q := c.DB.Reader()
	if c.DB.Dialect == db.Postgres {
		_ = db.Get(ctx, q, &d.ServerVersion, `SHOW server_version`)
		_ = db.Get(ctx, q, &d.SizeBytes, `SELECT pg_database_size(current_database())`)
	} else {
		_ = db.Get(ctx, q, &d.ServerVersion, `SELECT sqlite_version()`)
		var pages, pageSize int64
		_ = db.Get(ctx, q, &pages, `PRAGMA page_count`)
		_ = db.Get(ctx, q, &pageSize, `PRAGMA page_size`)
		d.SizeBytes = pages * pageSize
		if c.DataDir != "" {
			var st syscall.Statfs_t
			if syscall.Statfs(c.DataDir, &st) == nil {
				d.FreeBytes = int64(st.Bavail) * int64(st.Bsize)
				d.DiskBytes = int64(st.Blocks) * int64(st.Bsize)
			}
		}
	}
	d.Migration, d.Latest, _ = c.DB.MigrationVersions(ctx)
	st := c.DB.Stats()
	d.InUse, d.Idle, d.MaxOpen, d.WaitCount, d.WaitDuration = st.InUse, st.Idle, st.MaxOpenConnections, st.WaitCount, st.WaitDuration
	return d
}

func (c *Checker) databaseCheck(d Database) Check {
	ch := Check{Name: "database", Status: OK, Message: fmt.Sprintf("%s %s, %s", d.Dialect, d.ServerVersion, Bytes(d.SizeBytes))}
	if d.FreeBytes >= 0 && d.DiskBytes > 0 && (d.FreeBytes < 1<<30 || d.FreeBytes*10 < d.DiskBytes) {
		ch.Status = Warn
		ch.Message += fmt.Sprintf("; only %s free on its disk", Bytes(d.FreeBytes))
		ch.Fix = "Free space on the disk of " + c.DataDir + ", or move NOFX_DATA_DIR to a bigger one: SQLite stops writing when the disk is full."
	}
	return ch
}

func (c *Checker) migrationsCheck(d Database) Check {
	if d.Migration < d.Latest {
		return Check{Name: "migrations", Status: Fail, Message: fmt.Sprintf("The schema is at version %d; this binary needs %d.", d.Migration, d.Latest),
			Fix: "Run nofx migrate (or start nofx serve without --no-migrate)."}
	}
	return Check{Name: "migrations", Status: OK, Message: fmt.Sprintf("current (version %d)", d.Migration)}
}

func nodesCheck(list []nodes.Node, now time.Time) Check {
	var lost []string
	live := 0
	for _, n := range list {
		if n.Lost(now) {
			lost = append(lost, fmt.Sprintf("%s (pid %d, last seen %s ago)", n.Host, n.PID, now.Sub(n.LastHeartbeatAt).Round(time.Second)))
		} else {
			live++
		}
	}
	ch := Check{Name: "nodes", Status: OK, Message: fmt.Sprintf("%d serving", live)}
	if len(lost) > 0 {
		ch.Status = Warn
		ch.Message += "; lost: " + strings.Join(lost, ", ")
		ch.Fix = "A lost node missed three heartbeats: if its process died, start it again. Its steps are retried elsewhere once their lease (NOFX_STEP_LEASE) ends; it disappears from this list after an hour."
	}
	if live == 0 {
		ch.Status = Fail
		ch.Fix = "No nofx serve process is beating: start one."
	}
	return ch
}

func (c *Checker) workersCheck() Check {
	switch {
	case c.Workers == 0:
		return Check{Name: "workers", Status: OK, Message: "none on this node: a web-only node (NOFX_WORKERS=0)"}
	case c.Running != nil && !c.Running():
		return Check{Name: "workers", Status: Fail, Message: "this node's workers are stopped", Fix: "Restart the process."}
	}
	return Check{Name: "workers", Status: OK, Message: fmt.Sprintf("%d on this node", c.Workers)}
}

func queueCheck(q Queue) Check {
	ch := Check{Name: "queue", Status: OK, Message: fmt.Sprintf("%d ready, %d running, %d waiting", q.Queued, q.Running,
		q.WaitingApproval+q.WaitingCircuit+q.WaitingLimit+q.Scheduled)}
	if q.Queued > 0 && q.OldestQueued > queueSlow {
		ch.Status = Warn
		ch.Message = fmt.Sprintf("%d steps are ready but waiting for a worker; the oldest for %s", q.Queued, q.OldestQueued.Round(time.Second))
		ch.Fix = "The queue is growing faster than workers take it: add workers (NOFX_WORKERS) or nodes, or look for a team at its limits."
	}
	return ch
}

func deadLettersCheck(n int) Check {
	if n == 0 {
		return Check{Name: "dead_letters", Status: OK, Message: "none"}
	}
	what := fmt.Sprintf("%d steps could not be run", n)
	if n == 1 {
		what = "1 step could not be run"
	}
	return Check{Name: "dead_letters", Status: Warn, Message: what,
		Fix: "See Admin → Dead letters: retry or discard them."}
}

func providersCheck(ps []metrics.ProviderHour) Check {
	ch := Check{Name: "providers", Status: OK, Message: "no calls in the last hour"}
	var bad []string
	var calls int64
	for _, p := range ps {
		calls += p.Calls
		if p.Calls >= 10 && p.ErrorCount()*2 > p.Calls {
			bad = append(bad, fmt.Sprintf("%s (%d of %d calls failed)", p.Provider, p.ErrorCount(), p.Calls))
		}
	}
	if calls > 0 {
		ch.Message = fmt.Sprintf("%d calls in the last hour", calls)
	}
	if len(bad) > 0 {
		ch.Status = Warn
		ch.Message = "Most calls fail: " + strings.Join(bad, ", ")
		ch.Fix = "Check the provider's status page and the keys; the circuits below show what is open."
	}
	return ch
}

func (c *Checker) mailCheck(r Report, now time.Time) Check {
	how := "kept in the outbox (no NOFX_SMTP_URL)"
	if c.SMTP {
		how = "sent over SMTP"
	}
	ch := Check{Name: "mail", Status: OK, Message: how}
	if r.MailError != "" && r.MailErrAt.After(r.MailOKAt) && now.Sub(r.MailErrAt) < time.Hour {
		ch.Status = Warn
		ch.Message = fmt.Sprintf("%s; the last email failed %s ago: %s", how, now.Sub(r.MailErrAt).Round(time.Second), r.MailError)
		ch.Fix = "Check NOFX_SMTP_URL (host, port, user and password) and that the server accepts mail from this host."
	}
	return ch
}

// queue reads the steps not finished, by what they wait on, the oldest
// ready one, the flow of the last hour, and the dead letters.
func (c *Checker) queue(ctx context.Context, now time.Time) (Queue, error) {
	return c.readQueue(ctx, now, true)
}

// readQueue is queue, with the flow of the last hour when flow is true.
func (c *Checker) readQueue(ctx context.Context, now time.Time, flow bool) (Queue, error) {
	q := c.DB.Reader()
	var rows []struct {
		Class string `db:"class"`
		N     int    `db:"n"`
	}
	err := db.Select(ctx, q, &rows, `SELECT CASE
			WHEN s.status = 'running' THEN 'running'
			WHEN s.status = 'waiting' AND s.waiting_on <> '' THEN 'limit'
			WHEN s.status = 'waiting' THEN 'approval'
			WHEN s.waiting_until IS NOT NULL AND s.waiting_until > ? THEN 'circuit'
			WHEN s.job_id IS NOT NULL AND (j.id IS NULL OR j.state = 'discarded') THEN 'dead'
			WHEN j.state IN ('scheduled', 'retryable') THEN 'scheduled'
			ELSE 'queued' END AS class, COUNT(*) AS n
		FROM steps s LEFT JOIN river_job j ON j.id = s.job_id
		WHERE s.status IN ('queued', 'running', 'waiting') GROUP BY 1`, now)
	if err != nil {
		return Queue{}, fmt.Errorf("health: steps by state: %w", err)
	}
	var out Queue
	for _, r := range rows {
		switch r.Class {
		case "running":
			out.Running = r.N
		case "limit":
			out.WaitingLimit = r.N
		case "approval":
			out.WaitingApproval = r.N
		case "circuit":
			out.WaitingCircuit = r.N
		case "scheduled":
			out.Scheduled = r.N
		case "dead":
			// counted as dead letters below
		default:
			out.Queued = r.N
		}
	}
	var oldest db.NullTime // MIN() of a time is text on SQLite
	err = db.Get(ctx, q, &oldest, `SELECT MIN(j.scheduled_at) FROM steps s JOIN river_job j ON j.id = s.job_id
		WHERE s.status = 'queued' AND j.state = 'available'`)
	if err != nil {
		return Queue{}, fmt.Errorf("health: oldest queued step: %w", err)
	}
	if oldest.Valid && now.After(oldest.Time) {
		out.OldestQueued = now.Sub(oldest.Time)
	}
	if out.DeadLetters, err = runs.CountDeadLetters(ctx, q); err != nil {
		return Queue{}, err
	}
	if !flow {
		return out, nil
	}
	minute := `substr(finished_at, 1, 16)`
	if c.DB.Dialect == db.Postgres {
		minute = `to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')`
	}
	var perMinute []struct {
		Minute string `db:"minute"`
		N      int    `db:"n"`
	}
	from := now.Add(-time.Hour).Truncate(time.Minute).Add(time.Minute)
	err = db.Select(ctx, q, &perMinute, `SELECT `+minute+` AS minute, COUNT(*) AS n FROM steps WHERE finished_at >= ? GROUP BY 1`, from)
	if err != nil {
		return Queue{}, fmt.Errorf("health: steps finished per minute: %w", err)
	}
	byMinute := map[string]int{}
	for _, f := range perMinute {
		byMinute[strings.Replace(f.Minute, "T", " ", 1)] = f.N
	}
	out.PerMinute = make([]int, 60)
	for i := range out.PerMinute {
		out.PerMinute[i] = byMinute[from.Add(time.Duration(i)*time.Minute).UTC().Format("2006-01-02 15:04")]
	}
	return out, nil
}

// Bytes writes a size for people: "12.3 MiB".
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Tiers lists the tiers that refused requests in the last hour, in order.
func (r Report) Tiers() []string {
	out := make([]string, 0, len(r.Refused))
	for k := range r.Refused {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
