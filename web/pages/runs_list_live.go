package pages

import (
	"cmp"
	"context"
	"io"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/live"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/validation"
	runsview "github.com/nofxhq/nofx/views/runs"
	"github.com/nofxhq/nofx/web/form"
	"github.com/nofxhq/nofx/web/httpx"
)

// listLiveBatch is how long the live list gathers run changes before it
// reads them, so that a run moving through its steps costs one read, not
// one per step.
const listLiveBatch = 100 * time.Millisecond

// listLiveMargin widens the stream's first look back from the moment the
// page read its runs, for clocks that differ between processes: a row
// changed within it is sent again, which is harmless.
const listLiveMargin = 5 * time.Second

// listLiveURL is the stream that keeps a runs list page live: the page's
// filters and cursor, the newest run it shows (top) and when it read its
// runs (since, in Unix milliseconds).
func listLiveURL(q url.Values, shown []runs.Run, readAt time.Time) string {
	v := url.Values{}
	for _, key := range []string{"status", "template", "from", "to", "sort", "before", "before_cost", "limit"} {
		if value := q.Get(key); value != "" {
			v.Set(key, value)
		}
	}
	var top int64
	for _, r := range shown {
		top = max(top, r.ID)
	}
	v.Set("top", strconv.FormatInt(top, 10))
	v.Set("since", strconv.FormatInt(readAt.UnixMilli(), 10))
	return "/runs/live?" + v.Encode()
}

// RunsLive streams the changes of the runs list page as Server-Sent Events,
// for the htmx SSE extension, for the current team only:
//
//   - run-{id}: the new row of a run the page shows, when it changed; an HTML
//     comment, which takes the row's place and so removes it, when the run
//     no longer matches the page's filters
//   - runs-new: rows of new runs, newest first, to put above the others (on
//     the first page of the newest runs only); its id is the newest run's,
//     so a reconnecting browser does not get them twice
//   - runs-results: the whole list, when the first runs arrive on a page
//     that showed none
//
// The stream reads each changed run through the list's own query, so it
// shows what a reload would. Like the run page's stream it holds one of the
// user's stream slots, subscribes before it reads, and ends when the server
// stops.
func (s *Pages) RunsLive(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	f, err := form.RunsFilter(c.QueryParams())
	if err != nil {
		return err
	}
	top, since, err := listLiveCursor(c)
	if err != nil {
		return err
	}
	release, err := s.holdStream(c, a)
	if err != nil {
		return err
	}
	defer release()
	// Subscribe before reading, so nothing written in between is missed.
	messages, unsubscribe := s.broker.Subscribe(live.TeamTopic(a.TeamID))
	defer unsubscribe()
	ctx := c.Request().Context()
	page, err := s.runs.List(ctx, a, f)
	if err != nil {
		return err // before the stream starts: a normal error response
	}
	l := &listLive{
		server: s, actor: a, filter: f, query: c.QueryParams(),
		prepends: !f.SortByCost && f.Before == 0,
		top:      top, empty: top == 0,
		shown: map[int64]rowState{},
	}
	l.stream = httpx.StartStream(c)
	if l.sync(ctx, page.Runs, since) != nil {
		return nil
	}

	keepalive := time.NewTicker(s.keepalive)
	defer keepalive.Stop()
	for {
		changed := map[int64]bool{}
		select {
		case <-ctx.Done():
			return nil
		case <-s.stopping:
			return nil // shutting down: the browser reconnects to another process
		case <-keepalive.C:
			if l.stream.Comment("keepalive") != nil {
				return nil
			}
			// In case a notification was lost, read the page again.
			page, err := s.runs.List(ctx, a, f)
			if db.Unavailable(err) {
				continue // the database is away: try again at the next keepalive
			}
			if err != nil || l.sync(ctx, page.Runs, time.Time{}) != nil {
				return nil
			}
			continue
		case m := <-messages:
			changed[m.RunID] = true
		}
		batch := time.NewTimer(listLiveBatch)
		for gathering := true; gathering; {
			select {
			case <-ctx.Done():
				batch.Stop()
				return nil
			case <-s.stopping:
				batch.Stop()
				return nil
			case m := <-messages:
				changed[m.RunID] = true
			case <-batch.C:
				gathering = false
			}
		}
		if err := l.changed(ctx, changed); db.Unavailable(err) {
			continue // the database is away: the next keepalive reads the page again
		} else if err != nil {
			return nil // the client is gone: the stream just ends
		}
	}
}

// listLiveCursor reads where the page stands: the newest run it shows (or
// was last sent, on a reconnect: Last-Event-ID) and when it read its runs.
func listLiveCursor(c echo.Context) (top int64, since time.Time, err error) {
	errs := validation.Errors{}
	number := func(name, value string) int64 {
		if value == "" {
			return 0
		}
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || n < 0 {
			errs.Add(name, "Use the value the runs page gave.")
		}
		return max(n, 0)
	}
	top = max(number("top", c.QueryParam("top")), number("Last-Event-ID", c.Request().Header.Get("Last-Event-ID")))
	if ms := number("since", c.QueryParam("since")); ms > 0 {
		since = time.UnixMilli(ms).Add(-listLiveMargin)
	}
	return top, since, errs.Err()
}

// rowState is what a list row shows that can change.
type rowState struct {
	status    string
	stepsDone int
	cost      int64
	updatedAt int64 // UnixNano
}

func rowStateOf(r runs.Run) rowState {
	return rowState{r.Status, r.StepsDone, r.CostMicros, r.UpdatedAt.UnixNano()}
}

// listLive is what one live stream of a runs list page has sent so far.
type listLive struct {
	server *Pages
	actor  access.Actor
	stream *httpx.Stream
	filter runs.ListFilter
	query  url.Values
	// prepends: the page is the first of the newest runs, where new runs
	// appear on top.
	prepends bool
	top      int64 // the newest run the page shows
	empty    bool  // the page shows no table yet
	// shown holds the rows the page shows, as last sent.
	shown map[int64]rowState
}

// sync sends what changed among rows, a fresh read of the page: new runs,
// and rows that changed since they were sent (or, for rows not sent yet,
// since the time since).
func (l *listLive) sync(ctx context.Context, rows []runs.Run, since time.Time) error {
	var fresh []runs.Run
	for _, r := range rows {
		state, seen := l.shown[r.ID]
		switch {
		case l.prepends && r.ID > l.top:
			fresh = append(fresh, r)
		case seen && state != rowStateOf(r), !seen && !r.UpdatedAt.Before(since):
			if err := l.sendRow(ctx, r); err != nil {
				return err
			}
		default:
			l.shown[r.ID] = rowStateOf(r)
		}
	}
	return l.prepend(ctx, fresh)
}

// changed sends what the runs with these ids changed on the page.
func (l *listLive) changed(ctx context.Context, ids map[int64]bool) error {
	var fresh []runs.Run
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		r, matches, err := l.row(ctx, id)
		if err != nil {
			return err
		}
		state, seen := l.shown[id]
		switch {
		case !matches:
			if seen {
				delete(l.shown, id)
				if err := l.stream.Send(rowEvent(id), 0, "<!-- no longer listed -->"); err != nil {
					return err
				}
			}
		case seen:
			if state != rowStateOf(r) {
				if err := l.sendRow(ctx, r); err != nil {
					return err
				}
			}
		case l.prepends && id > l.top:
			fresh = append(fresh, r)
		}
	}
	return l.prepend(ctx, fresh)
}

// row reads run id as the list shows it, and whether it matches the
// page's filters: the newest matching run from id down is id itself.
func (l *listLive) row(ctx context.Context, id int64) (runs.Run, bool, error) {
	f := l.filter
	f.SortByCost, f.Before, f.BeforeCost, f.Limit = false, id+1, 0, 1
	page, err := l.server.runs.List(ctx, l.actor, f)
	if err != nil || len(page.Runs) == 0 || page.Runs[0].ID != id {
		return runs.Run{}, false, err
	}
	return page.Runs[0], true, nil
}

func rowEvent(id int64) string { return "run-" + strconv.FormatInt(id, 10) }

// sendRow sends the new row of a run the page shows.
func (l *listLive) sendRow(ctx context.Context, r runs.Run) error {
	l.shown[r.ID] = rowStateOf(r)
	return sendHTML(ctx, l.stream, rowEvent(r.ID), 0, runsview.RunRow(r, time.Now()))
}

// prepend puts new runs on top of the page, newest first: into the table,
// or, on a page that had none, as the whole list.
func (l *listLive) prepend(ctx context.Context, fresh []runs.Run) error {
	if len(fresh) == 0 {
		return nil
	}
	slices.SortFunc(fresh, func(a, b runs.Run) int { return cmp.Compare(b.ID, a.ID) })
	for _, r := range fresh {
		l.shown[r.ID] = rowStateOf(r)
	}
	l.top = fresh[0].ID
	now := time.Now()
	if !l.empty {
		return sendHTML(ctx, l.stream, "runs-new", l.top, templ.ComponentFunc(func(ctx context.Context, w io.Writer) error {
			for _, r := range fresh {
				if err := runsview.RunRow(r, now).Render(ctx, w); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	l.empty = false
	templates, err := l.server.runs.TemplatesUsed(ctx, l.actor)
	if err != nil {
		return err
	}
	q := l.query
	d := runsview.ListData{
		Runs: fresh, Now: now, Statuses: runs.RunStatuses, Templates: templates,
		CanCreate: access.Allowed(l.actor.Role, access.RunsCreate),
		Filter: runsview.Filter{
			Status: q.Get("status"), Template: q.Get("template"), From: q.Get("from"), To: q.Get("to"),
			Sort: q.Get("sort"), Limit: q.Get("limit"),
		},
	}
	return sendHTML(ctx, l.stream, "runs-results", l.top, runsview.Results(d))
}
