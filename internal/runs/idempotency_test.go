package runs_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/runs"
)

func TestIdempotencyKeyReusedWithAnotherRequest(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := setupService(t, d)
		plan := `{"goal":"once","steps":[{"name":"s","kind":"text","prompt":"{{inputs.n}}"}]}`
		in := runs.CreateInput{Plan: mustPlan(t, plan), Inputs: map[string]any{"n": json.Number("1")}, IdempotencyKey: "k"}
		first, replayed, err := e.svc.Create(e.ctx, e.actor, in)
		require.NoError(t, err)
		require.False(t, replayed)
		var hash *string
		require.NoError(t, db.Get(e.ctx, d, &hash, `SELECT idempotency_hash FROM runs WHERE id = ?`, first.ID))
		require.NotNil(t, hash, "the request's hash is stored with its key")
		require.Len(t, *hash, 64, "hex SHA-256")

		// The same request, even spelled another way, replays the first run.
		same := runs.CreateInput{Plan: mustPlan(t, `{ "steps":[{"prompt":"{{inputs.n}}","kind":"text","name":" s "}], "goal":"once" }`),
			Inputs: map[string]any{"n": json.Number("1")}, IdempotencyKey: "k"}
		again, replayed, err := e.svc.Create(e.ctx, e.actor, same)
		require.NoError(t, err)
		require.True(t, replayed)
		require.Equal(t, first.ID, again.ID)

		for _, tc := range []struct {
			name string
			in   runs.CreateInput
		}{
			{"other inputs", runs.CreateInput{Plan: mustPlan(t, plan), Inputs: map[string]any{"n": json.Number("2")}, IdempotencyKey: "k"}},
			{"other plan", runs.CreateInput{Plan: mustPlan(t, `{"goal":"twice","steps":[{"name":"s","kind":"text","prompt":"{{inputs.n}}"}]}`),
				Inputs: map[string]any{"n": json.Number("1")}, IdempotencyKey: "k"}},
			{"other request hash", runs.CreateInput{Plan: mustPlan(t, plan), Inputs: map[string]any{"n": json.Number("1")}, IdempotencyKey: "k",
				RequestHash: runs.RequestHash(map[string]any{"template": "x"})}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := e.countRuns(t)
				_, _, err := e.svc.Create(e.ctx, e.actor, tc.in)
				require.ErrorIs(t, err, runs.ErrIdempotencyKeyReused)
				require.Equal(t, before, e.countRuns(t), "nothing is written")
			})
		}

		// A run from before hashes were stored matches any request.
		_, err = db.Exec(e.ctx, d, `UPDATE runs SET idempotency_hash = NULL WHERE id = ?`, first.ID)
		require.NoError(t, err)
		other := runs.CreateInput{Plan: mustPlan(t, plan), Inputs: map[string]any{"n": json.Number("2")}, IdempotencyKey: "k"}
		old, replayed, err := e.svc.Create(e.ctx, e.actor, other)
		require.NoError(t, err)
		require.True(t, replayed)
		require.Equal(t, first.ID, old.ID)

		// Past the window the key is free again, whatever the request.
		_, err = db.Exec(e.ctx, d, `UPDATE runs SET created_at = ? WHERE id = ?`, db.Now().Add(-runs.IdempotencyWindow-time.Hour), first.ID)
		require.NoError(t, err)
		fresh, replayed, err := e.svc.Create(e.ctx, e.actor, other)
		require.NoError(t, err)
		require.False(t, replayed)
		require.NotEqual(t, first.ID, fresh.ID)
		var oldKey *string
		require.NoError(t, db.Get(e.ctx, d, &oldKey, `SELECT idempotency_hash FROM runs WHERE id = ?`, first.ID))
		require.Nil(t, oldKey, "the freed key's hash goes with it")

		// Without a key nothing is hashed.
		plain, _, err := e.svc.Create(e.ctx, e.actor, runs.CreateInput{Plan: mustPlan(t, plan), Inputs: map[string]any{"n": 1}})
		require.NoError(t, err)
		require.NoError(t, db.Get(e.ctx, d, &hash, `SELECT idempotency_hash FROM runs WHERE id = ?`, plain.ID))
		require.Nil(t, hash)
	})
}

func TestRequestHash(t *testing.T) {
	t.Parallel()
	a := runs.RequestHash(map[string]any{"b": []any{json.Number("1"), "x"}, "a": true})
	require.Len(t, a, 64)
	require.Equal(t, a, runs.RequestHash(map[string]any{"a": true, "b": []any{json.Number("1"), "x"}}), "key order does not matter")
	require.NotEqual(t, a, runs.RequestHash(map[string]any{"a": true, "b": []any{json.Number("2"), "x"}}))
	require.NotEmpty(t, runs.RequestHash(map[string]any{"n": json.Number("NaN")}), "even what JSON cannot encode hashes")
}

func TestIdempotencyKeyRacedByConcurrentRequests(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := setupService(t, d)
		plan := mustPlan(t, `{"goal":"race","steps":[{"name":"s","kind":"text","prompt":"{{inputs.n}}"}]}`)
		const n = 8
		start := make(chan struct{})
		var wg sync.WaitGroup
		ids := make([]int64, n)
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				// Half send one request, half another, all under one key.
				in := runs.CreateInput{Plan: plan, Inputs: map[string]any{"n": i % 2}, IdempotencyKey: "raced"}
				run, _, err := e.svc.Create(e.ctx, e.actor, in)
				ids[i], errs[i] = run.ID, err
			}()
		}
		close(start)
		wg.Wait()
		require.Equal(t, 1, e.countRuns(t), "one run for the key")
		var winner int64
		require.NoError(t, db.Get(e.ctx, d, &winner, `SELECT id FROM runs`))
		for i := range n {
			if errs[i] != nil {
				require.ErrorIs(t, errs[i], runs.ErrIdempotencyKeyReused, "request %d: never a 500", i)
				continue
			}
			require.Equal(t, winner, ids[i], fmt.Sprintf("request %d replays the one run", i))
		}
	})
}
