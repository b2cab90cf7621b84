package pricing

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nofxhq/nofx/internal/db"
)

// changes counts the prices Set in this process, so that every Cache
// forgets what it kept as soon as one changes.
var changes atomic.Int64

// Cache keeps the prices it looks up for TTL, so that pricing a step's
// tokens costs no query: a price Set in this process empties every Cache
// (a lookup racing the change may keep the old price), one set by another
// process applies within TTL. Its zero value needs TTL set.
type Cache struct {
	TTL time.Duration

	mu      sync.Mutex
	seen    int64 // changes when entries were last valid
	entries map[[2]string]cachedPrice
}

type cachedPrice struct {
	price   Price
	ok      bool
	expires time.Time
}

// Lookup is the package's Lookup, through the cache.
func (c *Cache) Lookup(ctx context.Context, q db.Queryer, provider, model string) (Price, bool, error) {
	key, now := [2]string{provider, model}, time.Now()
	c.mu.Lock()
	if n := changes.Load(); n != c.seen || c.entries == nil {
		c.seen, c.entries = n, map[[2]string]cachedPrice{}
	}
	e, hit := c.entries[key]
	seen := c.seen
	c.mu.Unlock()
	if hit && now.Before(e.expires) {
		return e.price, e.ok, nil
	}
	p, ok, err := Lookup(ctx, q, provider, model)
	if err != nil {
		return Price{}, false, err
	}
	c.mu.Lock()
	if c.seen == seen { // no price changed while this one was read
		c.entries[key] = cachedPrice{price: p, ok: ok, expires: now.Add(c.TTL)}
	}
	c.mu.Unlock()
	return p, ok, nil
}
