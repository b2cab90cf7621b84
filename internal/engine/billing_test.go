package engine_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/ai"
	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/billing"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/pricing"
	"github.com/nofxhq/nofx/internal/runs"
)

// setPlan changes plan id as a site admin would, waking the steps it frees.
func setPlan(t *testing.T, e *env, id string, c billing.PlanChange) {
	t.Helper()
	_, err := (&billing.Service{DB: e.db, Waker: e.svc}).UpdatePlan(context.Background(), audit.Entry{Actor: "test"}, id, c)
	require.NoError(t, err)
}

func ptr[T any](v T) *T { return &v }

// expensive prices the simulated echo model at $10,000 per million tokens
// in and out: a four-word prompt costs 8 cents.
func expensive(t *testing.T, d *db.DB) {
	t.Helper()
	require.NoError(t, pricing.Set(context.Background(), d, "simulated", "echo", 10_000_000_000, 10_000_000_000, 0))
}

const chainOfThree = `{"goal":"spend","steps":[
	{"name":"a","kind":"llm","provider":"simulated","model":"echo","prompt":"one two three four"},
	{"name":"b","kind":"llm","provider":"simulated","model":"echo","prompt":"one two three four","needs":["a"]},
	{"name":"c","kind":"llm","provider":"simulated","model":"echo","prompt":"one two three four","needs":["b"]}]}`

// A step that would start past the team's spend limit makes no call: it
// waits, without using an attempt, with the reason on the step, and no new
// run starts; raising the limit starts it again at once, and each step's
// cost is counted once.
func TestSpendLimitHoldsStepsUntilThePlanChanges(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		expensive(t, d)
		e := setup(t, d, options{})
		setPlan(t, e, "free", billing.PlanChange{SpendMicros: ptr(int64(100_000))}) // 10 cents

		run := e.create(chainOfThree, nil)
		run, steps := e.waitStatus(run.ID, runs.RunWaiting)
		require.Equal(t, runs.StepSucceeded, stepNamed(t, steps, "b").Status, "a and b started under the limit")
		c := stepNamed(t, steps, "c")
		require.Equal(t, runs.StepWaiting, c.Status)
		require.Equal(t, runs.WaitingOnSpend, c.WaitingOn)
		require.Contains(t, c.Error, "Spend limit reached: the team has spent $0.16 of the Free plan's $0.10 this period")
		require.Zero(t, c.Attempt, "waiting used no attempt")
		require.Zero(t, c.CostMicros)
		require.Contains(t, e.eventKinds(run.ID), "c:step.spend_limited")

		_, _, err := e.svc.Create(context.Background(), e.actor, runs.CreateInput{Plan: mustPlan(t, chainOfThree)})
		var limit *billing.LimitError
		require.ErrorAs(t, err, &limit, "no run starts with the spend limit reached")
		require.Equal(t, billing.MetricSpend, limit.Metric)

		setPlan(t, e, "free", billing.PlanChange{SpendMicros: ptr(int64(1_000_000))})
		run, steps = e.waitStatus(run.ID, runs.RunSucceeded)
		c = stepNamed(t, steps, "c")
		require.Equal(t, 1, c.Attempt)
		require.Empty(t, c.WaitingOn)

		al, err := billing.AllowanceOf(context.Background(), d, e.actor.TeamID)
		require.NoError(t, err)
		require.Equal(t, run.CostMicros, al.Spent, "the team's spend is its steps' costs, each counted once")
		require.Equal(t, int64(240_000), al.Spent)
	})
}

// A new period frees steps held by the last one's spend, without anyone
// changing the plan: the engine's sweep finds them.
func TestNewPeriodFreesStepsHeldBySpend(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		expensive(t, d)
		e := setup(t, d, options{})
		setPlan(t, e, "free", billing.PlanChange{SpendMicros: ptr(int64(100_000))})
		run := e.create(chainOfThree, nil)
		e.waitStatus(run.ID, runs.RunWaiting)

		// The period's usage becomes last month's, as on the first of the month.
		_, err := db.Exec(context.Background(), d, `UPDATE team_usage SET period_start = ? WHERE team_id = ?`,
			billing.MonthOf(db.Now()).Start.AddDate(0, -1, 0), e.actor.TeamID)
		require.NoError(t, err)
		e.waitStatus(run.ID, runs.RunSucceeded)
	})
}

// Spend on the team's own key is counted apart and no limit holds it back;
// a plan without the instance's keys fails a step that would use them,
// saying why.
func TestOwnKeySpendAndPlansWithoutInstanceKeys(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		expensive(t, d)
		keys := teamKeys{}
		e := circuitEnv(t, d, ai.NewCircuits(ai.CircuitConfig{}), keys, ai.NewSimulated(1), keyed{ai.NewSimulated(1)})
		keys[e.actor.TeamID] = "sk-team"
		setPlan(t, e, "free", billing.PlanChange{SpendMicros: ptr(int64(100_000)), InstanceKeys: ptr(false)})

		run := e.create(chainOfThree, nil)
		run, steps := e.waitStatus(run.ID, runs.RunSucceeded)
		for _, s := range steps {
			require.True(t, s.OwnKey, "step %s ran on the team's key", s.Name)
		}
		a, err := billing.AccountOf(context.Background(), d, e.actor.TeamID, db.Now())
		require.NoError(t, err)
		u, err := billing.UsageOf(context.Background(), d, a)
		require.NoError(t, err)
		require.Equal(t, run.CostMicros, u.OwnKeySpendMicros)
		require.Zero(t, u.SpendMicros)

		// Another team, without a key of its own, on a provider that needs one.
		other := e.as(t)
		run = other.create(`{"goal":"no key","steps":[{"name":"s","kind":"llm","provider":"keyed","model":"echo","prompt":"x"}]}`, nil)
		run, steps = other.waitStatus(run.ID, runs.RunFailed)
		require.Equal(t, "the team's Free plan does not include the instance's keyed key: add the team's own key on the team's Providers page",
			steps[0].Error)
		require.Equal(t, 1, steps[0].Attempt, "not retried: another attempt cannot help")
	})
}

// keyed is a provider that needs a key: it answers with the prompt.
type keyed struct{ ai.Provider }

func (keyed) Name() string { return "keyed" }

// The team's plan sets how many of its steps run at once, across the
// engine's workers, when the instance sets no ceiling of its own; another
// team, on a bigger plan, is not held back by the first one's backlog.
func TestPlanConcurrencyLimitsTheTeam(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		e := setup(t, d, options{workers: 8})
		setPlan(t, e, "free", billing.PlanChange{Concurrency: ptr(2)})
		most := watchRunning(t, d, e.actor.TeamID)
		var ids []int64
		for range 8 {
			ids = append(ids, e.create(`{"goal":"slow","steps":[{"name":"s","kind":"llm","provider":"simulated","model":"echo",
				"prompt":"x","options":{"latency_ms":300}}]}`, nil).ID)
		}
		other := e.as(t)
		_, err := db.Exec(context.Background(), d, `UPDATE teams SET plan = 'pro' WHERE id = ?`, other.actor.TeamID)
		require.NoError(t, err)
		quick := other.create(`{"goal":"quick","steps":[{"name":"s","kind":"llm","provider":"simulated","model":"echo","prompt":"hi"}]}`, nil)
		other.waitStatus(quick.ID, runs.RunSucceeded)
		var waiting int
		require.NoError(t, db.Get(context.Background(), d, &waiting, `SELECT COUNT(*) FROM runs WHERE team_id = ? AND status IN ('queued', 'running')`, e.actor.TeamID))
		require.Positive(t, waiting, "the other team finished while the first still had runs waiting for a slot")
		for _, id := range ids {
			e.waitStatus(id, runs.RunSucceeded)
		}
		require.LessOrEqual(t, most(), 2)
		require.Equal(t, 2, most(), "the team used its plan's limit")
	})
}

// A team held at its spend limit all month does not keep another team's
// held steps from starting once that team's limit lifts.
func TestWakingIsByTeam(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		expensive(t, d)
		a := setup(t, d, options{})
		b := a.as(t)
		// No spend at all on either plan: every LLM step waits at once.
		setPlan(t, a, "free", billing.PlanChange{SpendMicros: ptr(int64(0))})
		setPlan(t, a, "starter", billing.PlanChange{SpendMicros: ptr(int64(0))})
		_, err := db.Exec(context.Background(), d, `UPDATE teams SET plan = 'starter' WHERE id = ?`, b.actor.TeamID)
		require.NoError(t, err)
		var held []int64
		for range 3 {
			run := a.create(chainOfThree, nil)
			a.waitStatus(run.ID, runs.RunWaiting)
			held = append(held, run.ID)
		}
		runB := b.create(chainOfThree, nil)
		b.waitStatus(runB.ID, runs.RunWaiting)

		setPlan(t, a, "starter", billing.PlanChange{SpendMicros: ptr(int64(10_000_000))})
		b.waitStatus(runB.ID, runs.RunSucceeded)
		for _, id := range held {
			run, steps := a.waitStatus(id, runs.RunWaiting)
			require.Equal(t, runs.RunWaiting, run.Status, "team A is still at its limit")
			require.Equal(t, runs.StepWaiting, stepNamed(t, steps, "a").Status)
		}
	})
}
