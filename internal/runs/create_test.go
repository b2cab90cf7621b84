package runs_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/apikeys"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/teams"
)

// TestCreateReturnsTheRunAsRead checks that the run Create returns, built
// from what its transaction wrote rather than read back, is the run a read
// finds: for a person, an API key, a trigger, a rerun, an idempotency key's
// first create and replay, and a run whose first step waits for approval.
func TestCreateReturnsTheRunAsRead(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := setupService(t, d)
		key, _, err := apikeys.Create(e.ctx, d, e.actor.TeamID, "ci key", teams.RoleOwner, e.actor.UserID, nil)
		require.NoError(t, err)
		byKey := access.Actor{APIKeyID: key.ID, TeamID: e.actor.TeamID, Role: teams.RoleOwner}
		text := mustPlan(t, `{"goal":"as read","steps":[{"name":"a","kind":"text","prompt":"{{inputs.n}}"},{"name":"b","kind":"text","prompt":"x","needs":["a"]}]}`)
		approval := mustPlan(t, `{"goal":"wait","steps":[{"name":"ok","kind":"approval","prompt":"Ship?"}]}`)

		inputs := map[string]any{"n": json.Number("1")}
		first, _, err := e.svc.Create(e.ctx, e.actor, runs.CreateInput{Plan: text, Inputs: inputs})
		require.NoError(t, err)
		cases := []struct {
			name   string
			actor  access.Actor
			in     runs.CreateInput
			by     string
			status string
		}{
			{"person", e.actor, runs.CreateInput{Plan: text, Inputs: inputs}, "owner@example.com", runs.RunQueued},
			{"key", byKey, runs.CreateInput{Plan: text, Inputs: inputs}, "ci key", runs.RunQueued},
			{"trigger", access.Actor{TeamID: e.actor.TeamID, Role: teams.RoleOwner}, runs.CreateInput{Plan: text, Inputs: inputs, TriggeredBy: "schedule"}, "schedule", runs.RunQueued},
			{"rerun", e.actor, runs.CreateInput{Plan: text, Inputs: inputs, RerunOf: first.ID}, "owner@example.com", runs.RunQueued},
			{"idempotent", byKey, runs.CreateInput{Plan: text, Inputs: inputs, IdempotencyKey: "once"}, "ci key", runs.RunQueued},
			{"replayed", byKey, runs.CreateInput{Plan: text, Inputs: inputs, IdempotencyKey: "once"}, "ci key", runs.RunQueued},
			{"approval", e.actor, runs.CreateInput{Plan: approval}, "owner@example.com", runs.RunWaiting},
		}
		for _, c := range cases {
			got, replayed, err := e.svc.Create(e.ctx, c.actor, c.in)
			require.NoError(t, err, c.name)
			require.Equal(t, c.name == "replayed", replayed, c.name)
			want, _, err := e.svc.Get(e.ctx, e.actor, got.ID)
			require.NoError(t, err, c.name)
			require.Equal(t, inUTC(want), inUTC(got), "%s: the created run is the run as read", c.name)
			require.Equal(t, c.by, got.CreatedBy, c.name)
			require.Equal(t, c.status, got.Status, c.name)
		}
	})
}

// inUTC is r with its times in UTC, as a read gives them in the local zone.
func inUTC(r runs.Run) runs.Run {
	r.CreatedAt, r.UpdatedAt = r.CreatedAt.UTC(), r.UpdatedAt.UTC()
	for _, p := range []**time.Time{&r.StartedAt, &r.FinishedAt, &r.ScheduledFor} {
		if *p != nil {
			u := (*p).UTC()
			*p = &u
		}
	}
	return r
}
