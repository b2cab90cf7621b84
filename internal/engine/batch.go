package engine

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// maxBatch is the most requests one transaction serves.
const maxBatch = 100

// batcher serves the requests of the process's workers that arrive while
// others are being served in one transaction (group commit, as River
// completes its jobs): the engine's claims (runs.ClaimAll) and successes
// (runs.CompleteAll). A worker hands its request over and waits for its
// answer. When no batch is being written, a request is served at once,
// alone, so that nothing waits for a batch to fill; while the writers are
// busy, the requests that arrive queue and the next free writer takes
// them all. A writer is a goroutine that lives only while requests wait,
// so the batcher needs no starting or stopping, and at most writers
// connections serve the whole process's claims however many workers wait:
// a team's claims queued at its lock in the database would each hold one.
type batcher[In, Out any] struct {
	write   func(ctx context.Context, all []In) []Out // an answer per request, in order
	failed  func(error) Out                           // the answer to each request of a batch whose write panicked
	writers int                                       // at most this many batches are written at once

	mu      sync.Mutex
	queue   []*queued[In, Out]
	running int // writers now
}

// queued is a request waiting to be served, and then its answer (set
// before done is closed).
type queued[In, Out any] struct {
	in   In
	out  Out
	done chan struct{}
}

// do serves in with the requests that arrive at the same time and returns
// its answer.
func (b *batcher[In, Out]) do(in In) Out {
	q := &queued[In, Out]{in: in, done: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, q)
	if b.running < b.writers {
		b.running++
		go b.writeQueued()
	}
	b.mu.Unlock()
	<-q.done
	return q.out
}

// writeQueued serves what waits, a batch at a time, until nothing does.
func (b *batcher[In, Out]) writeQueued() {
	for {
		b.mu.Lock()
		n := min(len(b.queue), maxBatch)
		if n == 0 {
			b.running--
			b.mu.Unlock()
			return
		}
		batch := make([]*queued[In, Out], n)
		copy(batch, b.queue)
		rest := copy(b.queue, b.queue[n:])
		clear(b.queue[rest:])
		b.queue = b.queue[:rest]
		b.mu.Unlock()

		all := make([]In, n)
		for i, q := range batch {
			all[i] = q.in
		}
		out := b.writeOne(all)
		for i, q := range batch {
			q.out = out[i]
			close(q.done)
		}
	}
}

// writeOne writes one batch. Served even when the workers are stopping: a
// success is recorded through the grace period, as it always was. A panic
// answers each request of the batch with an error, as River fails the one
// job whose work panicked, instead of ending the process.
func (b *batcher[In, Out]) writeOne(all []In) (out []Out) {
	ctx, stop := context.WithTimeout(context.Background(), time.Minute)
	defer stop()
	defer func() {
		if r := recover(); r != nil {
			err := fmt.Errorf("engine: writing a batch of %d panicked: %v", len(all), r)
			out = make([]Out, len(all))
			for i := range out {
				out[i] = b.failed(err)
			}
		}
	}()
	return b.write(ctx, all)
}
