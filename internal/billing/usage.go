package billing

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/db"
)

// The limits that a period's usage counts toward, as warnings and errors
// name them.
const (
	MetricRuns    = "runs"
	MetricSpend   = "spend"
	MetricMembers = "members"
)

// Thresholds are the percentages of a limit at which a team is warned.
var Thresholds = []int64{80, 90, 100}

// Period is a billing period, from Start up to End.
type Period struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// MonthOf returns the calendar month in UTC that holds t.
func MonthOf(t time.Time) Period {
	t = t.UTC()
	start := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	return Period{Start: start, End: start.AddDate(0, 1, 0)}
}

// Usage is what a team used in a period.
type Usage struct {
	Runs        int64 `db:"runs" json:"runs"`
	SpendMicros int64 `db:"spend_micros" json:"spend_micros"` // on the instance's keys
	// OwnKeySpendMicros is model spend on the team's own keys, which the
	// instance does not pay for and no limit counts.
	OwnKeySpendMicros int64 `db:"own_key_spend_micros" json:"own_key_spend_micros"`
	Members           int64 `db:"members" json:"members"`
}

// Account is a team's plan and current period, read together.
type Account struct {
	TeamID int64
	Plan   Plan
	Period Period
	// Subscription is the team's Stripe subscription, when it has one.
	Subscription *Subscription
	// Spent is the period's model spend on the instance's keys, as read
	// with the account (a snapshot: limits that must hold under
	// concurrency count in team_usage's row instead).
	Spent int64
}

// subscriptionColumns reads a subscriptions row as Subscription.
const subscriptionColumns = `s.team_id, s.stripe_customer_id, s.stripe_subscription_id, s.status, s.billing_interval,
	s.period_start, s.period_end, s.cancel_at_period_end, s.past_due_since, s.last_event_at`

// AccountOf returns team teamID's plan and its period at now: the
// subscription's period while it is current, else the calendar month.
func AccountOf(ctx context.Context, q db.Queryer, teamID int64, now time.Time) (Account, error) {
	var row struct {
		Plan
		SubTeamID sql.NullInt64 `db:"sub_team_id"`
		Subscription
		Spent int64 `db:"period_spent"`
	}
	// The period's spend comes in the same read: its row is the current
	// subscription's period's (as Subscription.Current decides), else the
	// month's.
	err := db.Get(ctx, q, &row, `SELECT `+prefixed("p.", planColumns)+`, s.team_id AS sub_team_id,
		COALESCE(s.stripe_customer_id, '') AS stripe_customer_id, COALESCE(s.stripe_subscription_id, '') AS stripe_subscription_id,
		COALESCE(s.status, '') AS status, COALESCE(s.billing_interval, '') AS billing_interval,
		s.period_start, s.period_end, COALESCE(s.cancel_at_period_end, FALSE) AS cancel_at_period_end, s.past_due_since, s.last_event_at,
		COALESCE(u.spend_micros, 0) AS period_spent
		FROM teams t JOIN plans p ON p.id = t.plan LEFT JOIN subscriptions s ON s.team_id = t.id
		LEFT JOIN team_usage u ON u.team_id = t.id AND u.period_start = CASE
			WHEN s.status IN ('active', 'trialing', 'past_due') AND s.period_start <= ? AND s.period_end > ? THEN s.period_start ELSE ? END
		WHERE t.id = ?`, now, now, MonthOf(now).Start, teamID)
	if err != nil {
		return Account{}, fmt.Errorf("billing: account of team %d: %w", teamID, err)
	}
	a := Account{TeamID: teamID, Plan: row.Plan, Period: MonthOf(now), Spent: row.Spent}
	if row.SubTeamID.Valid {
		sub := row.Subscription
		sub.TeamID = teamID
		a.Subscription = &sub
		if sub.Current(now) {
			a.Period = Period{Start: sub.PeriodStart.Time.UTC(), End: sub.PeriodEnd.Time.UTC()}
		}
		// A payment failed more than the grace period ago and nothing was
		// paid since: the free plan's limits hold until an invoice is paid.
		if sub.PastDueSince.Valid && now.Sub(sub.PastDueSince.Time) > PastDueGrace && a.Plan.ID != FreePlan {
			free, err := GetPlan(ctx, q, FreePlan)
			if err == nil {
				a.Plan = free
			} else if !errors.Is(err, db.ErrNotFound) {
				return Account{}, err
			}
		}
	}
	return a, nil
}

// UsageOf returns what the account's team used in its current period.
func UsageOf(ctx context.Context, q db.Queryer, a Account) (Usage, error) {
	var u Usage
	err := db.Get(ctx, q, &u, `SELECT runs, spend_micros, own_key_spend_micros, 0 AS members FROM team_usage WHERE team_id = ? AND period_start = ?`,
		a.TeamID, a.Period.Start)
	if err != nil && !errors.Is(err, db.ErrNotFound) {
		return Usage{}, fmt.Errorf("billing: usage of team %d: %w", a.TeamID, err)
	}
	if u.Members, err = countMembers(ctx, q, a.TeamID); err != nil {
		return Usage{}, err
	}
	return u, nil
}

// countMembers counts a team's members and the invitations still open.
func countMembers(ctx context.Context, q db.Queryer, teamID int64) (int64, error) {
	var n int64
	err := db.Get(ctx, q, &n, `SELECT (SELECT COUNT(*) FROM memberships WHERE team_id = ?) +
		(SELECT COUNT(*) FROM invites WHERE team_id = ? AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > ?)`,
		teamID, teamID, db.Now())
	if err != nil {
		return 0, fmt.Errorf("billing: count members of team %d: %w", teamID, err)
	}
	return n, nil
}

// LimitError is a request refused because the team's plan does not allow
// it: HTTP 402 with the code plan_limit.
type LimitError struct {
	Metric string // MetricRuns, MetricSpend or MetricMembers
	Plan   Plan
	Used   int64
	Quota  int64
}

func (e *LimitError) Error() string {
	switch e.Metric {
	case MetricRuns:
		return fmt.Sprintf("The %s plan includes %s a month and this team has started %d this period. Upgrade the plan to start more runs.",
			e.Plan.Name, plural(e.Quota, "run", "runs"), e.Used)
	case MetricSpend:
		return fmt.Sprintf("This team has spent %s of the %s plan's %s of model spend this period. Upgrade the plan or raise the limit to start more runs.",
			FormatSpend(e.Used), e.Plan.Name, FormatSpend(e.Quota))
	}
	return fmt.Sprintf("The %s plan allows %s, invitations included, and this team has %d. Upgrade the plan to add more.",
		e.Plan.Name, plural(e.Quota, "member", "members"), e.Used)
}

// plural writes n and the noun, in the singular for one.
func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return FormatLimit(n) + " " + many
}

// CountRun counts a new run of team teamID toward its plan, inside the
// transaction that creates the run: a run past the plan's runs limit, or
// with the spend limit reached, is a *LimitError, and the caller's
// transaction writes nothing. Concurrent runs of a team count one after
// another (the period's usage row is locked until commit).
func CountRun(ctx context.Context, q db.Queryer, teamID int64, now time.Time) error {
	a, err := AccountOf(ctx, q, teamID, now)
	if err != nil {
		return err
	}
	var u Usage
	err = db.Get(ctx, q, &u, `INSERT INTO team_usage (team_id, period_start, runs) VALUES (?, ?, 1)
		ON CONFLICT (team_id, period_start) DO UPDATE SET runs = team_usage.runs + 1
		RETURNING runs, spend_micros, own_key_spend_micros, 0 AS members`, teamID, a.Period.Start)
	if err != nil {
		return fmt.Errorf("billing: count a run of team %d: %w", teamID, err)
	}
	// A plan without spend (0) still starts runs: their steps on the
	// instance's keys wait, or fail without instance keys; own keys run.
	if quota := a.Plan.SpendMicros; quota > 0 && u.SpendMicros >= quota {
		return &LimitError{Metric: MetricSpend, Plan: a.Plan, Used: u.SpendMicros, Quota: quota}
	}
	if quota := a.Plan.Runs; quota != Unlimited && u.Runs > quota {
		return &LimitError{Metric: MetricRuns, Plan: a.Plan, Used: u.Runs - 1, Quota: quota}
	}
	return warnOnCrossing(ctx, q, a, MetricRuns, u.Runs-1, u.Runs, a.Plan.Runs, now)
}

// AddSpend counts the model spend of a step of team teamID, inside the
// transaction that records the step, so that it is counted exactly once:
// on the instance's keys unless ownKey. Crossing a warning threshold of the
// spend limit records the warning in the same transaction.
func AddSpend(ctx context.Context, q db.Queryer, teamID int64, now time.Time, micros int64, ownKey bool) error {
	if micros <= 0 {
		return nil
	}
	a, err := AccountOf(ctx, q, teamID, now)
	if err != nil {
		return err
	}
	column := "spend_micros"
	if ownKey {
		column = "own_key_spend_micros"
	}
	var u Usage
	err = db.Get(ctx, q, &u, `INSERT INTO team_usage (team_id, period_start, `+column+`) VALUES (?, ?, ?)
		ON CONFLICT (team_id, period_start) DO UPDATE SET `+column+` = team_usage.`+column+` + excluded.`+column+`
		RETURNING runs, spend_micros, own_key_spend_micros, 0 AS members`, teamID, a.Period.Start, micros)
	if err != nil {
		return fmt.Errorf("billing: count the spend of team %d: %w", teamID, err)
	}
	if ownKey {
		return nil
	}
	return warnOnCrossing(ctx, q, a, MetricSpend, u.SpendMicros-micros, u.SpendMicros, a.Plan.SpendMicros, now)
}

// CheckMembers refuses, inside q, one more member or invitation of team
// teamID past its plan's members limit; one more that crosses a warning
// threshold of it records the warning.
func CheckMembers(ctx context.Context, q db.Queryer, teamID int64, invitationAccepted bool) error {
	// Lock the team's row (a write changing nothing, on both databases), so
	// that concurrent invitations count one after another.
	if _, err := db.Exec(ctx, q, `UPDATE teams SET plan = plan WHERE id = ?`, teamID); err != nil {
		return fmt.Errorf("billing: lock team %d: %w", teamID, err)
	}
	now := db.Now()
	a, err := AccountOf(ctx, q, teamID, now)
	if err != nil {
		return err
	}
	p := a.Plan
	if p.Members == Unlimited {
		return nil
	}
	n, err := countMembers(ctx, q, teamID)
	if err != nil {
		return err
	}
	if invitationAccepted {
		// The invitation becomes the member: the seat was taken (and
		// warned of) when it was sent.
		if n-1 >= int64(p.Members) {
			return &LimitError{Metric: MetricMembers, Plan: p, Used: n - 1, Quota: int64(p.Members)}
		}
		return nil
	}
	if n >= int64(p.Members) {
		return &LimitError{Metric: MetricMembers, Plan: p, Used: n, Quota: int64(p.Members)}
	}
	return warnOnCrossing(ctx, q, a, MetricMembers, n, n+1, int64(p.Members), now)
}

// Allowance is what a team's plan lets its next LLM step do.
type Allowance struct {
	Plan         Plan
	InstanceKeys bool  // the plan may use the instance's provider keys
	SpendReached bool  // model spend on the instance's keys is at the limit
	Spent        int64 // model spend on the instance's keys this period
}

// AllowanceOf returns what team teamID's plan lets an LLM step do now, in
// one read (it comes before every LLM call on the instance's key).
func AllowanceOf(ctx context.Context, q db.Queryer, teamID int64) (Allowance, error) {
	now := db.Now()
	a, err := AccountOf(ctx, q, teamID, now)
	if err != nil {
		return Allowance{}, err
	}
	return Allowance{Plan: a.Plan, InstanceKeys: a.Plan.InstanceKeys, Spent: a.Spent,
		SpendReached: a.Plan.SpendMicros != Unlimited && a.Spent >= a.Plan.SpendMicros}, nil
}

// warnOnCrossing records a warning for each threshold of quota that usage
// crossed going from before to after: once per team, metric, limit,
// threshold and period, however many transactions cross it at once (the
// primary key keeps the first). Of thresholds crossed together, only the
// highest is audited and emailed (DeliverWarnings); the others are kept as
// given, so that they are not given later.
func warnOnCrossing(ctx context.Context, q db.Queryer, a Account, metric string, before, after, quota int64, now time.Time) error {
	if quota == Unlimited || quota <= 0 || after <= before {
		return nil
	}
	var crossed []int64
	for _, th := range Thresholds {
		if before*100 < th*quota && after*100 >= th*quota {
			crossed = append(crossed, th)
		}
	}
	for i, th := range crossed {
		highest := i == len(crossed)-1
		var emailed *time.Time
		if !highest {
			emailed = &now // passed over on the way up: not worth an email of its own
		}
		res, err := db.Exec(ctx, q, `INSERT INTO usage_warnings (team_id, period_start, metric, threshold, used, quota, created_at, emailed_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, a.TeamID, a.Period.Start, metric, th, after, quota, now, emailed)
		if err != nil {
			return fmt.Errorf("billing: record the %d%% %s warning of team %d: %w", th, metric, a.TeamID, err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 || !highest {
			continue // another transaction warned first, or a higher one is said
		}
		teamID := a.TeamID
		err = audit.Record(ctx, q, audit.Entry{TeamID: &teamID, Actor: "nofx", Action: "billing.warning",
			Target: metric, Summary: Warning{Metric: metric, Threshold: th, Used: after, Quota: quota, PlanName: a.Plan.Name}.Message()})
		if err != nil {
			return err
		}
	}
	return nil
}
