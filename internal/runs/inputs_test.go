package runs_test

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/ai"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/live"
	"github.com/nofxhq/nofx/internal/plan"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/runs/runstest"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/validation"
)

// serviceEnv is a runs service on a fresh database with an owner acting in
// their team.
type serviceEnv struct {
	ctx   context.Context
	db    *db.DB
	svc   *runs.Service
	actor access.Actor
}

func setupService(t *testing.T, d *db.DB) serviceEnv {
	t.Helper()
	ctx := context.Background()
	user, team, err := (&auth.Service{DB: d}).SignUp(ctx, auth.SignUp{Email: "owner@example.com", Password: "a long enough password"})
	require.NoError(t, err)
	svc := &runs.Service{DB: d, Scheduler: &runstest.Jobs{}, Broker: live.NewLocal(), Providers: ai.NewRegistry(ai.NewSimulated(1))}
	return serviceEnv{ctx: ctx, db: d, svc: svc, actor: access.Actor{UserID: user.ID, TeamID: team.ID, Role: teams.RoleOwner}}
}

func (e serviceEnv) countRuns(t *testing.T) int {
	t.Helper()
	var n int
	require.NoError(t, db.Get(e.ctx, e.db, &n, `SELECT COUNT(*) FROM runs`))
	return n
}

// claimFirst claims the run's first step as a worker would, which renders
// its prompt from the stored inputs.
func (e serviceEnv) claimFirst(t *testing.T, runID int64) (runs.Claim, error) {
	t.Helper()
	_, steps, err := e.svc.Get(e.ctx, e.actor, runID)
	require.NoError(t, err)
	require.True(t, steps[0].JobID.Valid, "the first step has a job")
	return e.svc.Claim(e.ctx, runID, steps[0].ID, steps[0].JobID.Int64, time.Minute)
}

func mustPlan(t *testing.T, js string) plan.Plan {
	t.Helper()
	p, err := plan.Parse([]byte(js))
	require.NoError(t, err)
	return p
}

// requireFields asserts err is validation.Errors with exactly fields.
func requireFields(t *testing.T, err error, fields ...string) validation.Errors {
	t.Helper()
	var verrs validation.Errors
	require.ErrorAs(t, err, &verrs)
	keys := make([]string, 0, len(verrs))
	for k := range verrs {
		keys = append(keys, k)
	}
	require.ElementsMatch(t, fields, keys, "%v", verrs)
	return verrs
}

func TestOutOfRangeInputsAreRefused(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := setupService(t, d)
		plan := mustPlan(t, `{"goal":"g","steps":[{"name":"s","kind":"text","prompt":"n={{inputs.n}}"}]}`)
		for _, tc := range []struct {
			name   string
			inputs map[string]any
			field  string
		}{
			{"huge", map[string]any{"n": json.Number("1e400")}, "inputs.n"},
			{"huge negative", map[string]any{"n": json.Number("-1e400")}, "inputs.n"},
			{"long digit string", map[string]any{"n": json.Number("1" + strings.Repeat("0", 400))}, "inputs.n"},
			{"long negative digit string", map[string]any{"n": json.Number("-" + strings.Repeat("9", 5000) + ".5")}, "inputs.n"},
			{"not a JSON number", map[string]any{"n": json.Number("Infinity")}, "inputs.n"},
			{"NaN", map[string]any{"n": math.NaN()}, "inputs.n"},
			{"infinity", map[string]any{"n": math.Inf(1)}, "inputs.n"},
			{"float32 infinity", map[string]any{"n": float32(math.Inf(-1))}, "inputs.n"},
			{"nested in an object", map[string]any{"n": 1, "obj": map[string]any{"deep": []any{1, json.Number("1e999")}}}, "inputs.obj.deep[1]"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := e.countRuns(t)
				_, _, err := e.svc.Create(e.ctx, e.actor, runs.CreateInput{Plan: plan, Inputs: tc.inputs})
				verrs := requireFields(t, err, tc.field)
				require.NotContains(t, verrs[tc.field], strings.Repeat("0", 100), "a long number is shortened in the message")
				require.Equal(t, before, e.countRuns(t), "nothing is written")
			})
		}
	})
}

func TestAcceptedInputsReadBackExactly(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := setupService(t, d)
		plan := mustPlan(t, `{"goal":"g","steps":[{"name":"s","kind":"text",
			"prompt":"{{inputs.big}} {{inputs.tiny}} {{inputs.max}} {{inputs.neg}} {{inputs.text}} {{inputs.list}}"}]}`)
		inputs := map[string]any{
			"big":  json.Number("9007199254740993"), // not a float64: every digit is kept
			"tiny": json.Number("1e-400"),           // underflows to zero: fits
			"max":  json.Number("1.7976931348623157e308"),
			"neg":  -2.5,
			"text": "1e400", // a string is text, whatever it says
			"list": []any{json.Number("1"), "two", map[string]any{"three": json.Number("3.0")}},
		}
		run, _, err := e.svc.Create(e.ctx, e.actor, runs.CreateInput{Plan: plan, Inputs: inputs})
		require.NoError(t, err)

		back, err := run.Inputs()
		require.NoError(t, err)
		require.Equal(t, json.Number("9007199254740993"), back["big"])
		require.Equal(t, json.Number("1e-400"), back["tiny"])
		require.Equal(t, json.Number("-2.5"), back["neg"])
		require.Equal(t, "1e400", back["text"])

		claim, err := e.claimFirst(t, run.ID)
		require.NoError(t, err, "the run can execute")
		require.Equal(t, `9007199254740993 1e-400 1.7976931348623157e308 -2.5 1e400 [1,"two",{"three":3.0}]`, claim.Prompt)
	})
}

func TestParseInputs(t *testing.T) {
	t.Parallel()
	in, err := plan.ParseInputs([]byte(` {"n": 9007199254740993, "s": "x", "o": {"a": [1.50]}} `))
	require.NoError(t, err)
	require.Equal(t, map[string]any{"n": json.Number("9007199254740993"), "s": "x", "o": map[string]any{"a": []any{json.Number("1.50")}}}, in)

	in, err = plan.ParseInputs([]byte("  "))
	require.NoError(t, err)
	require.Empty(t, in)

	for _, tc := range []struct{ name, js, field string }{
		{"huge", `{"n":1e400}`, "inputs.n"},
		{"huge negative", `{"n":-1e400}`, "inputs.n"},
		{"nested", `{"n":{"m":[0,1e309]}}`, "inputs.n.m[1]"},
		{"long digits", `{"n":` + strings.Repeat("7", 400) + `}`, "inputs.n"},
		{"not an object", `[1]`, "inputs"},
		{"null", `null`, "inputs"},
		{"bad JSON", `{"n":`, "inputs"},
		{"trailing data", `{"n":1} {}`, "inputs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := plan.ParseInputs([]byte(tc.js))
			requireFields(t, err, tc.field)
		})
	}
}

func TestOutOfRangeNumbersInPlans(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, js, field string }{
		{"option", `{"goal":"g","steps":[{"name":"s","kind":"llm","provider":"simulated","model":"echo","prompt":"p","options":{"latency_ms":1e400}}]}`,
			"steps[0].options.latency_ms"},
		{"fail_rate", `{"goal":"g","steps":[{"name":"a","kind":"text","prompt":"p"},{"name":"s","kind":"llm","provider":"simulated","model":"echo","prompt":"p","options":{"fail_rate":-1e400}}]}`,
			"steps[1].options.fail_rate"},
		{"fail_status digits", `{"goal":"g","steps":[{"name":"s","kind":"llm","provider":"simulated","model":"echo","prompt":"p","options":{"fail_status":` + strings.Repeat("5", 320) + `}}]}`,
			"steps[0].options.fail_status"},
		{"max_attempts", `{"goal":"g","steps":[{"name":"s","kind":"text","prompt":"p","max_attempts":1e400}]}`,
			"steps[0].max_attempts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := plan.Parse([]byte(tc.js))
			verrs := requireFields(t, err, tc.field)
			require.Contains(t, verrs[tc.field], "out of range")
		})
	}

	// In range but absurd, an option is the provider's to refuse, by name.
	svc := &runs.Service{Providers: ai.NewRegistry(ai.NewSimulated(1))}
	p := mustPlan(t, `{"goal":"g","steps":[{"name":"s","kind":"llm","provider":"simulated","model":"echo","prompt":"p","options":{"latency_ms":1e300,"fail_status":1e300}}]}`)
	p.Normalize()
	errs := svc.CheckPlan(p)
	require.Contains(t, errs["steps[0].options"], "latency_ms")
	require.Contains(t, errs["steps[0].options"], "fail_status")
}
