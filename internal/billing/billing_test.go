package billing_test

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/billing"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/mail"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/validation"
)

// newTeam makes a team with an owner and an admin, on plan planID.
func newTeam(t *testing.T, d *db.DB, name, planID string) teams.Team {
	t.Helper()
	ctx := context.Background()
	team, err := teams.Create(ctx, d, name, teams.Slugify(name), false)
	require.NoError(t, err)
	for _, m := range []struct {
		email string
		role  teams.Role
	}{{name + "-owner@example.com", teams.RoleOwner}, {name + "-admin@example.com", teams.RoleAdmin}} {
		var id int64
		require.NoError(t, db.Get(ctx, d, &id, `INSERT INTO users (email, password_hash, created_at, updated_at) VALUES (?, 'x', ?, ?) RETURNING id`,
			m.email, db.Now(), db.Now()))
		require.NoError(t, teams.AddMember(ctx, d, team.ID, id, m.role))
	}
	_, err = db.Exec(ctx, d, `UPDATE teams SET plan = ? WHERE id = ?`, planID, team.ID)
	require.NoError(t, err)
	return team
}

// setLimits changes plan id's limits as the CLI would.
func setLimits(t *testing.T, d *db.DB, id string, c billing.PlanChange) {
	t.Helper()
	_, err := (&billing.Service{DB: d}).UpdatePlan(context.Background(), audit.Entry{Actor: "test"}, id, c)
	require.NoError(t, err)
}

// countRun counts one run in its own transaction, as run creation does.
func countRun(d *db.DB, teamID int64) error {
	return db.WithTx(context.Background(), d, func(tx *sqlx.Tx) error {
		return billing.CountRun(context.Background(), tx, teamID, db.Now())
	})
}

func ptr[T any](v T) *T { return &v }

func TestSeededPlans(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		plans, err := billing.ListPlans(context.Background(), d)
		require.NoError(t, err)
		var ids []string
		for _, p := range plans {
			ids = append(ids, p.ID)
		}
		require.Equal(t, []string{"free", "starter", "pro", "enterprise"}, ids)
		require.Equal(t, int64(200), plans[0].Runs)
		require.Equal(t, int64(2900), plans[1].MonthlyCents)
		require.True(t, plans[3].ByContract())
		require.Equal(t, int64(billing.Unlimited), plans[3].Runs)
	})
}

func TestRunsLimitHoldsUnderConcurrency(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		team := newTeam(t, d, "acme", "free")
		setLimits(t, d, "free", billing.PlanChange{Runs: ptr(int64(10))})

		var wg sync.WaitGroup
		var mu sync.Mutex
		ok, refused := 0, 0
		for range 25 {
			wg.Go(func() {
				err := countRun(d, team.ID)
				mu.Lock()
				defer mu.Unlock()
				var limit *billing.LimitError
				switch {
				case err == nil:
					ok++
				case errors.As(err, &limit):
					refused++
					require.Equal(t, billing.MetricRuns, limit.Metric)
					require.Contains(t, limit.Error(), "The Free plan includes 10 runs a month")
				default:
					t.Errorf("count a run: %v", err)
				}
			})
		}
		wg.Wait()
		require.Equal(t, 10, ok)
		require.Equal(t, 15, refused)

		a, err := billing.AccountOf(context.Background(), d, team.ID, db.Now())
		require.NoError(t, err)
		u, err := billing.UsageOf(context.Background(), d, a)
		require.NoError(t, err)
		require.Equal(t, int64(10), u.Runs, "refused runs are not counted")

		// One warning per threshold, however many runs crossed at once.
		var warnings []struct {
			Threshold int64 `db:"threshold"`
			Used      int64 `db:"used"`
		}
		require.NoError(t, db.Select(context.Background(), d, &warnings,
			`SELECT threshold, used FROM usage_warnings WHERE team_id = ? AND metric = 'runs' ORDER BY threshold`, team.ID))
		require.Equal(t, []struct {
			Threshold int64 `db:"threshold"`
			Used      int64 `db:"used"`
		}{{80, 8}, {90, 9}, {100, 10}}, warnings)
		var audited int
		require.NoError(t, db.Get(context.Background(), d, &audited, `SELECT COUNT(*) FROM audit_log WHERE team_id = ? AND action = 'billing.warning'`, team.ID))
		require.Equal(t, 3, audited)
	})
}

func TestSpendIsCountedOnceAndWarnsOncePerThreshold(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		team := newTeam(t, d, "acme", "starter")
		setLimits(t, d, "starter", billing.PlanChange{SpendMicros: ptr(int64(1_000_000))}) // $1

		// 40 steps of $0.03 each, recorded at once, and some on the team's own key.
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Go(func() {
				err := db.WithTx(ctx, d, func(tx *sqlx.Tx) error {
					return billing.AddSpend(ctx, tx, team.ID, db.Now(), 30_000, i%4 == 0)
				})
				if err != nil {
					t.Errorf("add spend: %v", err)
				}
			})
		}
		wg.Wait()
		al, err := billing.AllowanceOf(ctx, d, team.ID)
		require.NoError(t, err)
		require.Equal(t, int64(30*30_000), al.Spent, "30 steps on the instance's keys")
		require.False(t, al.SpendReached)
		a, err := billing.AccountOf(ctx, d, team.ID, db.Now())
		require.NoError(t, err)
		u, err := billing.UsageOf(ctx, d, a)
		require.NoError(t, err)
		require.Equal(t, int64(10*30_000), u.OwnKeySpendMicros)

		var thresholds []int64
		require.NoError(t, db.Select(ctx, d, &thresholds, `SELECT threshold FROM usage_warnings WHERE team_id = ? AND metric = 'spend' ORDER BY threshold`, team.ID))
		require.Equal(t, []int64{80, 90}, thresholds)

		require.NoError(t, db.WithTx(ctx, d, func(tx *sqlx.Tx) error {
			return billing.AddSpend(ctx, tx, team.ID, db.Now(), 200_000, false)
		}))
		al, err = billing.AllowanceOf(ctx, d, team.ID)
		require.NoError(t, err)
		require.True(t, al.SpendReached)

		// With the spend limit reached, no run starts.
		var limit *billing.LimitError
		require.ErrorAs(t, countRun(d, team.ID), &limit)
		require.Equal(t, billing.MetricSpend, limit.Metric)
		require.Contains(t, limit.Error(), "$1.10 of the Starter plan's $1.00")

		warnings, err := billing.CurrentWarnings(ctx, d, team.ID)
		require.NoError(t, err)
		require.Len(t, warnings, 1, "the banner shows the highest warning of each limit")
		require.Equal(t, int64(100), warnings[0].Threshold)
		require.Contains(t, warnings[0].Message(), "$1.10 of $1.00 of model spend this period: the Starter plan's limit is reached")

		// The warnings' emails go to the owner and the admin, once.
		outbox := &mail.Outbox{DB: d}
		sent, err := billing.DeliverWarnings(ctx, d, outbox, "http://nofx.test")
		require.NoError(t, err)
		require.Equal(t, 3, sent)
		sent, err = billing.DeliverWarnings(ctx, d, outbox, "http://nofx.test")
		require.NoError(t, err)
		require.Zero(t, sent)
		var mails []struct {
			To      string `db:"to_address"`
			Subject string `db:"subject"`
		}
		require.NoError(t, db.Select(ctx, d, &mails, `SELECT to_address, subject FROM outbox ORDER BY id`))
		require.Len(t, mails, 6)
		got := map[string]int{}
		for _, m := range mails {
			got[m.To+" "+m.Subject]++
		}
		for _, to := range []string{"acme-admin@example.com", "acme-owner@example.com"} {
			for _, th := range []string{"80", "90", "100"} {
				require.Equal(t, 1, got[to+" [NOFX] acme: "+th+"% of the model spend limit used"], "%s, %s%%: %v", to, th, got)
			}
		}
	})
}

func TestPeriodIsTheSubscriptionsWhileItIsCurrent(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		team := newTeam(t, d, "acme", "pro")
		now := time.Date(2026, 12, 15, 10, 0, 0, 0, time.UTC)
		a, err := billing.AccountOf(ctx, d, team.ID, now)
		require.NoError(t, err)
		require.Equal(t, billing.Period{Start: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}, a.Period)

		start, end := time.Date(2026, 12, 10, 8, 30, 0, 0, time.UTC), time.Date(2027, 1, 10, 8, 30, 0, 0, time.UTC)
		_, err = db.Exec(ctx, d, `INSERT INTO subscriptions (team_id, status, period_start, period_end, updated_at) VALUES (?, 'active', ?, ?, ?)`,
			team.ID, start, end, now)
		require.NoError(t, err)
		a, err = billing.AccountOf(ctx, d, team.ID, now)
		require.NoError(t, err)
		require.Equal(t, billing.Period{Start: start, End: end}, a.Period)

		// A period that ended falls back to the calendar month.
		a, err = billing.AccountOf(ctx, d, team.ID, end.Add(time.Hour))
		require.NoError(t, err)
		require.Equal(t, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), a.Period.Start)
		// The spend an LLM step is checked against is the current period's.
		live := newTeam(t, d, "live", "pro")
		_, err = db.Exec(ctx, d, `INSERT INTO subscriptions (team_id, status, period_start, period_end, updated_at) VALUES (?, 'active', ?, ?, ?)`,
			live.ID, db.Now().Add(-time.Hour), db.Now().Add(time.Hour), db.Now())
		require.NoError(t, err)
		require.NoError(t, db.WithTx(ctx, d, func(tx *sqlx.Tx) error {
			return billing.AddSpend(ctx, tx, live.ID, db.Now(), 1234, false)
		}))
		al, err := billing.AllowanceOf(ctx, d, live.ID)
		require.NoError(t, err)
		require.Equal(t, int64(1234), al.Spent)

		_, err = db.Exec(ctx, d, `UPDATE subscriptions SET status = 'canceled'`)
		require.NoError(t, err)
		a, err = billing.AccountOf(ctx, d, team.ID, now)
		require.NoError(t, err)
		require.Equal(t, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), a.Period.Start)
	})
}

func TestMembersLimitCountsOpenInvitations(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		team := newTeam(t, d, "acme", "free")
		setLimits(t, d, "free", billing.PlanChange{Members: ptr(3)})
		require.NoError(t, billing.CheckMembers(ctx, d, team.ID, false), "two members of three")
		_, err := db.Exec(ctx, d, `INSERT INTO invites (team_id, email, role, token_hash, created_at, expires_at) VALUES (?, 'c@example.com', 'member', 'h', ?, ?)`,
			team.ID, db.Now(), db.Now().Add(time.Hour))
		require.NoError(t, err)
		var limit *billing.LimitError
		require.ErrorAs(t, billing.CheckMembers(ctx, d, team.ID, false), &limit, "the invitation takes the third seat")
		require.Equal(t, "The Free plan allows 3 members, invitations included, and this team has 3. Upgrade the plan to add more.", limit.Error())
		require.NoError(t, billing.CheckMembers(ctx, d, team.ID, true), "accepting the invitation fills its own seat")
		var thresholds []int64
		require.NoError(t, db.Select(ctx, d, &thresholds, `SELECT threshold FROM usage_warnings WHERE team_id = ? AND metric = 'members' ORDER BY threshold`, team.ID))
		require.Equal(t, []int64{80, 90, 100}, thresholds, "the first check (2 → 3 of 3) crossed three thresholds at once")
		var audited int
		require.NoError(t, db.Get(ctx, d, &audited, `SELECT COUNT(*) FROM audit_log WHERE team_id = ? AND action = 'billing.warning'`, team.ID))
		require.Equal(t, 1, audited, "only the highest is told")
		sent, err := billing.DeliverWarnings(ctx, d, &mail.Outbox{DB: d}, "http://nofx.test")
		require.NoError(t, err)
		require.Equal(t, 1, sent, "one warning mailed (to the owner and the admin)")
	})
}

func TestPlanChangesAreValidatedAndAudited(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		svc := &billing.Service{DB: d}
		_, err := svc.UpdatePlan(ctx, audit.Entry{Actor: "ops@example.com"}, "free", billing.PlanChange{
			Runs: ptr(int64(-2)), Concurrency: ptr(0), StripePriceMonthly: ptr("prod_123"), Name: ptr(""),
		})
		var errs validation.Errors
		require.ErrorAs(t, err, &errs)
		require.Equal(t, validation.Errors{
			"runs":                 "Use a number from 0 to 1000000000, or -1 for unlimited.",
			"concurrency":          "Use a number from 1 to 100000, or -1 for unlimited.",
			"stripe_price_monthly": "Use a Stripe price id such as price_1Nabc, or leave it empty.",
			"name":                 "Give the plan a name.",
		}, errs)
		p, err := billing.GetPlan(ctx, d, "free")
		require.NoError(t, err)
		require.Equal(t, int64(200), p.Runs, "nothing changed")

		_, err = svc.UpdatePlan(ctx, audit.Entry{Actor: "ops@example.com"}, "nope", billing.PlanChange{})
		require.ErrorIs(t, err, billing.ErrUnknownPlan)

		p, err = svc.UpdatePlan(ctx, audit.Entry{Actor: "ops@example.com"}, "free", billing.PlanChange{
			Runs: ptr(int64(-1)), SpendMicros: ptr(int64(2_500_000)), StripePriceYearly: ptr("price_Y1"), InstanceKeys: ptr(false),
		})
		require.NoError(t, err)
		require.Equal(t, int64(billing.Unlimited), p.Runs)
		require.Equal(t, "price_Y1", p.StripePriceYearly)

		team := newTeam(t, d, "acme", "free")
		require.NoError(t, svc.SetTeamPlan(ctx, audit.Entry{Actor: "ops@example.com"}, team.ID, "pro"))
		err = svc.SetTeamPlan(ctx, audit.Entry{Actor: "ops@example.com"}, team.ID, "gold")
		require.ErrorAs(t, err, &errs)
		owner := access.Actor{TeamID: team.ID, UserID: 1, Role: teams.RoleAdmin}
		require.ErrorIs(t, svc.ChangePlan(ctx, owner, "starter"), access.ErrForbidden, "only the owner changes plans")

		var entries []struct {
			Action  string        `db:"action"`
			Actor   string        `db:"actor"`
			Summary string        `db:"summary"`
			TeamID  sql.NullInt64 `db:"team_id"`
		}
		require.NoError(t, db.Select(ctx, d, &entries, `SELECT action, actor, summary, team_id FROM audit_log ORDER BY id`))
		require.Len(t, entries, 2)
		require.Equal(t, "plan.update", entries[0].Action)
		require.Equal(t, "Free: $0/month, $0/year; runs unlimited, spend $2.50, concurrency 4, members 5, API 120/min, instance keys false", entries[0].Summary)
		require.Equal(t, "billing.plan_changed", entries[1].Action)
		require.Equal(t, "free → pro, set by hand", entries[1].Summary)
		require.Equal(t, team.ID, entries[1].TeamID.Int64)
	})
}

// Processes sharing the database send each warning once between them.
func TestWarningsAreMailedOnceByConcurrentSenders(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		team := newTeam(t, d, "acme", "free")
		setLimits(t, d, "free", billing.PlanChange{Runs: ptr(int64(10))})
		for range 10 {
			require.NoError(t, countRun(d, team.ID))
		}
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				if _, err := billing.DeliverWarnings(ctx, d, &mail.Outbox{DB: d}, "http://nofx.test"); err != nil {
					t.Errorf("deliver: %v", err)
				}
			})
		}
		wg.Wait()
		var mails int
		require.NoError(t, db.Get(ctx, d, &mails, `SELECT COUNT(*) FROM outbox`))
		require.Equal(t, 6, mails, "three warnings, to the owner and the admin, once each")
	})
}

// A plan without model spend (0) still starts runs; local billing never
// hands out a plan by contract.
func TestZeroSpendStartsRunsAndContractPlansAreNotSelfServe(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		team := newTeam(t, d, "acme", "free")
		setLimits(t, d, "free", billing.PlanChange{SpendMicros: ptr(int64(0)), InstanceKeys: ptr(false)})
		require.NoError(t, countRun(d, team.ID))
		al, err := billing.AllowanceOf(ctx, d, team.ID)
		require.NoError(t, err)
		require.True(t, al.SpendReached, "steps on the instance's keys would wait")

		var owner int64
		require.NoError(t, db.Get(ctx, d, &owner, `SELECT user_id FROM memberships WHERE team_id = ? AND role = 'owner'`, team.ID))
		actor := access.Actor{TeamID: team.ID, UserID: owner, Role: teams.RoleOwner}
		var errs validation.Errors
		require.ErrorAs(t, (&billing.Service{DB: d}).ChangePlan(ctx, actor, "enterprise"), &errs)
		require.Equal(t, "The Enterprise plan is by contract: ask the operator of this instance.", errs["plan"])
		p, err := billing.TeamPlan(ctx, d, team.ID)
		require.NoError(t, err)
		require.Equal(t, "free", p.ID)
		require.NoError(t, (&billing.Service{DB: d}).ChangePlan(ctx, actor, "pro"))
	})
}
