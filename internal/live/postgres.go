package live

import (
	"context"
	"database/sql"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/lib/pq"
)

// channel is the PostgreSQL notification channel NOFX uses.
const channel = "nofx_live"

// maxPayload keeps a notification under PostgreSQL's 8000-byte limit.
const maxPayload = 7000

// Postgres is a Broker shared by every process on one PostgreSQL database,
// through LISTEN/NOTIFY. Each process delivers what it hears to its own
// subscribers, including what it published itself.
type Postgres struct {
	local    *Local
	db       *sql.DB
	listener *pq.Listener
	log      *slog.Logger
	done     chan struct{}
}

// NewPostgres listens on the database at url (the same one db opened) and
// returns a broker that publishes through db.
func NewPostgres(url string, db *sql.DB, log *slog.Logger) (*Postgres, error) {
	l := pq.NewListener(url, 100*time.Millisecond, 10*time.Second, func(ev pq.ListenerEventType, err error) {
		if err != nil {
			log.Warn("live: listener", "event", ev, "error", err)
		}
	})
	if err := l.Listen(channel); err != nil {
		l.Close()
		return nil, err
	}
	p := &Postgres{local: NewLocal(), db: db, listener: l, log: log, done: make(chan struct{})}
	go p.receive()
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

// Publish notifies every process; deltas too large for one notification are
// cut (the final output is stored with the step anyway).
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
	if _, err := p.db.ExecContext(ctx, `SELECT pg_notify($1, $2)`, channel, string(b)); err != nil {
		p.log.Warn("live: notify", "error", err)
	}
}

// Subscribe registers a subscriber for runID in this process.
func (p *Postgres) Subscribe(runID int64) (<-chan Message, func()) {
	return p.local.Subscribe(runID)
}

// Close stops listening.
func (p *Postgres) Close() error {
	err := p.listener.Close()
	<-p.done
	return err
}
