package billing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/validation"
)

// Waker starts the steps that wait on a spend limit which no longer holds
// them back (a plan changed or was raised).
type Waker interface {
	WakeSpendLimited(ctx context.Context) (int, error)
}

// Service reads and changes plans, the plan each team is on, and what teams
// used of them.
type Service struct {
	DB    *db.DB
	Waker Waker // may be nil: the engine's periodic sweep wakes them too
}

// ErrUnknownPlan is a plan id that no plan has.
var ErrUnknownPlan = errors.New("billing: there is no such plan")

// Plans returns every plan, cheapest first.
func (s *Service) Plans(ctx context.Context) ([]Plan, error) {
	return ListPlans(ctx, s.DB.Reader())
}

// UpdatePlan changes plan id as c says, audited as by (a site admin or the
// CLI), and starts the steps that the change lets run.
func (s *Service) UpdatePlan(ctx context.Context, by audit.Entry, id string, c PlanChange) (Plan, error) {
	var out Plan
	err := db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		p, err := GetPlan(ctx, tx, id)
		if errors.Is(err, db.ErrNotFound) {
			return ErrUnknownPlan
		}
		if err != nil {
			return err
		}
		if out, err = c.apply(p); err != nil {
			return err
		}
		if err := updatePlan(ctx, tx, out); err != nil {
			return err
		}
		by.Action, by.Target, by.Summary = "plan.update", "plan "+id, describePlan(out)
		return audit.Record(ctx, tx, by)
	})
	if err != nil {
		return Plan{}, err
	}
	s.wake(ctx)
	return out, nil
}

// describePlan summarizes a plan's limits for the audit log.
func describePlan(p Plan) string {
	return fmt.Sprintf("%s: %s/month, %s/year; runs %s, spend %s, concurrency %s, members %s, API %s/min, instance keys %t",
		p.Name, FormatPrice(p.MonthlyCents), FormatPrice(p.YearlyCents), FormatLimit(p.Runs), FormatSpend(p.SpendMicros),
		FormatLimit(int64(p.Concurrency)), FormatLimit(int64(p.Members)), FormatLimit(int64(p.APIPerMinute)), p.InstanceKeys)
}

// SetTeamPlan moves team teamID to plan planID by hand, audited as by (a
// site admin or the CLI).
func (s *Service) SetTeamPlan(ctx context.Context, by audit.Entry, teamID int64, planID string) error {
	err := db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		if err := setTeamPlan(ctx, tx, by, teamID, planID, "set by hand"); err != nil {
			return err
		}
		// A plan set by hand is the plan: a failed payment of before no
		// longer takes the team down to Free after the grace period.
		_, err := db.Exec(ctx, tx, `UPDATE subscriptions SET past_due_since = NULL WHERE team_id = ?`, teamID)
		return err
	})
	if err != nil {
		return err
	}
	s.wake(ctx)
	return nil
}

// ChangePlan moves the actor's team to plan planID under local billing
// (no Stripe): the owner chooses, and nothing is charged.
func (s *Service) ChangePlan(ctx context.Context, actor access.Actor, planID string) error {
	if err := actor.Can(access.BillingManage); err != nil {
		return err
	}
	err := db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		p, err := GetPlan(ctx, tx, planID)
		if err == nil && p.ByContract() {
			return validation.Errors{"plan": fmt.Sprintf("The %s plan is by contract: ask the operator of this instance.", p.Name)}
		}
		return setTeamPlan(ctx, tx, audit.For(actor, "", "", ""), actor.TeamID, planID, "chosen by the owner (local billing)")
	})
	if err != nil {
		return err
	}
	s.wake(ctx)
	return nil
}

// setTeamPlan moves a team to a plan inside tx, with its audit entry; the
// same plan again changes nothing.
func setTeamPlan(ctx context.Context, tx *sqlx.Tx, by audit.Entry, teamID int64, planID, why string) error {
	p, err := GetPlan(ctx, tx, planID)
	if errors.Is(err, db.ErrNotFound) {
		return validation.Errors{"plan": "There is no such plan."}
	}
	if err != nil {
		return err
	}
	var before string
	if err := db.Get(ctx, tx, &before, `SELECT plan FROM teams WHERE id = ?`, teamID); err != nil {
		return fmt.Errorf("billing: plan of team %d: %w", teamID, err)
	}
	if before == planID {
		return nil
	}
	if err := db.ExecOne(ctx, tx, `UPDATE teams SET plan = ? WHERE id = ?`, planID, teamID); err != nil {
		return fmt.Errorf("billing: move team %d to plan %s: %w", teamID, planID, err)
	}
	by.TeamID = &teamID
	by.Action, by.Target, by.Summary = "billing.plan_changed", "plan "+planID, fmt.Sprintf("%s → %s, %s", before, p.ID, why)
	return audit.Record(ctx, tx, by)
}

// wake starts steps that a change may have let run; failing that, the
// engine's sweep starts them a little later.
func (s *Service) wake(ctx context.Context) {
	if s.Waker != nil {
		_, _ = s.Waker.WakeSpendLimited(context.WithoutCancel(ctx))
	}
}

// Overview is a team's billing page: its plan and period, what it used,
// the warnings it was given, and the plans it may choose from.
type Overview struct {
	Account
	Usage    Usage
	Warnings []Warning
	Plans    []Plan
	Days     []Day
	Top      []TemplateCost
}

// Day is one day of a period: the runs started and their model cost.
type Day struct {
	Date       time.Time `db:"-" json:"date"`
	Key        string    `db:"day" json:"-"`
	Runs       int64     `db:"runs" json:"runs"`
	CostMicros int64     `db:"cost_micros" json:"cost_micros"`
}

// TemplateCost is what a template's runs cost in a period.
type TemplateCost struct {
	Template   string `db:"template" json:"template"`
	Runs       int64  `db:"runs" json:"runs"`
	CostMicros int64  `db:"cost_micros" json:"cost_micros"`
}

// Plan reads one plan.
func (s *Service) Plan(ctx context.Context, id string) (Plan, error) {
	return GetPlan(ctx, s.DB.Reader(), id)
}

// Warnings are a team's usage warnings this period, for the banner every
// page of the team shows.
func (s *Service) Warnings(ctx context.Context, teamID int64) ([]Warning, error) {
	return CurrentWarnings(ctx, s.DB.Reader(), teamID)
}

// Overview returns the actor's team's billing overview.
func (s *Service) Overview(ctx context.Context, actor access.Actor) (Overview, error) {
	if err := actor.Can(access.BillingRead); err != nil {
		return Overview{}, err
	}
	q := s.DB.Reader()
	a, err := AccountOf(ctx, q, actor.TeamID, db.Now())
	if err != nil {
		return Overview{}, err
	}
	o := Overview{Account: a}
	if o.Usage, err = UsageOf(ctx, q, a); err != nil {
		return Overview{}, err
	}
	if o.Warnings, err = CurrentWarnings(ctx, q, actor.TeamID); err != nil {
		return Overview{}, err
	}
	if o.Plans, err = ListPlans(ctx, q); err != nil {
		return Overview{}, err
	}
	if o.Days, err = s.days(ctx, a); err != nil {
		return Overview{}, err
	}
	err = db.Select(ctx, q, &o.Top, `SELECT template, COUNT(*) AS runs, COALESCE(SUM(cost_micros), 0) AS cost_micros
		FROM runs WHERE team_id = ? AND template <> '' AND created_at >= ? AND created_at < ? AND NOT replay
		GROUP BY template ORDER BY cost_micros DESC, runs DESC, template LIMIT 10`, a.TeamID, a.Period.Start, a.Period.End)
	if err != nil {
		return Overview{}, fmt.Errorf("billing: top templates of team %d: %w", a.TeamID, err)
	}
	return o, nil
}

// days returns every day of a's period up to today, with the runs started
// that day (UTC) and their cost; days without runs are zero.
func (s *Service) days(ctx context.Context, a Account) ([]Day, error) {
	day := `substr(created_at, 1, 10)`
	if s.DB.Dialect == db.Postgres {
		day = `to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')`
	}
	var rows []Day
	err := db.Select(ctx, s.DB.Reader(), &rows, `SELECT `+day+` AS day, COUNT(*) AS runs, COALESCE(SUM(cost_micros), 0) AS cost_micros
		FROM runs WHERE team_id = ? AND created_at >= ? AND created_at < ? AND NOT replay GROUP BY 1 ORDER BY 1`, a.TeamID, a.Period.Start, a.Period.End)
	if err != nil {
		return nil, fmt.Errorf("billing: runs by day of team %d: %w", a.TeamID, err)
	}
	byKey := map[string]Day{}
	for _, r := range rows {
		byKey[r.Key] = r
	}
	end := a.Period.End
	if today := db.Now().Truncate(24 * time.Hour).Add(24 * time.Hour); today.Before(end) {
		end = today
	}
	var out []Day
	for d := a.Period.Start.Truncate(24 * time.Hour); d.Before(end); d = d.AddDate(0, 0, 1) {
		r := byKey[d.Format("2006-01-02")]
		r.Date = d
		out = append(out, r)
	}
	return out, nil
}

// TeamRow is a team as Admin → Teams lists it.
type TeamRow struct {
	ID           int64       `db:"id"`
	Name         string      `db:"name"`
	Slug         string      `db:"slug"`
	PlanID       string      `db:"plan_id"`
	PlanName     string      `db:"plan_name"`
	Owner        string      `db:"owner"`
	LastActivity db.NullTime `db:"last_activity"` // its latest run
	Usage
}

// TeamQuery picks a page of Admin → Teams: teams whose name, slug or
// owner's email contains Search, after the team (AfterName, AfterID) in
// name order.
type TeamQuery struct {
	Search    string
	AfterName string
	AfterID   int64
	Limit     int
}

// TeamPage is a page of teams and, when there are more, where the next
// page starts.
type TeamPage struct {
	Teams    []TeamRow
	NextName string
	NextID   int64
	HasMore  bool
}

// Teams returns a page of teams with their plan, owner, current period's
// usage and last activity, for site admins, in one query.
func (s *Service) Teams(ctx context.Context, tq TeamQuery) (TeamPage, error) {
	now := db.Now()
	limit := tq.Limit
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	where, args := []string{"1 = 1"}, []any{now, now, MonthOf(now).Start}
	if q := strings.ToLower(strings.TrimSpace(tq.Search)); q != "" {
		like := "%" + strings.NewReplacer("!", "!!", "%", "!%", "_", "!_").Replace(q) + "%"
		where = append(where, `(lower(t.name) LIKE ? ESCAPE '!' OR lower(t.slug) LIKE ? ESCAPE '!' OR EXISTS (SELECT 1 FROM memberships m
			JOIN users u ON u.id = m.user_id WHERE m.team_id = t.id AND m.role = 'owner' AND lower(u.email) LIKE ? ESCAPE '!'))`)
		args = append(args, like, like, like)
	}
	if tq.AfterID > 0 {
		where = append(where, `(t.name > ? OR (t.name = ? AND t.id > ?))`)
		args = append(args, tq.AfterName, tq.AfterName, tq.AfterID)
	}
	var rows []TeamRow
	err := db.Select(ctx, s.DB.Reader(), &rows, `SELECT t.id, t.name, t.slug, t.plan AS plan_id, COALESCE(p.name, t.plan) AS plan_name,
		COALESCE((SELECT u.email FROM memberships m JOIN users u ON u.id = m.user_id
			WHERE m.team_id = t.id AND m.role = 'owner' ORDER BY m.created_at LIMIT 1), '') AS owner,
		COALESCE(u.runs, 0) AS runs, COALESCE(u.spend_micros, 0) AS spend_micros, COALESCE(u.own_key_spend_micros, 0) AS own_key_spend_micros,
		(SELECT COUNT(*) FROM memberships m WHERE m.team_id = t.id) AS members,
		(SELECT MAX(r.created_at) FROM runs r WHERE r.team_id = t.id AND NOT r.replay) AS last_activity
		FROM teams t LEFT JOIN plans p ON p.id = t.plan
		LEFT JOIN subscriptions s ON s.team_id = t.id AND s.status IN ('active', 'trialing', 'past_due') AND s.period_start <= ? AND s.period_end > ?
		LEFT JOIN team_usage u ON u.team_id = t.id AND u.period_start = COALESCE(s.period_start, ?)
		WHERE `+strings.Join(where, " AND ")+` ORDER BY t.name, t.id LIMIT ?`, append(args, limit+1)...)
	if err != nil {
		return TeamPage{}, fmt.Errorf("billing: list teams: %w", err)
	}
	p := TeamPage{Teams: rows}
	if len(rows) > limit {
		p.Teams, p.HasMore = rows[:limit], true
		last := p.Teams[limit-1]
		p.NextName, p.NextID = last.Name, last.ID
	}
	return p, nil
}
