package runs

import (
	"container/list"
	"context"
	"fmt"
	"sync"

	"github.com/jmoiron/sqlx"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/db"
)

// ListCache keeps encoded pages of teams' runs lists, each with the
// version of its team's list it was read at (listVersion), so that a page
// asked for again while nothing it shows has changed is answered without
// reading and encoding its runs. Its size is bounded in bytes, each page
// counted with what keeping it costs; the page used longest ago gives way.
// One cache holds one encoding.
type ListCache struct {
	mu       sync.Mutex
	maxBytes int
	bytes    int
	entries  map[listKey]*list.Element
	order    list.List // of *listEntry, the most recently used first
	hits     uint64
	misses   uint64
}

type listKey struct {
	teamID int64
	filter ListFilter
}

type listEntry struct {
	key     listKey
	version int64
	body    []byte
}

// entryOverhead is about what an entry costs beside its body and its
// template filter: the key twice (map and entry), the map slot, the list
// element. Counting it keeps many small pages (a filter that matches
// nothing is 12 bytes) within the cache's size.
const entryOverhead = 400

// size is what the entry counts toward the cache's size.
func (e *listEntry) size() int { return len(e.body) + 2*len(e.key.filter.Template) + entryOverhead }

// NewListCache returns a cache of at most maxBytes of encoded pages; nil
// when maxBytes is 0 (no cache).
func NewListCache(maxBytes int) *ListCache {
	if maxBytes <= 0 {
		return nil
	}
	return &ListCache{maxBytes: maxBytes, entries: map[listKey]*list.Element{}}
}

// get returns the page kept for key when it was read at version.
func (c *ListCache) get(key listKey, version int64) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok || el.Value.(*listEntry).version != version {
		c.misses++
		return nil, false
	}
	c.hits++
	c.order.MoveToFront(el)
	return el.Value.(*listEntry).body, true
}

// put keeps body as key's page at version, replacing an older one, unless
// it alone is more than a quarter of the cache.
func (c *ListCache) put(key listKey, version int64, body []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		e := el.Value.(*listEntry)
		if e.version > version { // a reader that started later got there first
			return
		}
		c.remove(el)
	}
	e := &listEntry{key: key, version: version, body: body}
	if e.size() > c.maxBytes/4 {
		return
	}
	c.entries[key] = c.order.PushFront(e)
	c.bytes += e.size()
	for c.bytes > c.maxBytes {
		c.remove(c.order.Back())
	}
}

func (c *ListCache) remove(el *list.Element) {
	e := c.order.Remove(el).(*listEntry)
	delete(c.entries, e.key)
	c.bytes -= e.size()
}

// Len is how many pages the cache keeps, and what they count toward its
// size, in bytes.
func (c *ListCache) Len() (pages, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries), c.bytes
}

// Stats is how many pages were answered from the cache and how many were
// read again, and what those it keeps count toward its size, in bytes.
func (c *ListCache) Stats() (hits, misses uint64, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.misses, c.bytes
}

// ListEncoded returns one page of the team's runs as encode makes it of
// List's page: from s.ListCache when the team's list has not changed since
// the page was kept, else read, encoded and kept. Every process sees every
// change at once, for the version is counted in the database, in the
// transaction that made the change (migration 13).
func (s *Service) ListEncoded(ctx context.Context, actor access.Actor, f ListFilter, encode func(Page) ([]byte, error)) ([]byte, error) {
	if err := actor.Can(access.RunsRead); err != nil {
		return nil, err
	}
	q := s.DB.Reader()
	if s.ListCache == nil {
		page, err := listRuns(ctx, q, actor.TeamID, f)
		if err != nil {
			return nil, err
		}
		return encode(page)
	}
	// The version is read before the page: a change committed in between
	// counts past it, so the page, which may show the change, is never
	// kept as the page of a version that lacks it.
	version, err := listVersion(ctx, q, actor.TeamID)
	if err != nil {
		return nil, err
	}
	key := listKey{teamID: actor.TeamID, filter: f}
	key.filter.Limit = f.pageSize() // no limit and 50 are one page
	if body, ok := s.ListCache.get(key, version); ok {
		return body, nil
	}
	page, err := listRuns(ctx, q, actor.TeamID, f)
	if err != nil {
		return nil, err
	}
	body, err := encode(page)
	if err != nil {
		return nil, err
	}
	s.ListCache.put(key, version, body)
	return body, nil
}

// listVersion is the version of the team's runs list: the sum of its
// counters and of team 0's, which only ever grows, by at least one with
// each committed change to what the list shows (migration 13's triggers).
func listVersion(ctx context.Context, q db.Queryer, teamID int64) (int64, error) {
	var v int64
	err := db.Get(ctx, q, &v, `SELECT CAST(COALESCE(SUM(version), 0) AS BIGINT) FROM run_list_versions WHERE team_id IN (?, 0)`, teamID)
	if err != nil {
		return 0, fmt.Errorf("runs: list version: %w", err)
	}
	return v, nil
}

// FoldListVersions folds the list counters of PostgreSQL connections that
// have ended into each team's slot 0, keeping every team's sum, so that
// the table holds a row per team and live connection; it returns how many
// rows went. Rows another transaction holds are left for the next time.
// SQLite counts in slot 0 alone.
func (s *Service) FoldListVersions(ctx context.Context) (int64, error) {
	if s.DB.Dialect != db.Postgres {
		return 0, nil
	}
	var folded int64
	err := db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		// One fold at a time across processes: two would insert into the
		// same slots 0.
		if _, err := db.Exec(ctx, tx, `SELECT pg_advisory_xact_lock(hashtext('nofx-run-list-fold:' || current_schema()))`); err != nil {
			return err
		}
		return db.Get(ctx, tx, &folded, `WITH gone AS (
				DELETE FROM run_list_versions WHERE ctid IN (
					SELECT ctid FROM run_list_versions v
					WHERE slot <> 0 AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = v.slot)
					FOR UPDATE SKIP LOCKED)
				RETURNING team_id, version),
			kept AS (
				INSERT INTO run_list_versions (team_id, slot, version)
				SELECT team_id, 0, SUM(version) FROM gone GROUP BY team_id ORDER BY team_id
				ON CONFLICT (team_id, slot) DO UPDATE SET version = run_list_versions.version + EXCLUDED.version)
			SELECT COUNT(*) FROM gone`)
	})
	if err != nil {
		return 0, fmt.Errorf("runs: fold list versions: %w", err)
	}
	return folded, nil
}
