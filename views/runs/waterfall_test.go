package runs

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/runs"
)

func TestWaterfall(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	at := func(s int) *time.Time { v := t0.Add(time.Duration(s) * time.Second); return &v }
	run := runs.Run{CreatedAt: t0, StartedAt: at(0), FinishedAt: at(10)}
	steps := []runs.Step{
		{Name: "fetch", Status: runs.StepSucceeded, NeedsJSON: `[]`, StartedAt: at(1), FinishedAt: at(3)},
		{Name: "left", Status: runs.StepSucceeded, NeedsJSON: `["fetch"]`, StartedAt: at(3), FinishedAt: at(8)},
		{Name: "right", Status: runs.StepFailed, NeedsJSON: `["fetch"]`, StartedAt: at(4), FinishedAt: at(6)},
		{Name: "join", Status: runs.StepSkipped, NeedsJSON: `["left","right"]`},
	}
	rows := Waterfall(run, steps, t0.Add(time.Hour))
	require.Len(t, rows, 4)

	fetch, left, right, join := rows[0], rows[1], rows[2], rows[3]
	require.Equal(t, time.Second, fetch.Wait, "ready at the run's start, started a second later")
	require.Equal(t, 2*time.Second, fetch.Ran)
	require.Equal(t, []int{100, 100, 300}, []int{fetch.x1 - fetch.x0, fetch.x1, fetch.x2}, "a tenth of the span a second")

	require.Zero(t, left.Wait, "started as its need finished")
	require.Equal(t, time.Second, right.Wait, "waited a second after its need")
	require.Less(t, right.x1, left.x2, "left and right ran in parallel")
	require.Less(t, left.x1, right.x2)
	require.Equal(t, "waited 1.0s, ran 2.0s", waterfallWords(right))
	require.Equal(t, "skipped", waterfallWords(join))
	require.Equal(t, "started at once, ran 5.0s", waterfallWords(left))
	require.Zero(t, join.x2, "nothing drawn for a step that did not run")

	// A live run: the span ends now; a queued step whose needs are done
	// waits until now; one whose needs are not, waits for them.
	now := t0.Add(20 * time.Second)
	live := runs.Run{CreatedAt: t0, StartedAt: at(0)}
	rows = Waterfall(live, []runs.Step{
		{Name: "a", Status: runs.StepSucceeded, NeedsJSON: `[]`, StartedAt: at(0), FinishedAt: at(10)},
		{Name: "b", Status: runs.StepQueued, NeedsJSON: `["a"]`},
		{Name: "c", Status: runs.StepQueued, NeedsJSON: `["b"]`},
		{Name: "d", Status: runs.StepRunning, NeedsJSON: `["a"]`, StartedAt: at(15)},
	}, now)
	require.Equal(t, 500, rows[0].x2)
	require.Equal(t, 10*time.Second, rows[1].Wait)
	require.Equal(t, "ready, waiting 10.0s", waterfallWords(rows[1]))
	require.Equal(t, "waiting for its needs", waterfallWords(rows[2]))
	require.Equal(t, "waited 5.0s, running for 5.0s", waterfallWords(rows[3]))
	require.Equal(t, 1000, rows[3].x2, "a running step runs until now")

	// A run of no time yet draws nothing past its origin.
	rows = Waterfall(runs.Run{CreatedAt: t0}, []runs.Step{{Name: "a", Status: runs.StepQueued, NeedsJSON: `[]`}}, t0)
	require.Zero(t, rows[0].x1)
}
