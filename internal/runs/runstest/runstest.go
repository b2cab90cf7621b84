// Package runstest helps tests of what builds on the runs service.
package runstest

import (
	"context"
	"sync/atomic"

	"github.com/jmoiron/sqlx"

	"github.com/nofxhq/nofx/internal/runs"
)

// Jobs stands in for the engine as the runs service's Scheduler: it hands
// out job ids and runs nothing, so tests claim the steps themselves, as a
// worker would.
type Jobs struct{ next atomic.Int64 }

// Schedule returns a new id for each job.
func (j *Jobs) Schedule(_ context.Context, _ *sqlx.Tx, jobs []runs.StepJob) ([]int64, error) {
	ids := make([]int64, len(jobs))
	for i := range jobs {
		ids[i] = j.next.Add(1)
	}
	return ids, nil
}
