package billing

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/mail"
)

// Subscription is a team's Stripe subscription as NOFX last heard of it.
type Subscription struct {
	TeamID               int64        `db:"team_id"`
	StripeCustomerID     string       `db:"stripe_customer_id"`
	StripeSubscriptionID string       `db:"stripe_subscription_id"`
	Status               string       `db:"status"` // Stripe's: active, trialing, past_due, canceled...
	Interval             string       `db:"billing_interval"`
	PeriodStart          sql.NullTime `db:"period_start"`
	PeriodEnd            sql.NullTime `db:"period_end"`
	CancelAtPeriodEnd    bool         `db:"cancel_at_period_end"`
	PastDueSince         sql.NullTime `db:"past_due_since"`
	LastEventAt          sql.NullTime `db:"last_event_at"`
}

// Current reports whether the subscription bills its team at now, so that
// its period is the team's.
func (s Subscription) Current(now time.Time) bool {
	switch s.Status {
	case "active", "trialing", "past_due":
	default:
		return false
	}
	return s.PeriodStart.Valid && s.PeriodEnd.Valid && !now.Before(s.PeriodStart.Time) && now.Before(s.PeriodEnd.Time)
}

// Warning is a team told that its usage crossed a threshold of a limit.
type Warning struct {
	TeamID      int64     `db:"team_id" json:"-"`
	PeriodStart time.Time `db:"period_start" json:"-"`
	Metric      string    `db:"metric" json:"metric"`
	Threshold   int64     `db:"threshold" json:"threshold"`
	Used        int64     `db:"used" json:"used"`
	Quota       int64     `db:"quota" json:"limit"`
	CreatedAt   time.Time `db:"created_at" json:"at"`
	PlanName    string    `db:"plan_name" json:"-"`
}

// Message says what the warning means, for the banner, the email and the
// audit log.
func (w Warning) Message() string {
	var what string
	switch w.Metric {
	case MetricRuns:
		what = fmt.Sprintf("%d of %d runs", w.Used, w.Quota)
	case MetricSpend:
		what = fmt.Sprintf("%s of %s of model spend", FormatSpend(w.Used), FormatSpend(w.Quota))
	default:
		what = fmt.Sprintf("%d of %d members", w.Used, w.Quota)
	}
	plan := "the plan"
	if w.PlanName != "" {
		plan = "the " + w.PlanName + " plan"
	}
	if w.Threshold >= 100 {
		return fmt.Sprintf("This team has used %s this period: %s's limit is reached.", what, plan)
	}
	return fmt.Sprintf("This team has used %d%% of %s's %s limit this period (%s).", w.Threshold, plan, metricName(w.Metric), what)
}

// metricName names a metric in a sentence.
func metricName(metric string) string {
	switch metric {
	case MetricSpend:
		return "model spend"
	case MetricMembers:
		return "members"
	}
	return "runs"
}

// CurrentWarnings returns the highest warning of each limit that team
// teamID was given in its current period under the limits it has now, for
// the banner on its pages.
func CurrentWarnings(ctx context.Context, q db.Queryer, teamID int64) ([]Warning, error) {
	a, err := AccountOf(ctx, q, teamID, db.Now())
	if err != nil {
		return nil, err
	}
	var all []Warning
	err = db.Select(ctx, q, &all, `SELECT team_id, period_start, metric, threshold, used, quota, created_at, '' AS plan_name
		FROM usage_warnings WHERE team_id = ? AND period_start = ? ORDER BY metric, threshold DESC`, teamID, a.Period.Start)
	if err != nil {
		return nil, fmt.Errorf("billing: warnings of team %d: %w", teamID, err)
	}
	quotas := map[string]int64{MetricRuns: a.Plan.Runs, MetricSpend: a.Plan.SpendMicros, MetricMembers: int64(a.Plan.Members)}
	var top []Warning
	for _, w := range all {
		if w.Quota != quotas[w.Metric] {
			continue // given under a limit the team no longer has
		}
		if len(top) > 0 && top[len(top)-1].Metric == w.Metric {
			continue
		}
		w.PlanName = a.Plan.Name
		top = append(top, w)
	}
	return top, nil
}

// DeliverWarnings emails each warning not yet sent to its team's owner and
// admins, and marks it sent; a warning whose email fails stays unsent, to
// be tried again on the next call. It returns how many it sent.
func DeliverWarnings(ctx context.Context, d *db.DB, m mail.Mailer, baseURL string) (int, error) {
	var pending []struct {
		Warning
		TeamName string `db:"team_name"`
		TeamSlug string `db:"team_slug"`
	}
	err := db.Select(ctx, d, &pending, `SELECT w.team_id, w.period_start, w.metric, w.threshold, w.used, w.quota, w.created_at,
		p.name AS plan_name, t.name AS team_name, t.slug AS team_slug
		FROM usage_warnings w JOIN teams t ON t.id = w.team_id JOIN plans p ON p.id = t.plan
		WHERE w.emailed_at IS NULL ORDER BY w.created_at, w.team_id, w.metric, w.threshold LIMIT 100`)
	if err != nil {
		return 0, fmt.Errorf("billing: warnings to send: %w", err)
	}
	sent := 0
	var sendErr error
	for _, w := range pending {
		// Claimed before it is sent, so that processes sharing the
		// database do not each send it; given back if sending fails.
		res, err := db.Exec(ctx, d, `UPDATE usage_warnings SET emailed_at = ?
			WHERE team_id = ? AND period_start = ? AND metric = ? AND quota = ? AND threshold = ? AND emailed_at IS NULL`,
			db.Now(), w.TeamID, w.PeriodStart, w.Metric, w.Quota, w.Threshold)
		if err != nil {
			return sent, fmt.Errorf("billing: claim team %d's warning: %w", w.TeamID, err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			continue // another process has it
		}
		var to []string
		err = db.Select(ctx, d, &to, `SELECT u.email FROM memberships m JOIN users u ON u.id = m.user_id
			WHERE m.team_id = ? AND m.role IN ('owner', 'admin') ORDER BY u.email`, w.TeamID)
		if err != nil {
			return sent, fmt.Errorf("billing: recipients of team %d's warning: %w", w.TeamID, err)
		}
		body := fmt.Sprintf("%s\n\nTeam: %s\nSee the team's usage and plans: %s/billing\n", w.Message(), w.TeamName,
			strings.TrimRight(baseURL, "/"))
		subject := fmt.Sprintf("[NOFX] %s: %d%% of the %s limit used", w.TeamName, w.Threshold, metricName(w.Metric))
		failed := false
		for _, addr := range to {
			if err := m.Send(ctx, mail.Message{To: addr, Subject: subject, Body: body}); err != nil {
				failed = true
				// %v, not %w: a mail server's network error must not read
				// as the database being unavailable (db.Unavailable).
				sendErr = cmp.Or(sendErr, fmt.Errorf("billing: email team %d's warning to %s: %v", w.TeamID, addr, err))
				break
			}
		}
		if failed {
			_, err = db.Exec(ctx, d, `UPDATE usage_warnings SET emailed_at = NULL
				WHERE team_id = ? AND period_start = ? AND metric = ? AND quota = ? AND threshold = ?`,
				w.TeamID, w.PeriodStart, w.Metric, w.Quota, w.Threshold)
			if err != nil {
				return sent, fmt.Errorf("billing: give back team %d's warning: %w", w.TeamID, err)
			}
			continue
		}
		sent++
	}
	return sent, sendErr
}

// WarningMailer emails the warnings teams are given, every Every, until
// stopped: a warning is recorded in the transaction that crossed its
// threshold, and mailed here once that has committed.
type WarningMailer struct {
	DB      *db.DB
	Mailer  mail.Mailer
	BaseURL string
	Every   time.Duration
	Log     *slog.Logger

	cancel context.CancelFunc
	done   chan struct{}
}

// Start starts the loop.
func (w *WarningMailer) Start(ctx context.Context) {
	if w.done != nil {
		return
	}
	every := w.Every
	if every <= 0 {
		every = 10 * time.Second
	}
	ctx, w.cancel = context.WithCancel(context.WithoutCancel(ctx))
	w.done = make(chan struct{})
	go func() {
		defer close(w.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		failing := false // with another error than an outage: logged once until a pass succeeds
		outage := &db.Outage{Log: w.Log, What: "usage warnings"}
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			n, err := DeliverWarnings(ctx, w.DB, w.Mailer, w.BaseURL)
			if ctx.Err() != nil {
				return
			}
			switch {
			case outage.Observe(err):
			case err != nil && !failing:
				w.Log.Warn("email usage warnings", "error", err)
				failing = true
			case err == nil:
				failing = false
			}
			if n > 0 {
				w.Log.Info("emailed usage warnings", "count", n)
			}
		}
	}()
}

// Stop ends the loop and waits for it.
func (w *WarningMailer) Stop() {
	if w.done == nil {
		return
	}
	w.cancel()
	<-w.done
}
