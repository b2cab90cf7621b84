// Package live carries run changes and streamed tokens to the pages and API
// clients watching a run, within one process or, on PostgreSQL, across all
// processes sharing the database.
package live

import (
	"context"
	"sync"
)

// Message says that something happened to a run. Kinds: "changed" (new
// events were written: read them) and "delta" (text streamed by a step).
type Message struct {
	RunID int64 `json:"r"`
	// TeamID, when set on a run's message, is the run's team: the message
	// also reaches the team's topic (see TeamTopic).
	TeamID int64  `json:"tm,omitempty"`
	Kind   string `json:"k"`
	Step   string `json:"s,omitempty"`
	Text   string `json:"t,omitempty"`
	// Status, on a run's "changed", is the run's status after the change
	// (empty from a process that does not say).
	Status string `json:"st,omitempty"`
}

// The message kinds.
const (
	KindChanged = "changed"
	KindDelta   = "delta"
	// KindCircuitReset, on SystemTopic, says that a site admin closed the
	// circuit of the provider named in Text: every process closes its own.
	KindCircuitReset = "circuit.reset"
)

// SystemTopic is the RunID of messages for the whole instance rather than
// for one run.
const SystemTopic int64 = 0

// TeamTopic is the topic to subscribe to for the messages of every run of a
// team: those published with the team's TeamID, whose RunID names the run.
func TeamTopic(teamID int64) int64 { return -teamID }

// Broker publishes messages to the subscribers of a run.
type Broker interface {
	// Publish sends m to every subscriber of m.RunID, and of the team's
	// topic when m has a TeamID, best effort.
	Publish(ctx context.Context, m Message)
	// Subscribe returns a channel of the run's messages and a function that
	// ends the subscription.
	Subscribe(runID int64) (<-chan Message, func())
}

// subscriberBuffer is how many messages a slow subscriber may fall behind
// before messages to it are dropped. Dropping is safe: any later "changed"
// makes the subscriber read every event it has not seen.
const subscriberBuffer = 256

// Local is a Broker within one process.
type Local struct {
	mu   sync.Mutex
	subs map[int64]map[chan Message]struct{}
}

// NewLocal returns an empty in-process broker.
func NewLocal() *Local {
	return &Local{subs: map[int64]map[chan Message]struct{}{}}
}

// Publish delivers m to the run's (and its team's) subscribers in this
// process.
func (l *Local) Publish(_ context.Context, m Message) {
	l.deliver(m)
}

func (l *Local) deliver(m Message) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.send(m.RunID, m)
	if m.TeamID > 0 && m.RunID > 0 {
		l.send(TeamTopic(m.TeamID), m)
	}
}

// send delivers m to the subscribers of topic; l.mu is held.
func (l *Local) send(topic int64, m Message) {
	for ch := range l.subs[topic] {
		select {
		case ch <- m:
		default: // a slow subscriber; see subscriberBuffer
		}
	}
}

// Subscribe registers a subscriber for runID.
func (l *Local) Subscribe(runID int64) (<-chan Message, func()) {
	ch := make(chan Message, subscriberBuffer)
	l.mu.Lock()
	if l.subs[runID] == nil {
		l.subs[runID] = map[chan Message]struct{}{}
	}
	l.subs[runID][ch] = struct{}{}
	l.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			l.mu.Lock()
			delete(l.subs[runID], ch)
			if len(l.subs[runID]) == 0 {
				delete(l.subs, runID)
			}
			l.mu.Unlock()
		})
	}
}

// Subscribers returns how many subscriptions runID has in this process.
func (l *Local) Subscribers(runID int64) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.subs[runID])
}
