package auth

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// ErrBusy is a password hash or check refused because every slot stayed
// taken for the Hasher's wait, or the request ended while it waited.
var ErrBusy = errors.New("too many password checks at once; try again shortly")

// DefaultHashWait is how long a password hash waits for a slot when the
// Hasher was given no wait.
const DefaultHashWait = 2 * time.Second

// Hasher runs password hashes and checks, at most a fixed number at once:
// each argon2id hash holds 46 MiB while it runs, so the cap bounds the
// memory a flood of log-ins can take. The zero Hasher, and a nil *Hasher,
// are usable: one slot per CPU and DefaultHashWait.
type Hasher struct {
	size int           // slots asked for; 0 is one per CPU
	wait time.Duration // how long to wait for a slot; 0 is DefaultHashWait

	once    sync.Once
	slots   chan struct{} // a token in the channel is a slot taken
	waiting atomic.Int64  // calls waiting for a slot
}

// defaultHasher serves a nil *Hasher, such as the zero Service's.
var defaultHasher Hasher

// DefaultHashSlots is how many hashes run at once unless configured: one
// per CPU this process may use (GOMAXPROCS follows container limits), at
// most four, so that a large host does not mean gigabytes of hashes.
func DefaultHashSlots() int { return min(runtime.GOMAXPROCS(0), 4) }

// NewHasher returns a Hasher that runs at most slots hashes at once (zero
// is DefaultHashSlots) and refuses one that waits longer than wait for a
// slot (zero is DefaultHashWait).
func NewHasher(slots int, wait time.Duration) *Hasher {
	return &Hasher{size: slots, wait: wait}
}

func (h *Hasher) init() {
	if h.size <= 0 {
		h.size = DefaultHashSlots()
	}
	if h.wait <= 0 {
		h.wait = DefaultHashWait
	}
	h.slots = make(chan struct{}, h.size)
}

// ready returns h, or the default Hasher for a nil h, with its slots made.
func (h *Hasher) ready() *Hasher {
	if h == nil {
		h = &defaultHasher
	}
	h.once.Do(h.init)
	return h
}

// Slots returns how many hashes may run at once.
func (h *Hasher) Slots() int {
	return cap(h.ready().slots)
}

// Hash returns HashPassword(password), computed in a free slot; without one
// in time it returns ErrBusy.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	var (
		hash string
		err  error
	)
	if busy := h.do(ctx, func() { hash, err = HashPassword(password) }); busy != nil {
		return "", busy
	}
	return hash, err
}

// Check returns CheckPassword(hash, password), computed in a free slot;
// without one in time it returns ErrBusy.
func (h *Hasher) Check(ctx context.Context, hash, password string) (bool, error) {
	var (
		ok  bool
		err error
	)
	if busy := h.do(ctx, func() { ok, err = CheckPassword(hash, password) }); busy != nil {
		return false, busy
	}
	return ok, err
}

// do runs fn in a slot. It returns ErrBusy, and runs nothing, when no slot
// frees up within the wait or ctx ends first (then the error wraps ctx's
// too).
func (h *Hasher) do(ctx context.Context, fn func()) error {
	h = h.ready()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrBusy, err)
	}
	select {
	case h.slots <- struct{}{}:
	default:
		if err := h.await(ctx); err != nil {
			return err
		}
	}
	defer func() { <-h.slots }()
	fn()
	return nil
}

// await takes a slot once one is free, for at most h.wait.
func (h *Hasher) await(ctx context.Context) error {
	h.waiting.Add(1)
	defer h.waiting.Add(-1)
	timer := time.NewTimer(h.wait)
	defer timer.Stop()
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-timer.C:
		return ErrBusy
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrBusy, ctx.Err())
	}
}
