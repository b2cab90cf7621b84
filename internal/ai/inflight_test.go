package ai_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/ai"
)

// gatedProvider holds every call until open is closed, and counts the calls
// in flight per API key.
type gatedProvider struct {
	open    chan struct{}
	entered chan string

	mu   sync.Mutex
	now  map[string]int
	most map[string]int
}

func (p *gatedProvider) Name() string { return "gated" }

func (p *gatedProvider) ValidateStep(string, map[string]any) map[string]string { return nil }

func (p *gatedProvider) Stream(ctx context.Context, req ai.Request, _ func(string)) (ai.Response, error) {
	p.mu.Lock()
	p.now[req.APIKey]++
	p.most[req.APIKey] = max(p.most[req.APIKey], p.now[req.APIKey])
	p.mu.Unlock()
	defer func() { p.mu.Lock(); p.now[req.APIKey]--; p.mu.Unlock() }()
	p.entered <- req.APIKey
	select {
	case <-p.open:
		return ai.Response{Text: "ok"}, nil
	case <-ctx.Done():
		return ai.Response{}, ctx.Err()
	}
}

// One credential has at most MaxInFlight calls in flight; the others wait
// for a slot (and then succeed) while another credential's call goes
// through at once.
func TestMaxInFlightPerCredential(t *testing.T) {
	t.Parallel()
	const limit, calls = 2, 6
	p := &gatedProvider{open: make(chan struct{}), entered: make(chan string, calls+1), now: map[string]int{}, most: map[string]int{}}
	r := ai.NewReliable(p, ai.NewCircuits(ai.CircuitConfig{MaxInFlight: limit}), ai.RetryPolicy{Attempts: 1})

	errs := make(chan error, calls+1)
	call := func(key string, team int64) {
		_, err := r.Stream(context.Background(), ai.Request{Model: "m", Prompt: "x", APIKey: key, TeamID: team}, nil)
		errs <- err
	}
	for range calls {
		go call("busy-key", 1)
	}
	seen := map[string]int{}
	deadline := time.After(10 * time.Second)
	for seen["busy-key"] < limit {
		select {
		case k := <-p.entered:
			seen[k]++
		case <-deadline:
			t.Fatalf("the first %d calls never started: %v", limit, seen)
		}
	}
	go call("quiet-key", 2)
	for seen["quiet-key"] == 0 {
		select {
		case k := <-p.entered:
			seen[k]++
		case <-deadline:
			t.Fatalf("another credential's call waited behind a busy one: %v", seen)
		}
	}
	close(p.open)
	for range calls + 1 {
		require.NoError(t, <-errs)
	}
	require.Equal(t, limit, p.most["busy-key"], "never more than the limit in flight on one credential")
	require.Equal(t, 1, p.most["quiet-key"])
}

// A call waiting for a slot gives up when its context ends.
func TestMaxInFlightWaitEndsWithContext(t *testing.T) {
	t.Parallel()
	p := &gatedProvider{open: make(chan struct{}), entered: make(chan string, 2), now: map[string]int{}, most: map[string]int{}}
	r := ai.NewReliable(p, ai.NewCircuits(ai.CircuitConfig{MaxInFlight: 1}), ai.RetryPolicy{Attempts: 1})
	first := make(chan error, 1)
	go func() {
		_, err := r.Stream(context.Background(), ai.Request{Model: "m", APIKey: "k", TeamID: 1}, nil)
		first <- err
	}()
	<-p.entered
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := r.Stream(ctx, ai.Request{Model: "m", APIKey: "k", TeamID: 1}, nil)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	close(p.open)
	require.NoError(t, <-first)
	require.Equal(t, 1, p.most["k"])
}
