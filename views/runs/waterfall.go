package runs

import (
	"time"

	"github.com/nofxhq/nofx/internal/runs"
)

// waterfallWidth is the width of a waterfall row's drawing, in viewBox
// units; each bar's x and width are fractions of the run's span.
const waterfallWidth = 1000

// WaterfallRow is one step on the waterfall: when it could have started
// (its needs done), when it started, and when it finished, as offsets in
// the run's span.
type WaterfallRow struct {
	Step   runs.Step
	Wait   time.Duration // from ready to started
	Ran    time.Duration // from started to finished (or now)
	Ready  bool          // its needs were done
	x0, x1 int           // the wait: from ready to started (viewBox units)
	x2     int           // the end of the run of it
}

// Waterfall lays out the run's steps against its span, from the run's start
// (or creation) to its end (or now): what waited, what ran, what ran in
// parallel.
func Waterfall(run runs.Run, steps []runs.Step, now time.Time) []WaterfallRow {
	origin := run.CreatedAt
	if run.StartedAt != nil && run.StartedAt.Before(origin) {
		origin = *run.StartedAt
	}
	end := now
	if run.FinishedAt != nil {
		end = *run.FinishedAt
	}
	finished := map[string]*time.Time{}
	for _, s := range steps {
		finished[s.Name] = s.FinishedAt
		if s.FinishedAt != nil && s.FinishedAt.After(end) {
			end = *s.FinishedAt
		}
	}
	span := end.Sub(origin)
	at := func(t time.Time) int {
		if span <= 0 {
			return 0
		}
		x := int(float64(t.Sub(origin)) / float64(span) * waterfallWidth)
		return min(max(x, 0), waterfallWidth)
	}
	rows := make([]WaterfallRow, 0, len(steps))
	for _, s := range steps {
		row := WaterfallRow{Step: s, Ready: true}
		ready := origin
		for _, need := range s.Needs() {
			done := finished[need]
			if done == nil {
				row.Ready = false
				continue
			}
			if done.After(ready) {
				ready = *done
			}
		}
		if s.StartedAt != nil {
			row.Ready = true
			row.Wait = max(s.StartedAt.Sub(ready), 0)
			row.Ran = s.Duration(now)
			row.x0, row.x1 = at(ready), at(*s.StartedAt)
			stop := now
			if s.FinishedAt != nil {
				stop = *s.FinishedAt
			}
			row.x1 = min(row.x1, waterfallWidth-2)
			row.x2 = max(at(stop), row.x1+2) // a step of no time still shows
		} else if row.Ready && !s.Finished() {
			row.Wait = max(now.Sub(ready), 0)
			row.x0, row.x1 = at(ready), at(now)
			row.x2 = row.x1
		}
		rows = append(rows, row)
	}
	return rows
}
