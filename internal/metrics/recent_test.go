package metrics

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRecentKeepsTheLastHour(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	r := &Recent{now: func() time.Time { return now }}
	for i := range 100 {
		r.Call("anthropic", time.Duration(i+1)*10*time.Millisecond) // 10ms … 1s
	}
	r.Error("anthropic", "rate_limited")
	r.Error("anthropic", "rate_limited")
	r.Refused("auth")
	now = now.Add(30 * time.Minute)
	r.Call("openai", 3*time.Second)
	r.Refused("auth")

	ps := r.Providers()
	require.Len(t, ps, 2)
	require.Equal(t, "anthropic", ps[0].Provider)
	require.Equal(t, int64(100), ps[0].Calls)
	require.Equal(t, int64(2), ps[0].ErrorCount())
	require.Equal(t, 500*time.Millisecond, ps[0].P50)
	require.Equal(t, time.Second, ps[0].P95)
	require.Equal(t, 5*time.Second, ps[1].P99)
	require.Equal(t, map[string]int64{"auth": 2}, r.RefusedByTier())

	now = now.Add(45 * time.Minute) // the first half hour has aged out
	ps = r.Providers()
	require.Len(t, ps, 1)
	require.Equal(t, "openai", ps[0].Provider)
	require.Equal(t, map[string]int64{"auth": 1}, r.RefusedByTier())
}
