package web

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/live"
	"github.com/nofxhq/nofx/web/httpx"
)

// sseKeepalive is how often an idle stream sends a comment, so proxies keep
// it open; it also re-reads the run in case a notification was lost.
const sseKeepalive = 15 * time.Second

// streamRetry is how soon a stream whose catch-up found the database
// unavailable tries again.
const streamRetry = time.Second

// teamEvery is how often a run's stream looks again at what the team's
// other runs changed.
const teamEvery = time.Second

// openStreams counts the event streams each principal holds open in this
// process.
type openStreams struct {
	mu   sync.Mutex
	open map[string]int // by principal: "user:ID" or "key:ID"; no zero counts
}

// streamPrincipal names who holds a stream: the API key, or the user (on
// every team and every page at once).
func streamPrincipal(a access.Actor) string {
	if a.APIKeyID != 0 {
		return "key:" + strconv.FormatInt(a.APIKeyID, 10)
	}
	return "user:" + strconv.FormatInt(a.UserID, 10)
}

// acquire takes one of limit stream slots of principal, and returns the
// function that gives it back; false when all are taken.
func (o *openStreams) acquire(principal string, limit int) (release func(), ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.open == nil {
		o.open = map[string]int{}
	}
	if o.open[principal] >= limit {
		return nil, false
	}
	o.open[principal]++
	var once sync.Once
	return func() {
		once.Do(func() {
			o.mu.Lock()
			defer o.mu.Unlock()
			if o.open[principal]--; o.open[principal] <= 0 {
				delete(o.open, principal)
			}
		})
	}, true
}

// holdStream takes a stream slot of the actor, up to cfg.StreamsPerPrincipal
// (zero: no cap), or answers 429. The slot must be released when the stream
// ends.
func (s *Server) holdStream(c echo.Context, a access.Actor) (release func(), err error) {
	limit := s.cfg.StreamsPerPrincipal
	if limit <= 0 {
		return func() {}, nil
	}
	release, ok := s.streams.acquire(streamPrincipal(a), limit)
	if !ok {
		s.metrics.Refused("streams")
		// The RateLimit headers speak of the stream cap, not the general tier.
		h := c.Response().Header()
		h.Set("RateLimit-Limit", strconv.Itoa(limit))
		h.Set("RateLimit-Remaining", "0")
		h.Set("RateLimit-Reset", strconv.Itoa(retryAfterSeconds(sseKeepalive)))
		// A stream whose client vanished is noticed by its next keepalive
		// at the latest, which frees its slot.
		return nil, &tooManyRequests{retryAfter: sseKeepalive,
			message: fmt.Sprintf("At most %d event streams may be open at once; close one first.", limit)}
	}
	return release, nil
}

// followRun streams a run to the client from the event after `after` until
// the client leaves (or the run finishes, with untilFinished). It waits on
// the run's notifications; nothing polls. Each stream holds one of the
// actor's stream slots until it ends.
func (s *Server) followRun(c echo.Context, actor access.Actor, runID, after int64, f httpx.RunFollower) error {
	ctx := c.Request().Context()
	release, err := s.holdStream(c, actor)
	if err != nil {
		return err
	}
	defer release()
	// Subscribe before reading, so nothing written in between is missed.
	messages, unsubscribe := s.broker.Subscribe(runID)
	defer unsubscribe()
	var teamMessages <-chan live.Message // nil: never ready
	if f.Team != nil {
		ch, unsubscribeTeam := s.broker.Subscribe(live.TeamTopic(f.TeamID))
		defer unsubscribeTeam()
		teamMessages = ch
	}
	if _, _, err := s.runs.Get(ctx, actor, runID); err != nil {
		return err // before the stream starts: a normal error response
	}
	stream := httpx.StartStream(c)
	last := after
	catchUp := func() (finished bool, err error) {
		events, err := s.runs.Events(ctx, actor, runID, last)
		if err != nil {
			return false, err
		}
		run, _, err := s.runs.Get(ctx, actor, runID)
		if err != nil {
			return false, err
		}
		if len(events) > 0 {
			if err := f.Changed(stream, events, run); err != nil {
				return false, err
			}
			last = events[len(events)-1].ID
		}
		return run.Finished(), nil
	}

	keepalive := time.NewTicker(s.keepalive)
	defer keepalive.Stop()
	var (
		teamDue  <-chan time.Time // when a held-back team change is looked at
		teamLast time.Time
		retry    <-chan time.Time // when a catch-up the database refused is tried again
		down     bool             // the last catch-up found the database unavailable
	)
	tell := func(now bool) error { // says when the database goes away or comes back
		was := down
		down = now
		if was == now || f.Outage == nil {
			return nil
		}
		return f.Outage(stream, now)
	}
	team := func() error {
		teamDue, teamLast = nil, time.Now()
		return f.Team(stream)
	}
	for {
		finished, err := catchUp()
		switch {
		case err != nil && db.Unavailable(err) && ctx.Err() == nil:
			// The database is away: the stream stays open (deltas still
			// pass) and catches up from the last event sent once it is back.
			if stream.Comment("the database is unavailable, retrying") != nil || tell(true) != nil {
				return nil
			}
			retry = time.After(streamRetry)
			finished = false
		case err != nil:
			return nil // the client is gone, or the run: the stream just ends
		default:
			retry = nil
			if tell(false) != nil {
				return nil
			}
		}
		if finished && f.UntilFinished {
			return stream.Send("end", 0, `{"reason":"finished"}`)
		}
		// Wait for news: a change or a keepalive re-reads the run; deltas
		// pass straight through.
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				return nil
			case <-s.stopping:
				return nil // shutting down: the browser reconnects to another process
			case <-keepalive.C:
				if err := stream.Comment("keepalive"); err != nil {
					return nil
				}
				waiting = false
			case m := <-messages:
				if m.Kind != live.KindDelta {
					waiting = false
				} else if f.Delta != nil && f.Delta(stream, m) != nil {
					return nil
				}
			case m := <-teamMessages:
				if m.RunID == runID || m.Kind == live.KindDelta || teamDue != nil {
					continue // its own news, or a look is due already
				}
				if wait := teamEvery - time.Since(teamLast); wait > 0 {
					teamDue = time.After(wait)
				} else if team() != nil {
					return nil
				}
			case <-retry:
				waiting = false
			case <-teamDue:
				if team() != nil {
					return nil
				}
			}
		}
	}
}
