package runs_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/ai"
	"github.com/nofxhq/nofx/internal/apikeys"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/validation"
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

// savedKeys is a team's saved provider keys, for Service.Keys.
type savedKeys map[int64][]string

func (k savedKeys) Saved(_ context.Context, teamID int64) ([]string, error) { return k[teamID], nil }

// TestCreateRefusesKeylessProviders checks that a new run whose LLM step
// calls a provider with neither the instance's key nor the team's is
// refused on that step's provider, after the plan is normalised, and that
// an idempotent replay still returns the run it made.
func TestCreateRefusesKeylessProviders(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := setupService(t, d)
		keys := savedKeys{}
		e.svc.Keys = keys
		e.svc.Providers = ai.NewRegistry(ai.NewSimulated(1), ai.NewOpenAI(ai.OpenAIConfig{}))
		keyless := mustPlan(t, `{"goal":"g","steps":[{"name":"a","kind":"text","prompt":"x"},
			{"name":"b","kind":"llm","provider":" openai ","model":"gpt-4o","prompt":"y"}]}`)

		before := e.countRuns(t)
		_, _, err := e.svc.Create(e.ctx, e.actor, runs.CreateInput{Plan: keyless})
		var errs validation.Errors
		require.ErrorAs(t, err, &errs)
		require.Contains(t, errs["steps[1].provider"], "openai has no API key here", "spaces around the name change nothing")
		require.Equal(t, before, e.countRuns(t), "nothing is written")

		keys[e.actor.TeamID] = []string{"openai"}
		first, _, err := e.svc.Create(e.ctx, e.actor, runs.CreateInput{Plan: keyless, IdempotencyKey: "k1"})
		require.NoError(t, err, "with the team's key the run starts")

		delete(keys, e.actor.TeamID)
		again, replayed, err := e.svc.Create(e.ctx, e.actor, runs.CreateInput{Plan: keyless, IdempotencyKey: "k1"})
		require.NoError(t, err, "a replay returns its run although the key is gone")
		require.True(t, replayed)
		require.Equal(t, first.ID, again.ID)

		_, _, err = e.svc.Create(e.ctx, e.actor, runs.CreateInput{Plan: mustPlan(t, `{"goal":"g","steps":[{"name":"a","kind":"llm","provider":"simulated","model":"echo","prompt":"x"}]}`)})
		require.NoError(t, err, "a provider that needs no key is not asked about")
	})
}
