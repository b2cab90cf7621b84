package db

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Outage logs what a background loop sees of the database going away and
// coming back: one WARN when the first try finds it unavailable and one INFO
// when a later try reaches it again, instead of a line per try. Its zero
// value needs Log and What set; it is safe for concurrent use, so the
// workers of one engine can share one.
type Outage struct {
	Log  *slog.Logger
	What string // who is trying, such as "scheduler"

	down  atomic.Bool // an outage is under way: Down without the lock
	mu    sync.Mutex
	since time.Time // when the current outage was first seen; zero when none
	tries int       // tries that failed since then
}

// Observe takes the outcome of one try. It returns true when err is the
// database being unavailable, which it has logged (once per outage): the
// caller says nothing more. Any other outcome, nil or another error, means
// the database answered, and ends an outage.
func (o *Outage) Observe(err error) bool {
	down := Unavailable(err)
	if !down && !o.down.Load() {
		return false // the common case: no outage, none ending
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case down && o.since.IsZero():
		o.since, o.tries = time.Now(), 1
		o.down.Store(true)
		o.Log.Warn("database unavailable; retrying", "what", o.What, "error", err)
	case down:
		o.tries++
	case !o.since.IsZero():
		o.Log.Info("database reachable again", "what", o.What,
			"after", time.Since(o.since).Round(time.Millisecond).String(), "failed_tries", o.tries)
		o.since, o.tries = time.Time{}, 0
		o.down.Store(false)
	}
	return down
}

// Down reports whether the last try found the database unavailable.
func (o *Outage) Down() bool { return o.down.Load() }
