package billing

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"

	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/mail"
)

// WebhookTolerance is how far a Stripe event's signed timestamp may be
// from now.
const WebhookTolerance = 5 * time.Minute

// PastDueGrace is how long a team whose payment failed keeps its plan:
// after it, until an invoice is paid, the team has the free plan's limits.
const PastDueGrace = 7 * 24 * time.Hour

// ErrBadSignature is a webhook delivery whose Stripe-Signature is missing,
// wrong or stale, or whose event cannot be read: it changes nothing.
var ErrBadSignature = errors.New("billing: the Stripe webhook signature is missing, wrong or stale")

// Webhook applies Stripe's events to teams' subscriptions and plans.
type Webhook struct {
	DB      *db.DB
	Secret  string // STRIPE_WEBHOOK_SECRET
	Waker   Waker
	Mailer  mail.Mailer
	BaseURL string
	Log     *slog.Logger
}

// Handle verifies a delivery and applies its event at most once: the
// event's id is recorded in the transaction of its effect, so a replay
// changes nothing, and an event older than the last one applied to a
// subscription does not undo a newer state. It returns nil once the effect
// is committed (or there is none to have); any other error means Stripe
// should send it again.
func (w *Webhook) Handle(ctx context.Context, payload []byte, signature string) error {
	event, err := webhook.ConstructEventWithOptions(payload, signature, w.Secret, webhook.ConstructEventOptions{Tolerance: WebhookTolerance})
	if err != nil {
		if strings.Contains(err.Error(), "API version") {
			// Not an attacker but a setting: every event will fail alike.
			w.Log.Error("stripe webhook endpoint sends another API version: set it to "+stripe.APIVersion+" in Stripe's dashboard", "error", err)
		}
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	var after []func()
	err = db.WithTx(ctx, w.DB, func(tx *sqlx.Tx) error {
		after = nil
		res, err := db.Exec(ctx, tx, `INSERT INTO stripe_events (id, type, created_at, received_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			event.ID, string(event.Type), time.Unix(event.Created, 0).UTC(), db.Now())
		if err != nil {
			return fmt.Errorf("billing: record Stripe event %s: %w", event.ID, err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err // applied before: a replay
		}
		a := applier{w: w, tx: tx, event: event, after: &after}
		return a.apply(ctx)
	})
	if err != nil {
		return err
	}
	for _, fn := range after {
		fn()
	}
	return nil
}

// applier applies one event inside its transaction; after collects what
// runs once it commits.
type applier struct {
	w     *Webhook
	tx    *sqlx.Tx
	event stripe.Event
	after *[]func()
}

// by is who the audit log says made an event's changes.
func (a applier) by(teamID int64) audit.Entry {
	return audit.Entry{TeamID: &teamID, Actor: "stripe", RequestID: a.event.ID}
}

func (a applier) apply(ctx context.Context) error {
	switch a.event.Type {
	case "checkout.session.completed":
		var s stripe.CheckoutSession
		if err := json.Unmarshal(a.event.Data.Raw, &s); err != nil {
			return a.unreadable(err)
		}
		return a.checkoutCompleted(ctx, s)
	case "customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted":
		var s stripe.Subscription
		if err := json.Unmarshal(a.event.Data.Raw, &s); err != nil {
			return a.unreadable(err)
		}
		if a.event.Type == "customer.subscription.deleted" {
			s.Status = stripe.SubscriptionStatusCanceled
		}
		return a.subscriptionChanged(ctx, s)
	case "invoice.paid", "invoice.payment_failed":
		var inv stripe.Invoice
		if err := json.Unmarshal(a.event.Data.Raw, &inv); err != nil {
			return a.unreadable(err)
		}
		return a.invoice(ctx, inv, a.event.Type == "invoice.paid")
	}
	return nil // an event NOFX does not act on
}

// unreadable acknowledges an event whose object cannot be read: sending it
// again would not help.
func (a applier) unreadable(err error) error {
	a.w.Log.Warn("stripe event not understood", "event", a.event.ID, "type", a.event.Type, "error", err)
	return nil
}

// team finds the team an object belongs to: by its metadata nofx_team_id,
// else by the team's stored Stripe customer; 0 when neither is known.
func (a applier) team(ctx context.Context, metadata map[string]string, customer *stripe.Customer) (int64, error) {
	if id, err := strconv.ParseInt(metadata["nofx_team_id"], 10, 64); err == nil && id > 0 {
		var n int
		if err := db.Get(ctx, a.tx, &n, `SELECT COUNT(*) FROM teams WHERE id = ?`, id); err != nil {
			return 0, fmt.Errorf("billing: find team %d: %w", id, err)
		}
		if n > 0 {
			return id, nil
		}
	}
	if customer == nil || customer.ID == "" {
		return 0, nil
	}
	var id int64
	err := db.Get(ctx, a.tx, &id, `SELECT team_id FROM subscriptions WHERE stripe_customer_id = ?`, customer.ID)
	if errors.Is(err, db.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("billing: team of Stripe customer %s: %w", customer.ID, err)
	}
	return id, nil
}

// unknownTeam acknowledges an event about no team NOFX knows.
func (a applier) unknownTeam() error {
	a.w.Log.Warn("stripe event for no known team", "event", a.event.ID, "type", a.event.Type)
	return nil
}

func (a applier) checkoutCompleted(ctx context.Context, s stripe.CheckoutSession) error {
	md := map[string]string{"nofx_team_id": s.ClientReferenceID}
	if s.ClientReferenceID == "" {
		md = s.Metadata
	}
	teamID, err := a.team(ctx, md, s.Customer)
	if err != nil || teamID == 0 {
		return errors.Join(err, a.unknownTeam())
	}
	last, err := a.lockRow(ctx, teamID)
	if err != nil {
		return err
	}
	set := map[string]any{}
	if s.Customer != nil && s.Customer.ID != "" {
		set["stripe_customer_id"] = s.Customer.ID
	}
	if s.Subscription != nil && s.Subscription.ID != "" && (!last.billing() || last.SubscriptionID == s.Subscription.ID) {
		set["stripe_subscription_id"] = s.Subscription.ID
	}
	if err := upsertSubscription(ctx, a.tx, teamID, set); err != nil {
		return err
	}
	e := a.by(teamID)
	e.Action, e.Target, e.Summary = "billing.checkout_completed", "session "+s.ID, "checkout completed"
	return audit.Record(ctx, a.tx, e)
}

// rowState is a team's subscriptions row as an event finds it, locked.
type rowState struct {
	SubscriptionID     string       `db:"stripe_subscription_id"`
	Status             string       `db:"status"`
	LastEventAt        sql.NullTime `db:"last_event_at"`
	LastInvoiceEventAt sql.NullTime `db:"last_invoice_event_at"`
	PastDueSince       sql.NullTime `db:"past_due_since"`
}

// billing reports whether the row's subscription still bills the team.
func (r rowState) billing() bool {
	switch r.Status {
	case "active", "trialing", "past_due":
		return r.SubscriptionID != ""
	}
	return false
}

// lockRow makes sure team teamID has a subscriptions row and reads it
// locked until the event's transaction ends (on PostgreSQL: concurrent
// deliveries about one team apply one after another; SQLite has one writer
// anyway), so that ordering checks see what the other applied.
func (a applier) lockRow(ctx context.Context, teamID int64) (rowState, error) {
	if _, err := db.Exec(ctx, a.tx, `INSERT INTO subscriptions (team_id, updated_at) VALUES (?, ?) ON CONFLICT (team_id) DO NOTHING`,
		teamID, db.Now()); err != nil {
		return rowState{}, fmt.Errorf("billing: add the subscription of team %d: %w", teamID, err)
	}
	query := `SELECT stripe_subscription_id, status, last_event_at, last_invoice_event_at, past_due_since FROM subscriptions WHERE team_id = ?`
	if a.w.DB.Dialect == db.Postgres {
		query += ` FOR UPDATE`
	}
	var r rowState
	if err := db.Get(ctx, a.tx, &r, query, teamID); err != nil {
		return rowState{}, fmt.Errorf("billing: subscription of team %d: %w", teamID, err)
	}
	return r, nil
}

// subscriptionChanged brings the team's subscription and plan to the
// event's state, unless the event is older than what was applied, or is
// about another subscription than the one that bills the team.
func (a applier) subscriptionChanged(ctx context.Context, s stripe.Subscription) error {
	teamID, err := a.team(ctx, s.Metadata, s.Customer)
	if err != nil || teamID == 0 {
		return errors.Join(err, a.unknownTeam())
	}
	last, err := a.lockRow(ctx, teamID)
	if err != nil {
		return err
	}
	created := time.Unix(a.event.Created, 0).UTC()
	switch {
	case last.SubscriptionID != "" && last.SubscriptionID != s.ID && last.billing():
		// Another subscription (of the same customer, say) must not move
		// the plan of the one that bills the team, nor end it.
		a.w.Log.Warn("stripe event about another subscription than the team's: not applied", "event", a.event.ID,
			"subscription", s.ID, "team_subscription", last.SubscriptionID, "team_id", teamID)
		return nil
	case last.SubscriptionID == s.ID && last.LastEventAt.Valid && created.Before(last.LastEventAt.Time):
		a.w.Log.Info("stripe event older than the subscription's state: not applied", "event", a.event.ID, "subscription", s.ID)
		return nil
	case last.SubscriptionID == s.ID && last.LastEventAt.Valid && created.Equal(last.LastEventAt.Time) && a.event.Type == "customer.subscription.created":
		// Stripe's times are in seconds: in the same second, an update
		// is the newer of the two.
		return nil
	case last.SubscriptionID == s.ID && last.Status == string(stripe.SubscriptionStatusCanceled) && s.Status != stripe.SubscriptionStatusCanceled:
		return nil // a cancelled subscription never comes back
	}
	set := map[string]any{"stripe_subscription_id": s.ID, "status": string(s.Status), "cancel_at_period_end": s.CancelAtPeriodEnd,
		"last_event_at": created}
	if s.Customer != nil && s.Customer.ID != "" {
		set["stripe_customer_id"] = s.Customer.ID
	}
	var price *stripe.Price
	if s.Items != nil && len(s.Items.Data) > 0 {
		item := s.Items.Data[0]
		price = item.Price
		if item.CurrentPeriodStart > 0 && item.CurrentPeriodEnd > 0 {
			set["period_start"] = time.Unix(item.CurrentPeriodStart, 0).UTC()
			set["period_end"] = time.Unix(item.CurrentPeriodEnd, 0).UTC()
		}
		if price != nil && price.Recurring != nil {
			set["billing_interval"] = string(price.Recurring.Interval)
		}
	}
	switch s.Status {
	case stripe.SubscriptionStatusPastDue:
		if !last.PastDueSince.Valid {
			set["past_due_since"] = db.Now()
		}
	case stripe.SubscriptionStatusActive, stripe.SubscriptionStatusTrialing, stripe.SubscriptionStatusCanceled,
		stripe.SubscriptionStatusUnpaid, stripe.SubscriptionStatusIncompleteExpired, stripe.SubscriptionStatusPaused:
		set["past_due_since"] = nil // paid, or over: no grace period runs
	}
	if err := upsertSubscription(ctx, a.tx, teamID, set); err != nil {
		return err
	}
	switch s.Status {
	case stripe.SubscriptionStatusActive, stripe.SubscriptionStatusTrialing, stripe.SubscriptionStatusPastDue:
		if price == nil {
			return nil
		}
		p, err := planByStripePrice(ctx, a.tx, price.ID)
		if errors.Is(err, db.ErrNotFound) {
			e := a.by(teamID)
			e.Action, e.Target, e.Summary = "billing.unknown_price", "subscription "+s.ID,
				"Stripe price "+price.ID+" belongs to no plan: the team keeps its plan; set the price on Admin → Plans"
			a.w.Log.Warn("stripe subscription with a price of no plan", "event", a.event.ID, "price", price.ID, "team_id", teamID)
			return audit.Record(ctx, a.tx, e)
		}
		if err != nil {
			return err
		}
		return a.movePlan(ctx, teamID, p.ID, "Stripe subscription "+s.ID+" is "+string(s.Status))
	case stripe.SubscriptionStatusCanceled, stripe.SubscriptionStatusUnpaid, stripe.SubscriptionStatusIncompleteExpired,
		stripe.SubscriptionStatusPaused:
		return a.movePlan(ctx, teamID, FreePlan, "Stripe subscription "+s.ID+" is "+string(s.Status))
	}
	return nil // incomplete: nothing to change until it is paid
}

// FreePlan is the plan a team falls back to when its subscription ends.
const FreePlan = "free"

// movePlan moves a team to a plan for Stripe, and starts after commit the
// steps the change may free.
func (a applier) movePlan(ctx context.Context, teamID int64, planID, why string) error {
	if err := setTeamPlan(ctx, a.tx, a.by(teamID), teamID, planID, why); err != nil {
		return err
	}
	if a.w.Waker != nil {
		*a.after = append(*a.after, func() { _, _ = a.w.Waker.WakeSpendLimited(context.WithoutCancel(ctx)) })
	}
	return nil
}

// invoice records a paid invoice (the team is no longer past due) or a
// failed payment (past due since now, if not already; the owner is told).
func (a applier) invoice(ctx context.Context, inv stripe.Invoice, paid bool) error {
	teamID, err := a.team(ctx, inv.Metadata, inv.Customer)
	if err != nil || teamID == 0 {
		return errors.Join(err, a.unknownTeam())
	}
	last, err := a.lockRow(ctx, teamID)
	if err != nil {
		return err
	}
	// Invoice events apply in the order Stripe made them; in the same
	// second a payment beats a failure (a late retry of an old failure
	// must not make a paying team past due).
	created := time.Unix(a.event.Created, 0).UTC()
	if last.LastInvoiceEventAt.Valid && (created.Before(last.LastInvoiceEventAt.Time) || (!paid && created.Equal(last.LastInvoiceEventAt.Time))) {
		a.w.Log.Info("stripe invoice event older than the last applied: not applied", "event", a.event.ID, "invoice", inv.ID)
		return nil
	}
	if _, err := db.Exec(ctx, a.tx, `UPDATE subscriptions SET last_invoice_event_at = ? WHERE team_id = ?`, created, teamID); err != nil {
		return fmt.Errorf("billing: record the invoice event of team %d: %w", teamID, err)
	}
	e := a.by(teamID)
	e.Target = "invoice " + inv.ID
	if paid {
		if _, err := db.Exec(ctx, a.tx, `UPDATE subscriptions SET past_due_since = NULL, updated_at = ? WHERE team_id = ?`, db.Now(), teamID); err != nil {
			return fmt.Errorf("billing: mark team %d paid: %w", teamID, err)
		}
		e.Action, e.Summary = "billing.invoice_paid", fmt.Sprintf("paid %s", FormatAmount(inv.AmountPaid, string(inv.Currency)))
		return audit.Record(ctx, a.tx, e)
	}
	if _, err := db.Exec(ctx, a.tx, `UPDATE subscriptions SET past_due_since = COALESCE(past_due_since, ?), updated_at = ? WHERE team_id = ?`,
		db.Now(), db.Now(), teamID); err != nil {
		return fmt.Errorf("billing: mark team %d past due: %w", teamID, err)
	}
	e.Action, e.Summary = "billing.payment_failed", fmt.Sprintf("payment of %s failed; the plan is kept for %d days", FormatAmount(inv.AmountDue, string(inv.Currency)), int(PastDueGrace.Hours()/24))
	if err := audit.Record(ctx, a.tx, e); err != nil {
		return err
	}
	var owner struct {
		Email string `db:"email"`
		Team  string `db:"name"`
	}
	err = db.Get(ctx, a.tx, &owner, `SELECT u.email, t.name FROM teams t JOIN memberships m ON m.team_id = t.id AND m.role = 'owner'
		JOIN users u ON u.id = m.user_id WHERE t.id = ? ORDER BY m.created_at LIMIT 1`, teamID)
	if err != nil || a.w.Mailer == nil {
		return nil // no owner to tell: the audit entry stands
	}
	msg := mail.Message{To: owner.Email, Subject: "[NOFX] " + owner.Team + ": a payment failed",
		Body: fmt.Sprintf("Stripe could not take the payment of %s for %s.\n\nThe team keeps its plan for %d days; update the payment method in the billing portal: %s/billing\n",
			FormatAmount(inv.AmountDue, string(inv.Currency)), owner.Team, int(PastDueGrace.Hours()/24), strings.TrimRight(a.w.BaseURL, "/"))}
	*a.after = append(*a.after, func() {
		if err := a.w.Mailer.Send(context.WithoutCancel(ctx), msg); err != nil {
			a.w.Log.Warn("email a failed payment", "team_id", teamID, "error", err)
		}
	})
	return nil
}

// FormatAmount writes an amount in a currency's smallest unit, such as
// 2900 usd as "29.00 USD".
func FormatAmount(amount int64, currency string) string {
	return fmt.Sprintf("%d.%02d %s", amount/100, amount%100, strings.ToUpper(currency))
}
