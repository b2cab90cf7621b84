package ai

import (
	"context"
	"sync"
)

// inFlight limits how many calls go to one credential (a CircuitKey) at
// once, so that NOFX itself does not set off a provider's rate limit; a call
// over the limit waits for a slot or for its context to end.
type inFlight struct {
	max   int // 0: no limit
	mu    sync.Mutex
	slots map[CircuitKey]chan struct{} // guarded by mu; created on first use
}

// acquire takes a slot for key and returns the function that gives it back.
func (f *inFlight) acquire(ctx context.Context, key CircuitKey) (func(), error) {
	if f.max <= 0 {
		return func() {}, nil
	}
	f.mu.Lock()
	slots, ok := f.slots[key]
	if !ok {
		if f.slots == nil {
			f.slots = map[CircuitKey]chan struct{}{}
		}
		slots = make(chan struct{}, f.max)
		f.slots[key] = slots
	}
	f.mu.Unlock()
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
