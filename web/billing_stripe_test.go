package web_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/billing"
	"github.com/nofxhq/nofx/internal/billing/stripetest"
	"github.com/nofxhq/nofx/internal/config"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/logtest"
)

const stripeWebhookSecret = "whsec_web_test"

// newStripeApp is an app that bills through stripe-mock, with the Starter
// plan sold monthly and yearly.
func newStripeApp(t *testing.T) *app {
	t.Helper()
	return newStripeAppAt(t, dbtest.SQLiteURL(t))
}

// newStripeAppAt is newStripeApp on the database at url.
func newStripeAppAt(t *testing.T, url string) *app {
	t.Helper()
	mock := stripetest.Start(t)
	a := newAppWith(t, url, slog.New(slog.NewTextHandler(io.Discard, nil)), func(c *config.Config) {
		c.StripeSecretKey, c.StripeWebhookSecret, c.StripeAPIBase = "sk_test_123", stripeWebhookSecret, mock
	})
	a.setPlanLimits("starter", billing.PlanChange{StripePriceMonthly: ptr("price_starter_m"), StripePriceYearly: ptr("price_starter_y")})
	return a
}

// The owner's checkout, portal, cancel and resume reach Stripe as
// well-formed requests (stripe-mock refuses any other) and leave their
// trace in NOFX's database; local plan changes are refused.
func TestStripeCheckoutPortalCancelResume(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		stripeCheckoutPortalCancelResume(t, newStripeApp(t))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		stripeCheckoutPortalCancelResume(t, newStripeAppAt(t, dbtest.PostgresURL(t)))
	})
}

func stripeCheckoutPortalCancelResume(t *testing.T, a *app) {
	owner := a.client()
	owner.signUp("owner@example.com", password)
	team := a.teamOf("owner@example.com").ID

	doc := owner.get("/billing").Doc(t)
	require.Equal(t, 1, doc.Find(`[data-testid="checkout-starter"]`).Length(), "plans with a Stripe price are bought through Checkout")
	require.Zero(t, doc.Find(`[data-testid="checkout-pro"]`).Length(), "Pro has no Stripe price here")
	require.Zero(t, doc.Find(`[data-testid^="choose-"]`).Length(), "no local plan change with Stripe")
	require.Contains(t, doc.Find(`[data-testid="subscription-text"]`).Text(), "No subscription yet.")

	res := owner.submit("/billing", "/billing/plan", url.Values{"plan": {"pro"}})
	require.Equal(t, http.StatusConflict, res.StatusCode, "no free upgrades when Stripe bills")

	res = owner.submit("/billing", "/billing/checkout", url.Values{"plan": {"starter"}, "interval": {"year"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	require.True(t, strings.HasPrefix(res.Header.Get("Location"), "https://"), "to Stripe's checkout page: %s", res.Header.Get("Location"))
	var customer string
	require.NoError(t, db.Get(context.Background(), a.DB, &customer, `SELECT stripe_customer_id FROM subscriptions WHERE team_id = ?`, team))
	require.True(t, strings.HasPrefix(customer, "cus_"), customer)
	var checkouts int
	require.NoError(t, db.Get(context.Background(), a.DB, &checkouts, `SELECT COUNT(*) FROM audit_log WHERE team_id = ? AND action = 'billing.checkout_started'`, team))
	require.Equal(t, 1, checkouts)

	// A second checkout reuses the customer.
	res = owner.submit("/billing", "/billing/checkout", url.Values{"plan": {"starter"}, "interval": {"month"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	var again string
	require.NoError(t, db.Get(context.Background(), a.DB, &again, `SELECT stripe_customer_id FROM subscriptions WHERE team_id = ?`, team))
	require.Equal(t, customer, again)

	res = owner.submit("/billing", "/billing/checkout", url.Values{"plan": {"pro"}, "interval": {"month"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Contains(t, owner.get("/billing").Body, "The Pro plan is not sold monthly here.")

	res = owner.submit("/billing", "/billing/portal", url.Values{})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	require.True(t, strings.HasPrefix(res.Header.Get("Location"), "https://"), res.Header.Get("Location"))

	res = owner.submit("/billing", "/billing/cancel", url.Values{})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Contains(t, owner.get("/billing").Body, "The team has no current subscription.")

	// Stripe tells NOFX of the subscription; then cancel and resume reach it.
	now := time.Now()
	sub := map[string]any{
		"id": "sub_web", "object": "subscription", "status": "active", "customer": customer, "cancel_at_period_end": false,
		"metadata": map[string]string{"nofx_team_id": fmt.Sprint(team)},
		"items": map[string]any{"object": "list", "data": []map[string]any{{
			"id": "si_1", "object": "subscription_item", "current_period_start": now.Add(-time.Hour).Unix(), "current_period_end": now.AddDate(1, 0, 0).Unix(),
			"price": map[string]any{"id": "price_starter_y", "object": "price", "recurring": map[string]any{"interval": "year"}},
		}}},
	}
	require.Equal(t, http.StatusOK, a.sendStripe("evt_web_1", "customer.subscription.created", sub).StatusCode)
	doc = owner.get("/billing").Doc(t)
	require.Equal(t, "Starter", doc.Find(`[data-testid="plan"]`).Text())
	require.Contains(t, doc.Find(`[data-testid="subscription-text"]`).Text(), "Renews every year")
	require.Zero(t, doc.Find(`[data-testid^="checkout-"]`).Length(), "a subscribed team changes plans in the portal")
	res = owner.submit("/billing", "/billing/checkout", url.Values{"plan": {"starter"}, "interval": {"month"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "/billing", res.Header.Get("Location"), "no second subscription")
	require.Contains(t, owner.get("/billing").Body, "The team has a subscription already")

	res = owner.submit("/billing", "/billing/cancel", url.Values{})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	doc = owner.get("/billing").Doc(t)
	require.Contains(t, doc.Find(`[data-testid="subscription-text"]`).Text(), "Cancelled: the plan ends on")
	require.Equal(t, 1, doc.Find(`[data-testid="resume-subscription"]`).Length())
	res = owner.submit("/billing", "/billing/resume", url.Values{})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Contains(t, owner.get("/billing").Doc(t).Find(`[data-testid="subscription-text"]`).Text(), "Renews every year")
	var actions []string
	require.NoError(t, db.Select(context.Background(), a.DB, &actions, `SELECT action FROM audit_log WHERE team_id = ? AND action IN ('billing.cancel', 'billing.resume') ORDER BY id`, team))
	require.Equal(t, []string{"billing.cancel", "billing.resume"}, actions)
}

// sendStripe delivers a signed Stripe event to the webhook endpoint.
func (a *app) sendStripe(id, typ string, object map[string]any) response {
	a.t.Helper()
	payload := stripetest.Event(a.t, id, typ, time.Now(), object)
	req, err := http.NewRequest(http.MethodPost, a.URL+"/webhooks/stripe", strings.NewReader(string(payload)))
	require.NoError(a.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", stripetest.Sign(payload, stripeWebhookSecret, time.Now()))
	return a.client().do(req)
}

// The webhook endpoint answers 400 to a bad signature, 200 to a replay,
// and needs no CSRF token or session.
func TestStripeWebhookEndpoint(t *testing.T) {
	a := newStripeApp(t)
	a.client().signUp("owner@example.com", password)
	team := a.teamOf("owner@example.com").ID
	obj := map[string]any{"id": "cs_1", "object": "checkout.session", "client_reference_id": fmt.Sprint(team), "customer": "cus_x", "subscription": "sub_x"}

	payload := stripetest.Event(t, "evt_x", "checkout.session.completed", time.Now(), obj)
	req, err := http.NewRequest(http.MethodPost, a.URL+"/webhooks/stripe", strings.NewReader(string(payload)))
	require.NoError(t, err)
	req.Header.Set("Stripe-Signature", stripetest.Sign(payload, "whsec_wrong", time.Now()))
	res := a.client().do(req)
	require.Equal(t, http.StatusBadRequest, res.StatusCode)
	require.Contains(t, res.Body, "Stripe-Signature")
	var n int
	require.NoError(t, db.Get(context.Background(), a.DB, &n, `SELECT COUNT(*) FROM subscriptions`))
	require.Zero(t, n)

	require.Equal(t, http.StatusOK, a.sendStripe("evt_x", "checkout.session.completed", obj).StatusCode)
	require.Equal(t, http.StatusOK, a.sendStripe("evt_x", "checkout.session.completed", obj).StatusCode, "a replay is acknowledged")
	require.NoError(t, db.Get(context.Background(), a.DB, &n, `SELECT COUNT(*) FROM audit_log WHERE action = 'billing.checkout_completed'`))
	require.Equal(t, 1, n, "and applied once")

	// Without Stripe, the endpoint is not there.
	local := newApp(t)
	res = local.client().do(mustRequest(t, http.MethodPost, local.URL+"/webhooks/stripe", string(payload)))
	require.Equal(t, http.StatusNotFound, res.StatusCode)
}

func mustRequest(t *testing.T, method, url, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	return req
}

// When Stripe cannot be reached, the owner gets the 502 that says so, and
// the log says what failed at error level: a network error under Stripe's
// answer is no database outage.
func TestStripeUnreachableIsNoDatabaseOutage(t *testing.T) {
	t.Parallel()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close() // nothing listens at its address any more
	var logs logtest.Buffer
	a := newAppWith(t, dbtest.SQLiteURL(t), slog.New(slog.NewTextHandler(&logs, nil)), func(c *config.Config) {
		c.StripeSecretKey, c.StripeWebhookSecret, c.StripeAPIBase = "sk_test_123", stripeWebhookSecret, closed.URL
	})
	a.setPlanLimits("starter", billing.PlanChange{StripePriceMonthly: ptr("price_starter_m")})
	owner := a.client()
	owner.signUp("offline@example.com", password)

	res := owner.submit("/billing", "/billing/checkout", url.Values{"plan": {"starter"}, "interval": {"month"}})
	require.Equal(t, http.StatusBadGateway, res.StatusCode, res.Body)
	require.Contains(t, res.Doc(t).Find(`[data-testid=error-page]`).Text(), "Stripe did not accept the request")
	require.NotContains(t, logs.String(), "database unavailable", "Stripe's network error is not the database's")
	require.Regexp(t, `level=ERROR msg="request failed" status=502`, logs.String())
}
