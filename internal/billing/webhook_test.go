package billing_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/stripe/stripe-go/v82"

	"github.com/nofxhq/nofx/internal/billing"
	"github.com/nofxhq/nofx/internal/billing/stripetest"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/mail"
)

const whsec = "whsec_test_secret"

// hook is a webhook receiver on d, with the plans sold at test prices.
type hook struct {
	t    *testing.T
	d    *db.DB
	w    *billing.Webhook
	team int64
}

func newHook(t *testing.T, d *db.DB) *hook {
	t.Helper()
	setLimits(t, d, "starter", billing.PlanChange{StripePriceMonthly: ptr("price_starter_m"), StripePriceYearly: ptr("price_starter_y")})
	setLimits(t, d, "pro", billing.PlanChange{StripePriceMonthly: ptr("price_pro_m"), StripePriceYearly: ptr("price_pro_y")})
	team := newTeam(t, d, "acme", "free")
	return &hook{t: t, d: d, team: team.ID,
		w: &billing.Webhook{DB: d, Secret: whsec, Mailer: &mail.Outbox{DB: d}, BaseURL: "http://nofx.test", Log: slog.New(slog.NewTextHandler(io.Discard, nil))}}
}

// send signs an event as Stripe does now and hands it to the receiver.
func (h *hook) send(id, typ string, created time.Time, object map[string]any) error {
	payload := stripetest.Event(h.t, id, typ, created, object)
	return h.w.Handle(context.Background(), payload, stripetest.Sign(payload, whsec, time.Now()))
}

// subscription is a subscription object of the team on price, in status.
func (h *hook) subscription(status, price string, cancel bool) map[string]any {
	start := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	interval := "month"
	if strings.HasSuffix(price, "_y") {
		interval = "year"
	}
	return map[string]any{
		"id": "sub_1", "object": "subscription", "status": status, "customer": "cus_1", "cancel_at_period_end": cancel,
		"metadata": map[string]string{"nofx_team_id": fmt.Sprint(h.team)},
		"items": map[string]any{"object": "list", "data": []map[string]any{{
			"id": "si_1", "object": "subscription_item",
			"current_period_start": start.Unix(), "current_period_end": start.AddDate(0, 1, 0).Unix(),
			"price": map[string]any{"id": price, "object": "price", "recurring": map[string]any{"interval": interval, "interval_count": 1}},
		}}},
	}
}

func (h *hook) plan() string {
	h.t.Helper()
	var plan string
	require.NoError(h.t, db.Get(context.Background(), h.d, &plan, `SELECT plan FROM teams WHERE id = ?`, h.team))
	return plan
}

func (h *hook) audited(action string) int {
	h.t.Helper()
	var n int
	require.NoError(h.t, db.Get(context.Background(), h.d, &n, `SELECT COUNT(*) FROM audit_log WHERE team_id = ? AND action = ?`, h.team, action))
	return n
}

// A subscription's life as Stripe tells it: checkout, created, upgraded,
// replayed, an older event out of order, a failed payment, paid, deleted.
func TestStripeSubscriptionLifecycle(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		h := newHook(t, d)
		t0 := time.Now().Add(-time.Hour)

		require.NoError(t, h.send("evt_checkout", "checkout.session.completed", t0, map[string]any{
			"id": "cs_1", "object": "checkout.session", "client_reference_id": fmt.Sprint(h.team), "customer": "cus_1",
			"subscription": "sub_1", "mode": "subscription",
		}))
		var sub struct {
			Customer     string `db:"stripe_customer_id"`
			Subscription string `db:"stripe_subscription_id"`
		}
		require.NoError(t, db.Get(ctx, d, &sub, `SELECT stripe_customer_id, stripe_subscription_id FROM subscriptions WHERE team_id = ?`, h.team))
		require.Equal(t, "cus_1", sub.Customer)
		require.Equal(t, "sub_1", sub.Subscription)
		require.Equal(t, 1, h.audited("billing.checkout_completed"))

		require.NoError(t, h.send("evt_created", "customer.subscription.created", t0.Add(time.Minute), h.subscription("active", "price_starter_m", false)))
		require.Equal(t, "starter", h.plan())
		a, err := billing.AccountOf(ctx, d, h.team, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
		require.NoError(t, err)
		require.Equal(t, time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), a.Period.Start, "the subscription's period is the team's")
		require.Equal(t, "month", a.Subscription.Interval)

		upgraded := h.subscription("active", "price_pro_y", false)
		require.NoError(t, h.send("evt_upgraded", "customer.subscription.updated", t0.Add(2*time.Minute), upgraded))
		require.Equal(t, "pro", h.plan())

		// A replay of an applied event does nothing, even one that would
		// take the team back.
		require.NoError(t, h.send("evt_created", "customer.subscription.created", t0.Add(time.Minute), h.subscription("active", "price_starter_m", false)))
		require.Equal(t, "pro", h.plan())
		// An older event, arriving late, does not undo the newer state.
		require.NoError(t, h.send("evt_old", "customer.subscription.updated", t0.Add(90*time.Second), h.subscription("canceled", "price_starter_m", false)))
		require.Equal(t, "pro", h.plan())
		require.Equal(t, 2, h.audited("billing.plan_changed"), "free → starter → pro")

		// A failed payment: past due, the owner is emailed, the plan kept
		// through the grace period, then the free plan's limits until paid.
		require.NoError(t, h.send("evt_failed", "invoice.payment_failed", t0.Add(3*time.Minute), map[string]any{
			"id": "in_1", "object": "invoice", "customer": "cus_1", "amount_due": 99000, "currency": "usd",
		}))
		require.Equal(t, 1, h.audited("billing.payment_failed"))
		var mails []string
		require.NoError(t, db.Select(ctx, d, &mails, `SELECT to_address FROM outbox WHERE subject LIKE '%payment failed%'`))
		require.Equal(t, []string{"acme-owner@example.com"}, mails)
		a, err = billing.AccountOf(ctx, d, h.team, db.Now())
		require.NoError(t, err)
		require.Equal(t, "pro", a.Plan.ID, "within the grace period")
		a, err = billing.AccountOf(ctx, d, h.team, db.Now().Add(billing.PastDueGrace+time.Hour))
		require.NoError(t, err)
		require.Equal(t, "free", a.Plan.ID, "past the grace period, the free plan's limits")
		require.NoError(t, h.send("evt_paid", "invoice.paid", t0.Add(4*time.Minute), map[string]any{
			"id": "in_1", "object": "invoice", "customer": "cus_1", "amount_paid": 99000, "currency": "usd",
		}))
		a, err = billing.AccountOf(ctx, d, h.team, db.Now().Add(billing.PastDueGrace+time.Hour))
		require.NoError(t, err)
		require.Equal(t, "pro", a.Plan.ID, "paid: the plan is back")

		require.NoError(t, h.send("evt_deleted", "customer.subscription.deleted", t0.Add(5*time.Minute), upgraded))
		require.Equal(t, "free", h.plan())
		var status string
		require.NoError(t, db.Get(ctx, d, &status, `SELECT status FROM subscriptions WHERE team_id = ?`, h.team))
		require.Equal(t, "canceled", status)
	})
}

// A delivery that is not Stripe's, or is stale, changes nothing; an event
// about an unknown team is acknowledged and ignored; a price of no plan
// keeps the team's plan and says so in the audit log.
func TestStripeWebhookRefusals(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		h := newHook(t, d)
		payload := stripetest.Event(t, "evt_1", "customer.subscription.created", time.Now(), h.subscription("active", "price_pro_m", false))

		for name, header := range map[string]string{
			"missing":   "",
			"wrong key": stripetest.Sign(payload, "whsec_other", time.Now()),
			"stale":     stripetest.Sign(payload, whsec, time.Now().Add(-10*time.Minute)),
			"malformed": "t=1,v1=zz",
		} {
			err := h.w.Handle(ctx, payload, header)
			require.ErrorIs(t, err, billing.ErrBadSignature, name)
		}
		tampered := []byte(strings.Replace(string(payload), "price_pro_m", "price_starter_m", 1))
		require.ErrorIs(t, h.w.Handle(ctx, tampered, stripetest.Sign(payload, whsec, time.Now())), billing.ErrBadSignature)
		old := []byte(strings.Replace(string(payload), stripe.APIVersion, "2024-06-20", 1))
		require.ErrorIs(t, h.w.Handle(ctx, old, stripetest.Sign(old, whsec, time.Now())), billing.ErrBadSignature, "another API version")
		var events int
		require.NoError(t, db.Get(ctx, d, &events, `SELECT COUNT(*) FROM stripe_events`))
		require.Zero(t, events, "nothing recorded")
		require.Equal(t, "free", h.plan())

		stranger := h.subscription("active", "price_pro_m", false)
		stranger["metadata"] = map[string]string{"nofx_team_id": "999999"}
		stranger["customer"] = "cus_unknown"
		require.NoError(t, h.send("evt_stranger", "customer.subscription.created", time.Now(), stranger))
		require.Equal(t, "free", h.plan())

		require.NoError(t, h.send("evt_unknown_price", "customer.subscription.created", time.Now(), h.subscription("active", "price_gold", false)))
		require.Equal(t, "free", h.plan(), "a price of no plan changes no plan")
		require.Equal(t, 1, h.audited("billing.unknown_price"))
		var status string
		require.NoError(t, db.Get(ctx, d, &status, `SELECT status FROM subscriptions WHERE team_id = ?`, h.team))
		require.Equal(t, "active", status, "the subscription itself is recorded")

		require.NoError(t, h.send("evt_other", "customer.created", time.Now(), map[string]any{"id": "cus_9", "object": "customer"}))
		require.NoError(t, db.Get(ctx, d, &events, `SELECT COUNT(*) FROM stripe_events`))
		require.Equal(t, 3, events)
	})
}

// Events about another subscription than the one that bills the team do
// not move its plan or end it; a created event in the same second as an
// update, and an invoice failure older than a payment, change nothing.
func TestStripeEventsThatMustNotUndoTheTeamsState(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		h := newHook(t, d)
		t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
		require.NoError(t, h.send("evt_1", "customer.subscription.created", t0, h.subscription("active", "price_pro_m", false)))
		require.Equal(t, "pro", h.plan())

		other := h.subscription("active", "price_starter_m", false)
		other["id"] = "sub_2"
		require.NoError(t, h.send("evt_2", "customer.subscription.created", t0.Add(time.Minute), other))
		require.Equal(t, "pro", h.plan(), "a second subscription does not move the plan")
		require.NoError(t, h.send("evt_3", "customer.subscription.deleted", t0.Add(2*time.Minute), other))
		require.Equal(t, "pro", h.plan(), "nor does its end")

		// Same second: the update is the newer state.
		require.NoError(t, h.send("evt_4", "customer.subscription.updated", t0.Add(3*time.Minute), h.subscription("active", "price_pro_y", false)))
		require.NoError(t, h.send("evt_5", "customer.subscription.created", t0.Add(3*time.Minute), h.subscription("incomplete", "price_pro_m", false)))
		var status, interval string
		require.NoError(t, db.Get(ctx, d, &status, `SELECT status FROM subscriptions WHERE team_id = ?`, h.team))
		require.NoError(t, db.Get(ctx, d, &interval, `SELECT billing_interval FROM subscriptions WHERE team_id = ?`, h.team))
		require.Equal(t, "active", status)
		require.Equal(t, "year", interval)

		invoice := map[string]any{"id": "in_1", "object": "invoice", "customer": "cus_1", "amount_due": 9900, "amount_paid": 9900, "currency": "usd"}
		require.NoError(t, h.send("evt_6", "invoice.paid", t0.Add(5*time.Minute), invoice))
		require.NoError(t, h.send("evt_7", "invoice.payment_failed", t0.Add(4*time.Minute), invoice), "a late retry of an older failure")
		require.NoError(t, h.send("evt_8", "invoice.payment_failed", t0.Add(5*time.Minute), invoice), "a failure in the payment's second")
		var pastDue int
		require.NoError(t, db.Get(ctx, d, &pastDue, `SELECT COUNT(*) FROM subscriptions WHERE team_id = ? AND past_due_since IS NOT NULL`, h.team))
		require.Zero(t, pastDue, "the paying team is not past due")

		// Once cancelled, a subscription stays so.
		require.NoError(t, h.send("evt_9", "customer.subscription.deleted", t0.Add(6*time.Minute), h.subscription("active", "price_pro_m", false)))
		require.NoError(t, h.send("evt_10", "customer.subscription.updated", t0.Add(7*time.Minute), h.subscription("active", "price_pro_m", false)))
		require.Equal(t, "free", h.plan())
	})
}
