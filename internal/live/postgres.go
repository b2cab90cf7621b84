package live

import (
	"context"
	"database/sql"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lib/pq"

	"github.com/nofxhq/nofx/internal/db"
)

// channel is the PostgreSQL notification channel NOFX uses.
const channel = "nofx_live"

// maxPayload keeps a notification under PostgreSQL's 8000-byte limit.
const maxPayload = 7000

// Postgres is a Broker shared by every process on one PostgreSQL database,
// through LISTEN/NOTIFY. Each process delivers what it hears to its own
// subscribers, including what it published itself.
//
// Publishing does not wait for the database: messages queue for one sender,
// which sends all that are waiting in one transaction that does not wait
// for its commit to reach the disk (a lost notification is a missed hint,
// never lost data). PostgreSQL lets only one transaction that notified
// commit at a time, so a notification of its own per message, each waiting
// for its flush, made every transition of every run take turns at one lock.
type Postgres struct {
	local    *Local
	db       *sql.DB
	listener *pq.Listener
	log      *slog.Logger
	done     chan struct{}
	queue    chan []byte   // payloads for the sender
	stop     chan struct{} // closed by Close: the sender sends what is queued and ends
	sent     chan struct{} // closed when the sender has ended
	closing  sync.Once
	closeErr error
	outage   *db.Outage // of the sender
	deaf     *atomic.Bool
}

// queueSize is how many messages may wait for the sender before Publish
// waits for room.
const queueSize = 4096

// maxBatch caps the notifications sent in one transaction.
const maxBatch = 500

// NewPostgres listens on the database at url (the same one db opened) and
// returns a broker that publishes through db.
func NewPostgres(url string, sqlDB *sql.DB, log *slog.Logger) (*Postgres, error) {
	listening := &db.Outage{Log: log, What: "live updates: listener"}
	deaf := new(atomic.Bool) // the listener is reconnecting: NOTIFY does not come back here
	l := pq.NewListener(url, 100*time.Millisecond, 10*time.Second, func(ev pq.ListenerEventType, err error) {
		switch ev {
		case pq.ListenerEventDisconnected, pq.ListenerEventConnectionAttemptFailed:
			deaf.Store(true)
		case pq.ListenerEventConnected, pq.ListenerEventReconnected:
			deaf.Store(false)
		}
		switch {
		case err == nil && ev == pq.ListenerEventReconnected:
			listening.Observe(nil)
		case err != nil && !listening.Observe(err):
			log.Warn("live: listener", "event", ev, "error", err)
		}
	})
	if err := l.Listen(channel); err != nil {
		l.Close()
		return nil, err
	}
	p := &Postgres{local: NewLocal(), db: sqlDB, listener: l, log: log, done: make(chan struct{}),
		outage: &db.Outage{Log: log, What: "live updates"}, deaf: deaf,
		queue: make(chan []byte, queueSize), stop: make(chan struct{}), sent: make(chan struct{})}
	go p.receive()
	go p.send()
	return p, nil
}

func (p *Postgres) receive() {
	defer close(p.done)
	for n := range p.listener.Notify {
		if n == nil {
			// The connection was re-established; some messages may be lost.
			// Subscribers re-read events on the next "changed".
			continue
		}
		var m Message
		if err := json.Unmarshal([]byte(n.Extra), &m); err != nil {
			p.log.Warn("live: bad notification", "error", err)
			continue
		}
		p.local.deliver(m)
	}
}

// Publish queues m for every process; deltas too large for one
// notification are cut (the final output is stored with the step anyway).
func (p *Postgres) Publish(ctx context.Context, m Message) {
	b, err := json.Marshal(m)
	if err != nil {
		return
	}
	if len(b) > maxPayload {
		m.Text = m.Text[:len(m.Text)-(len(b)-maxPayload)]
		if b, err = json.Marshal(m); err != nil {
			return
		}
	}
	select {
	case p.queue <- b:
	case <-p.stop: // closed: nobody is left to hear it
	case <-ctx.Done():
	}
}

// send sends the queued payloads, all that wait at once, until Close.
func (p *Postgres) send() {
	defer close(p.sent)
	for {
		var first []byte
		select {
		case first = <-p.queue:
		case <-p.stop:
			for {
				select {
				case b := <-p.queue:
					p.sendBatch(b)
				default:
					return
				}
			}
		}
		p.sendBatch(first)
	}
}

// sendBatch sends first and what else waits in the queue, up to a batch.
// PostgreSQL delivers a payload sent twice in one transaction once, which
// would drop a repeated chunk of streamed text, so a repeat starts the
// next transaction.
func (p *Postgres) sendBatch(first []byte) {
	batch := []string{string(first)}
	seen := map[string]bool{batch[0]: true}
	for len(batch) < maxBatch {
		select {
		case b := <-p.queue:
			if seen[string(b)] {
				p.notify(batch)
				batch, seen = nil, map[string]bool{}
			}
			batch = append(batch, string(b))
			seen[string(b)] = true
		default:
			p.notify(batch)
			return
		}
	}
	p.notify(batch)
}

// notify sends payloads in one transaction that does not wait for its
// commit's flush.
func (p *Postgres) notify(payloads []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tx, err := p.db.BeginTx(ctx, nil)
	if err == nil {
		defer tx.Rollback() //nolint:errcheck // a no-op after commit
		if _, err = tx.ExecContext(ctx, `SET LOCAL synchronous_commit = off`); err == nil {
			if _, err = tx.ExecContext(ctx, `SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload`,
				channel, pq.Array(payloads)); err == nil {
				err = tx.Commit()
			}
		}
	}
	switch {
	case err == nil:
		p.outage.Observe(nil)
		if !p.deaf.Load() {
			return // it comes back through the listener
		}
	case !p.outage.Observe(err):
		p.log.Warn("live: notify", "messages", len(payloads), "error", err)
		return
	}
	// While the database is away, or this process's listener is still
	// reconnecting, this process's own watchers still get its news
	// (streamed text above all); other processes' watchers catch up from
	// the database once it is back.
	for _, b := range payloads {
		var m Message
		if json.Unmarshal([]byte(b), &m) == nil {
			p.local.deliver(m)
		}
	}
}

// Subscribe registers a subscriber for runID in this process.
func (p *Postgres) Subscribe(runID int64) (<-chan Message, func()) {
	return p.local.Subscribe(runID)
}

// Close sends what is queued, then stops listening. Closing again does
// nothing.
func (p *Postgres) Close() error {
	p.closing.Do(func() {
		close(p.stop)
		<-p.sent
		p.closeErr = p.listener.Close()
		<-p.done
	})
	return p.closeErr
}
