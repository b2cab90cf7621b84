package runs_test

import (
	"database/sql"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/runs"
)

// TestListShowsRunsWithoutPlansAndInputs checks that the list reads every
// field it shows as the run's own read does, and not the plan, the inputs or
// the ids behind the names.
func TestListShowsRunsWithoutPlansAndInputs(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := setupService(t, d)
		plan := mustPlan(t, `{"goal":"listed","steps":[{"name":"s","kind":"text","prompt":"{{inputs.n}}"},{"name":"t","kind":"text","prompt":"x","needs":["s"]}]}`)
		var ids []int64
		for i, key := range []string{"", "key-2", ""} {
			in := runs.CreateInput{Plan: plan, Inputs: map[string]any{"n": json.Number("1")}, IdempotencyKey: key}
			run, _, err := e.svc.Create(e.ctx, e.actor, in)
			require.NoError(t, err, "run %d", i)
			ids = append(ids, run.ID)
		}
		_, err := db.Exec(e.ctx, d, `UPDATE runs SET status = 'failed', error = 'boom', cost_micros = 7 WHERE id = ?`, ids[1])
		require.NoError(t, err)

		page, err := e.svc.List(e.ctx, e.actor, runs.ListFilter{})
		require.NoError(t, err)
		require.Len(t, page.Runs, 3)
		for i, got := range page.Runs {
			id := ids[len(ids)-1-i]
			require.Equal(t, id, got.ID, "newest first")
			want, _, err := e.svc.Get(e.ctx, e.actor, id)
			require.NoError(t, err)
			require.NotEmpty(t, want.PlanJSON)
			require.NotEmpty(t, want.InputsJSON)
			require.Empty(t, got.PlanJSON, "the list reads no plan")
			require.Empty(t, got.InputsJSON, "the list reads no inputs")
			require.False(t, got.IdempotencyKey.Valid, "the list reads no idempotency key")
			require.True(t, want.CreatedByUserID.Valid)
			want.PlanJSON, want.InputsJSON, want.IdempotencyKey = "", "", sql.NullString{}
			want.CreatedByUserID, want.CreatedByKeyID, want.DeploymentID, want.ScheduledFor = sql.NullInt64{}, sql.NullInt64{}, sql.NullInt64{}, nil
			require.Equal(t, want, got, "everything the list shows is as the run's own read")
		}
		require.Equal(t, "owner@example.com", page.Runs[0].CreatedBy)

		failed, err := e.svc.List(e.ctx, e.actor, runs.ListFilter{Status: runs.RunFailed})
		require.NoError(t, err)
		require.Len(t, failed.Runs, 1)
		require.Equal(t, ids[1], failed.Runs[0].ID)
		require.Equal(t, "boom", failed.Runs[0].Error)

		byCost, err := e.svc.List(e.ctx, e.actor, runs.ListFilter{SortByCost: true, Limit: 1})
		require.NoError(t, err)
		require.Equal(t, ids[1], byCost.Runs[0].ID)
		require.Equal(t, ids[1], byCost.NextBefore)
		require.EqualValues(t, 7, byCost.NextBeforeCost)
	})
}
