package engine

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTeamGateLetsOneClaimOfATeamInAtATime(t *testing.T) {
	var g teamGate
	leaveA := g.enter(1)
	// Another team is not held up by team 1.
	leaveB := g.enter(2)
	leaveB()

	var inside, most atomic.Int32
	var wg sync.WaitGroup
	entered := make(chan struct{}, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			leave := g.enter(1)
			n := inside.Add(1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			entered <- struct{}{}
			for range 100 {
				runtime.Gosched() // stay inside a while: another that got in too would be seen
			}
			inside.Add(-1)
			leave()
		}()
	}
	select {
	case <-entered:
		t.Fatal("a claim of team 1 got in while another was inside")
	default:
	}
	leaveA()
	wg.Wait()
	require.Len(t, entered, 20)
	require.Equal(t, int32(1), most.Load(), "one at a time")
	require.Empty(t, g.teams, "a team nobody waits for is dropped")
}
