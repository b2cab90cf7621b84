package engine

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/live"
	"github.com/nofxhq/nofx/internal/runs"
)

// TestBatcherServesWhatArrivesWhileItWrites checks the group commit: a
// request alone is written at once; those that arrive while the writers
// are busy are written together by the next free writer; every request
// gets its own answer; no more than writers batches are written at once.
func TestBatcherServesWhatArrivesWhileItWrites(t *testing.T) {
	var (
		mu      sync.Mutex
		batches [][]int
		busy    int
		most    int
	)
	release := make(chan struct{})
	started := make(chan struct{}, 100)
	b := &batcher[int, int]{writers: 2, write: func(_ context.Context, all []int) []int {
		mu.Lock()
		batches = append(batches, append([]int(nil), all...))
		busy++
		most = max(most, busy)
		mu.Unlock()
		started <- struct{}{}
		<-release
		mu.Lock()
		busy--
		mu.Unlock()
		out := make([]int, len(all))
		for i, n := range all {
			out[i] = n * 10
		}
		return out
	}}

	answers := make([]int, 12)
	var wg sync.WaitGroup
	ask := func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = b.do(i)
		}()
	}
	// Two requests occupy both writers, each alone.
	ask(0)
	<-started
	ask(1)
	<-started
	// Ten more queue while they write.
	for i := 2; i < 12; i++ {
		ask(i)
	}
	require.Eventually(t, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.queue) == 10
	}, 5*time.Second, time.Millisecond, "the ten wait for a writer")
	close(release)
	wg.Wait()

	for i, a := range answers {
		require.Equal(t, i*10, a, "request %d gets its own answer", i)
	}
	require.LessOrEqual(t, most, 2, "at most two batches at once")
	require.Len(t, batches[0], 1)
	require.Len(t, batches[1], 1)
	var later int
	for _, batch := range batches[2:] {
		later += len(batch)
	}
	require.Equal(t, 10, later)
	require.LessOrEqual(t, len(batches), 4, "the ten queued are written together by the free writers, not one by one: %v", batches)
	b.mu.Lock()
	require.Zero(t, b.running, "writers end once nothing waits")
	b.mu.Unlock()
}

func TestOnlyChangesThatMayCancelAClaimAreLookedAt(t *testing.T) {
	for _, c := range []struct {
		m    live.Message
		want bool
	}{
		{live.Message{Kind: live.KindChanged, Status: runs.RunRunning}, false}, // another step's change, or the claim's own
		{live.Message{Kind: live.KindDelta, Text: "tokens"}, false},
		{live.Message{Kind: live.KindChanged, Status: runs.RunCancelled}, true},
		{live.Message{Kind: live.KindChanged, Status: runs.RunFailed}, true},
		{live.Message{Kind: live.KindChanged}, true}, // a process that does not say the status
	} {
		require.Equal(t, c.want, mayEndClaim(c.m), "%+v", c.m)
	}
}

// A batch whose write panics answers each of its requests with an error,
// and the batcher goes on serving.
func TestBatcherAnswersAPanicWithErrors(t *testing.T) {
	b := &batcher[int, error]{writers: 1,
		write: func(_ context.Context, all []int) []error {
			if all[0] < 0 {
				panic("bad request")
			}
			return make([]error, len(all))
		},
		failed: func(err error) error { return err }}
	require.ErrorContains(t, b.do(-1), "panicked: bad request")
	require.NoError(t, b.do(1))
	b.mu.Lock()
	defer b.mu.Unlock()
	require.Zero(t, b.running)
}
