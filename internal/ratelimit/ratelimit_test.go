package ratelimit_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/config"
	"github.com/nofxhq/nofx/internal/ratelimit"
)

func TestBurstThenRefuseThenRefill(t *testing.T) {
	t.Parallel()
	l := ratelimit.New(ratelimit.Auth, config.Rate{N: 3, Per: 3 * time.Second})
	for i := range 3 {
		d := l.Allow("ip:192.0.2.1")
		require.True(t, d.Allowed, "request %d is within the burst", i+1)
		require.Equal(t, 3, d.Limit)
		require.Equal(t, 2-i, d.Remaining)
	}
	d := l.Allow("ip:192.0.2.1")
	require.False(t, d.Allowed)
	require.True(t, d.FirstRefusal)
	require.Equal(t, time.Second, d.RetryAfter, "one token comes back every period/N")
	require.Equal(t, 0, d.Remaining)
	require.Equal(t, 3*time.Second, d.Reset)

	again := l.Allow("ip:192.0.2.1")
	require.False(t, again.Allowed)
	require.False(t, again.FirstRefusal, "a key's refusals are reported once per period")

	require.True(t, l.Allow("ip:192.0.2.2").Allowed, "another key has its own bucket")

	deadline := time.Now().Add(5 * time.Second)
	for !l.Allow("ip:192.0.2.1").Allowed {
		require.True(t, time.Now().Before(deadline), "the bucket never refilled")
		time.Sleep(50 * time.Millisecond)
	}
}

func TestOffTiersAllowEverything(t *testing.T) {
	t.Parallel()
	var l *ratelimit.Limiter = ratelimit.New(ratelimit.General, config.Rate{})
	require.Nil(t, l)
	for range 1000 {
		require.True(t, l.Allow("anyone").Allowed)
	}
	set := ratelimit.FromConfig(&config.Config{RateAuth: config.Rate{N: 1, Per: time.Minute}})
	require.Nil(t, set.General)
	require.NotNil(t, set.Auth)
	require.Equal(t, ratelimit.Auth, set.Auth.Tier())
}

// TestEachKeyHasItsOwnBucket: many keys, none sharing a bucket.
func TestEachKeyHasItsOwnBucket(t *testing.T) {
	t.Parallel()
	l := ratelimit.New(ratelimit.General, config.Rate{N: 1, Per: time.Minute})
	for i := range 50_000 {
		key := "ip:" + time.Duration(i).String()
		require.True(t, l.Allow(key).Allowed)
		require.False(t, l.Allow(key).Allowed)
	}
}
