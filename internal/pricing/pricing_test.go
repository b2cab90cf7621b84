package pricing_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/pricing"
)

func TestCost(t *testing.T) {
	t.Parallel()
	p := pricing.Price{InputPerMTok: 3_000_000, OutputPerMTok: 15_000_000} // $3 / $15
	require.Equal(t, int64(300+1500), p.Cost(100, 100))
	require.Equal(t, int64(3_000_000), p.Cost(1_000_000, 0))
	require.Zero(t, pricing.Price{}.Cost(1000, 1000))
	require.Equal(t, int64(1), pricing.Price{InputPerMTok: 150_000}.Cost(4, 0), "rounded to the nearest micro-dollar")
}

func TestDollars(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{"3": 3_000_000, "0.15": 150_000, "$2.50": 2_500_000, " 75 ": 75_000_000, "0.000001": 1, ".5": 500_000} {
		got, err := pricing.ParseDollars(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "abc", "1.2.3", "-1", "0.0000001", "99999999"} {
		_, err := pricing.ParseDollars(bad)
		require.Error(t, err, bad)
	}
	require.Equal(t, "$3.00", pricing.FormatDollars(3_000_000))
	require.Equal(t, "$0.15", pricing.FormatDollars(150_000))
	require.Equal(t, "$0.000123", pricing.FormatDollars(123))
	require.Equal(t, "$0.00", pricing.FormatDollars(0))
}

func TestPriceTable(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		prices, err := pricing.List(ctx, d)
		require.NoError(t, err)
		require.NotEmpty(t, prices, "seeded with list prices")

		p, ok, err := pricing.Lookup(ctx, d, "anthropic", "claude-sonnet-4-5")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, int64(3_000_000), p.InputPerMTok)

		_, ok, err = pricing.Lookup(ctx, d, "openai", "unpriced-model")
		require.NoError(t, err)
		require.False(t, ok)

		require.NoError(t, pricing.Set(ctx, d, "openai", "unpriced-model", 1_000_000, 2_000_000, 0))
		p, ok, err = pricing.Lookup(ctx, d, "openai", "unpriced-model")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, int64(2_000_000), p.OutputPerMTok)
		require.NoError(t, pricing.Set(ctx, d, "openai", "unpriced-model", 5, 6, 0))
		p, _, err = pricing.Lookup(ctx, d, "openai", "unpriced-model")
		require.NoError(t, err)
		require.Equal(t, int64(5), p.InputPerMTok, "setting again updates")

		require.Error(t, pricing.Set(ctx, d, "", "", 1, 1, 0))
	})
}

// A Cache reuses what it read for its TTL, forgets everything when a price
// is Set in this process, and reads again after its TTL.
func TestCacheKeepsPricesUntilSetOrTTL(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		require.NoError(t, pricing.Set(ctx, d, "openai", "cached-model", 1_000_000, 2_000_000, 0))
		c := &pricing.Cache{TTL: time.Hour}
		p, ok, err := c.Lookup(ctx, d, "openai", "cached-model")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, int64(1_000_000), p.InputPerMTok)

		// Changed behind its back (as by another process): still the old one.
		_, err = db.Exec(ctx, d, `UPDATE model_prices SET input_per_mtok = 7 WHERE model = 'cached-model'`)
		require.NoError(t, err)
		p, _, err = c.Lookup(ctx, d, "openai", "cached-model")
		require.NoError(t, err)
		require.Equal(t, int64(1_000_000), p.InputPerMTok, "kept for its TTL")

		// Set in this process: read again at once.
		require.NoError(t, pricing.Set(ctx, d, "openai", "cached-model", 3_000_000, 2_000_000, 0))
		p, _, err = c.Lookup(ctx, d, "openai", "cached-model")
		require.NoError(t, err)
		require.Equal(t, int64(3_000_000), p.InputPerMTok)

		// A short TTL reads again once it is over.
		short := &pricing.Cache{TTL: time.Millisecond}
		_, _, err = short.Lookup(ctx, d, "openai", "cached-model")
		require.NoError(t, err)
		_, err = db.Exec(ctx, d, `UPDATE model_prices SET input_per_mtok = 9 WHERE model = 'cached-model'`)
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			p, _, err := short.Lookup(ctx, d, "openai", "cached-model")
			return err == nil && p.InputPerMTok == 9
		}, 5*time.Second, time.Millisecond)
	})
}
