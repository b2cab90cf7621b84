package billing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stripe/stripe-go/v82"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/validation"
)

// Stripe sells plans through Stripe: Checkout for subscriptions, the
// billing portal, and cancelling or resuming at the period's end.
type Stripe struct {
	DB     *db.DB
	Client *stripe.Client
}

// NewStripe returns the Stripe seller of plans for secret key key, talking
// to apiBase when it is set (stripe-mock in tests), else to Stripe.
func NewStripe(d *db.DB, key, apiBase string) *Stripe {
	cfg := &stripe.BackendConfig{
		HTTPClient:        &http.Client{Timeout: 30 * time.Second},
		MaxNetworkRetries: stripe.Int64(2),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
	}
	if apiBase != "" {
		cfg.URL = stripe.String(apiBase)
	}
	return &Stripe{DB: d, Client: stripe.NewClient(key, stripe.WithBackends(stripe.NewBackendsWithConfig(cfg)))}
}

// ErrNoSubscription is an action on a subscription that the team does not
// have (yet).
var ErrNoSubscription = errors.New("billing: the team has no Stripe subscription")

// ErrSubscribed is a checkout for a team that has a subscription already:
// its plan changes in the billing portal, on the same subscription, so that
// the team is never billed twice.
var ErrSubscribed = errors.New("billing: the team has a subscription already")

// Intervals a plan is sold by.
const (
	IntervalMonth = "month"
	IntervalYear  = "year"
)

// Checkout starts a Checkout Session in subscription mode for the actor's
// team to buy plan planID by interval, and returns its URL. The team's
// Stripe customer is created the first time and reused after; the session
// carries the team's id as client_reference_id and as the subscription's
// metadata nofx_team_id. successURL and cancelURL are where Stripe sends
// the owner back.
func (s *Stripe) Checkout(ctx context.Context, actor access.Actor, planID, interval, successURL, cancelURL string) (string, error) {
	if err := actor.Can(access.BillingManage); err != nil {
		return "", err
	}
	p, err := GetPlan(ctx, s.DB, planID)
	if errors.Is(err, db.ErrNotFound) {
		return "", validation.Errors{"plan": "There is no such plan."}
	}
	if err != nil {
		return "", err
	}
	if interval != IntervalMonth && interval != IntervalYear {
		return "", validation.Errors{"interval": "Choose monthly or yearly."}
	}
	price := p.StripePrice(interval)
	if price == "" {
		return "", validation.Errors{"plan": fmt.Sprintf("The %s plan is not sold %sly here.", p.Name, interval)}
	}
	if sub, err := subscriptionOf(ctx, s.DB, actor.TeamID); err == nil && sub.StripeSubscriptionID != "" && sub.Current(db.Now()) {
		return "", ErrSubscribed
	} else if err != nil && !errors.Is(err, ErrNoSubscription) {
		return "", err
	}
	customer, err := s.customer(ctx, actor)
	if err != nil {
		return "", err
	}
	teamID := strconv.FormatInt(actor.TeamID, 10)
	params := &stripe.CheckoutSessionCreateParams{
		Mode:              stripe.String(string(stripe.CheckoutSessionModeSubscription)),
		Customer:          stripe.String(customer),
		ClientReferenceID: stripe.String(teamID),
		LineItems:         []*stripe.CheckoutSessionCreateLineItemParams{{Price: stripe.String(price), Quantity: stripe.Int64(1)}},
		SubscriptionData: &stripe.CheckoutSessionCreateSubscriptionDataParams{
			Metadata: map[string]string{"nofx_team_id": teamID},
		},
		SuccessURL: stripe.String(successURL),
		CancelURL:  stripe.String(cancelURL),
	}
	params.AddMetadata("nofx_team_id", teamID)
	session, err := s.Client.V1CheckoutSessions.Create(ctx, params)
	if err != nil {
		return "", fmt.Errorf("billing: create a Checkout Session for team %d: %w", actor.TeamID, err)
	}
	entry := audit.For(actor, "billing.checkout_started", "plan "+p.ID, fmt.Sprintf("%s, %sly, session %s", p.Name, interval, session.ID))
	if err := audit.Record(ctx, s.DB, entry); err != nil {
		return "", err
	}
	return session.URL, nil
}

// customer returns the team's Stripe customer, creating it (and the
// team's subscriptions row that keeps it) the first time.
func (s *Stripe) customer(ctx context.Context, actor access.Actor) (string, error) {
	var id string
	err := db.Get(ctx, s.DB, &id, `SELECT stripe_customer_id FROM subscriptions WHERE team_id = ?`, actor.TeamID)
	if err != nil && !errors.Is(err, db.ErrNotFound) {
		return "", fmt.Errorf("billing: customer of team %d: %w", actor.TeamID, err)
	}
	if id != "" {
		return id, nil
	}
	var team struct {
		Name  string `db:"name"`
		Email string `db:"email"`
	}
	err = db.Get(ctx, s.DB, &team, `SELECT t.name, COALESCE((SELECT u.email FROM memberships m JOIN users u ON u.id = m.user_id
		WHERE m.team_id = t.id AND m.role = 'owner' ORDER BY m.created_at LIMIT 1), '') AS email FROM teams t WHERE t.id = ?`, actor.TeamID)
	if err != nil {
		return "", fmt.Errorf("billing: team %d: %w", actor.TeamID, err)
	}
	params := &stripe.CustomerCreateParams{Name: stripe.String(team.Name)}
	if team.Email != "" {
		params.Email = stripe.String(team.Email)
	}
	params.AddMetadata("nofx_team_id", strconv.FormatInt(actor.TeamID, 10))
	c, err := s.Client.V1Customers.Create(ctx, params)
	if err != nil {
		return "", fmt.Errorf("billing: create the Stripe customer of team %d: %w", actor.TeamID, err)
	}
	err = db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		return upsertSubscription(ctx, tx, actor.TeamID, map[string]any{"stripe_customer_id": c.ID})
	})
	return c.ID, err
}

// Portal opens a billing portal session for the actor's team, which comes
// back to returnURL, and returns its URL.
func (s *Stripe) Portal(ctx context.Context, actor access.Actor, returnURL string) (string, error) {
	if err := actor.Can(access.BillingManage); err != nil {
		return "", err
	}
	sub, err := subscriptionOf(ctx, s.DB, actor.TeamID)
	if err != nil {
		return "", err
	}
	if sub.StripeCustomerID == "" {
		return "", ErrNoSubscription
	}
	session, err := s.Client.V1BillingPortalSessions.Create(ctx, &stripe.BillingPortalSessionCreateParams{
		Customer: stripe.String(sub.StripeCustomerID), ReturnURL: stripe.String(returnURL),
	})
	if err != nil {
		return "", fmt.Errorf("billing: create a portal session for team %d: %w", actor.TeamID, err)
	}
	return session.URL, nil
}

// SetCancelAtPeriodEnd cancels the actor's team's subscription at the end
// of its period (cancel true), or resumes it; the change is kept and
// audited at once, and Stripe's webhook confirms it.
func (s *Stripe) SetCancelAtPeriodEnd(ctx context.Context, actor access.Actor, cancel bool) error {
	if err := actor.Can(access.BillingManage); err != nil {
		return err
	}
	sub, err := subscriptionOf(ctx, s.DB, actor.TeamID)
	if err != nil {
		return err
	}
	if sub.StripeSubscriptionID == "" || !sub.Current(db.Now()) {
		return ErrNoSubscription
	}
	_, err = s.Client.V1Subscriptions.Update(ctx, sub.StripeSubscriptionID, &stripe.SubscriptionUpdateParams{
		CancelAtPeriodEnd: stripe.Bool(cancel),
	})
	if err != nil {
		return fmt.Errorf("billing: update subscription %s: %w", sub.StripeSubscriptionID, err)
	}
	action, summary := "billing.resume", "the subscription goes on"
	if cancel {
		action, summary = "billing.cancel", "the subscription ends on "+sub.PeriodEnd.Time.UTC().Format("2 Jan 2006")
	}
	return db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		if err := upsertSubscription(ctx, tx, actor.TeamID, map[string]any{"cancel_at_period_end": cancel}); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.For(actor, action, sub.StripeSubscriptionID, summary))
	})
}

// Invoice is one of a team's Stripe invoices.
type Invoice struct {
	Number    string
	Created   time.Time
	AmountDue int64 // in the currency's smallest unit
	Currency  string
	Status    string
	URL       string // the hosted invoice page
}

// Invoices returns the actor's team's latest Stripe invoices, newest first.
func (s *Stripe) Invoices(ctx context.Context, actor access.Actor) ([]Invoice, error) {
	if err := actor.Can(access.BillingRead); err != nil {
		return nil, err
	}
	sub, err := subscriptionOf(ctx, s.DB, actor.TeamID)
	if errors.Is(err, ErrNoSubscription) || (err == nil && sub.StripeCustomerID == "") {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	params := &stripe.InvoiceListParams{Customer: stripe.String(sub.StripeCustomerID)}
	params.Limit = stripe.Int64(10)
	var out []Invoice
	for inv, err := range s.Client.V1Invoices.List(ctx, params) {
		if err != nil {
			return nil, fmt.Errorf("billing: invoices of team %d: %w", actor.TeamID, err)
		}
		out = append(out, Invoice{Number: inv.Number, Created: time.Unix(inv.Created, 0).UTC(), AmountDue: inv.AmountDue,
			Currency: string(inv.Currency), Status: string(inv.Status), URL: inv.HostedInvoiceURL})
		if len(out) == 10 {
			break
		}
	}
	return out, nil
}

// subscriptionOf reads team teamID's subscriptions row; none is
// ErrNoSubscription.
func subscriptionOf(ctx context.Context, q db.Queryer, teamID int64) (Subscription, error) {
	var sub Subscription
	err := db.Get(ctx, q, &sub, `SELECT `+subscriptionColumns+` FROM subscriptions s WHERE s.team_id = ?`, teamID)
	if errors.Is(err, db.ErrNotFound) {
		return Subscription{}, ErrNoSubscription
	}
	if err != nil {
		return Subscription{}, fmt.Errorf("billing: subscription of team %d: %w", teamID, err)
	}
	return sub, nil
}

// SubscriptionOf returns the actor's team's subscription, if it has one.
func (s *Stripe) SubscriptionOf(ctx context.Context, actor access.Actor) (*Subscription, error) {
	if err := actor.Can(access.BillingRead); err != nil {
		return nil, err
	}
	sub, err := subscriptionOf(ctx, s.DB.Reader(), actor.TeamID)
	if errors.Is(err, ErrNoSubscription) {
		return nil, nil
	}
	return &sub, err
}

// upsertSubscription sets columns of team teamID's subscriptions row,
// creating the row when it has none.
func upsertSubscription(ctx context.Context, q db.Queryer, teamID int64, set map[string]any) error {
	if _, err := db.Exec(ctx, q, `INSERT INTO subscriptions (team_id, updated_at) VALUES (?, ?) ON CONFLICT (team_id) DO NOTHING`,
		teamID, db.Now()); err != nil {
		return fmt.Errorf("billing: add the subscription of team %d: %w", teamID, err)
	}
	query := `UPDATE subscriptions SET updated_at = ?`
	args := []any{db.Now()}
	for _, column := range subscriptionFields {
		if v, ok := set[column]; ok {
			query += ", " + column + " = ?"
			args = append(args, v)
		}
	}
	if _, err := db.Exec(ctx, q, query+` WHERE team_id = ?`, append(args, teamID)...); err != nil {
		return fmt.Errorf("billing: update the subscription of team %d: %w", teamID, err)
	}
	return nil
}

// subscriptionFields are the columns upsertSubscription may set, in order.
var subscriptionFields = []string{"stripe_customer_id", "stripe_subscription_id", "status", "billing_interval",
	"period_start", "period_end", "cancel_at_period_end", "past_due_since", "last_event_at", "last_invoice_event_at"}
