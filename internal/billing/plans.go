// Package billing owns plans, what each team uses of them in a period, the
// warnings before a limit bites, and the subscriptions that pay for them.
package billing

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/pricing"
	"github.com/nofxhq/nofx/internal/validation"
)

// Unlimited is the value of a limit that does not limit, and of a price set
// by contract.
const Unlimited = -1

// maxSpendMicros caps a spend limit at a billion dollars a month.
const maxSpendMicros = 1_000_000 * 1_000_000_000

// Plan is what a team may use, and what it costs.
type Plan struct {
	ID                 string    `db:"id" json:"id"`
	Name               string    `db:"name" json:"name"`
	Position           int       `db:"position" json:"-"`
	MonthlyCents       int64     `db:"monthly_cents" json:"monthly_cents"` // Unlimited: by contract
	YearlyCents        int64     `db:"yearly_cents" json:"yearly_cents"`
	StripePriceMonthly string    `db:"stripe_price_monthly" json:"-"`
	StripePriceYearly  string    `db:"stripe_price_yearly" json:"-"`
	Runs               int64     `db:"runs_per_month" json:"runs_per_month"`
	SpendMicros        int64     `db:"spend_micros" json:"spend_micros"` // model spend on the instance's keys
	Concurrency        int       `db:"concurrency" json:"concurrency"`
	Members            int       `db:"members" json:"members"`
	APIPerMinute       int       `db:"api_per_minute" json:"api_per_minute"`
	InstanceKeys       bool      `db:"instance_keys" json:"instance_keys"`
	UpdatedAt          time.Time `db:"updated_at" json:"-"`
}

// ByContract reports whether the plan's price is agreed rather than listed.
func (p Plan) ByContract() bool { return p.MonthlyCents == Unlimited }

// Sellable reports whether a team can buy the plan through Stripe checkout.
func (p Plan) Sellable() bool { return p.StripePriceMonthly != "" || p.StripePriceYearly != "" }

// StripePrice returns the plan's Stripe price for interval ("month" or
// "year"), or "".
func (p Plan) StripePrice(interval string) string {
	if interval == "year" {
		return p.StripePriceYearly
	}
	return p.StripePriceMonthly
}

const planColumns = `id, name, position, monthly_cents, yearly_cents, stripe_price_monthly, stripe_price_yearly,
	runs_per_month, spend_micros, concurrency, members, api_per_minute, instance_keys, updated_at`

// ListPlans returns every plan, cheapest first.
func ListPlans(ctx context.Context, q db.Queryer) ([]Plan, error) {
	var plans []Plan
	if err := db.Select(ctx, q, &plans, `SELECT `+planColumns+` FROM plans ORDER BY position, id`); err != nil {
		return nil, fmt.Errorf("billing: list plans: %w", err)
	}
	return plans, nil
}

// GetPlan returns the plan id; an unknown id is db.ErrNotFound.
func GetPlan(ctx context.Context, q db.Queryer, id string) (Plan, error) {
	var p Plan
	if err := db.Get(ctx, q, &p, `SELECT `+planColumns+` FROM plans WHERE id = ?`, id); err != nil {
		return Plan{}, fmt.Errorf("billing: plan %q: %w", id, err)
	}
	return p, nil
}

// TeamPlan returns the plan whose limits team teamID has now (see
// AccountOf: a team past due beyond the grace period has the free plan's).
func TeamPlan(ctx context.Context, q db.Queryer, teamID int64) (Plan, error) {
	a, err := AccountOf(ctx, q, teamID, db.Now())
	return a.Plan, err
}

// PlanChange is a change to a plan's limits, prices or Stripe prices; nil
// fields stay as they are.
type PlanChange struct {
	Name               *string
	MonthlyCents       *int64
	YearlyCents        *int64
	StripePriceMonthly *string
	StripePriceYearly  *string
	Runs               *int64
	SpendMicros        *int64
	Concurrency        *int
	Members            *int
	APIPerMinute       *int
	InstanceKeys       *bool
}

// apply returns p changed by c, or the problems with c keyed by the names
// ParsePlanChange reads (the form's fields and the CLI's flags).
func (c PlanChange) apply(p Plan) (Plan, error) {
	errs := validation.Errors{}
	if c.Name != nil {
		switch {
		case *c.Name == "":
			errs.Add("name", "Give the plan a name.")
		case len(*c.Name) > 40:
			errs.Add("name", "Use at most 40 characters.")
		}
		p.Name = *c.Name
	}
	set := func(field string, v *int64, max int64, dst *int64, msg string) {
		if v == nil {
			return
		}
		if *v < Unlimited || *v > max {
			errs.Add(field, msg)
		}
		*dst = *v
	}
	setInt := func(field string, v *int, max int, dst *int) {
		if v == nil {
			return
		}
		if (*v < 1 && *v != Unlimited) || *v > max {
			errs.Add(field, fmt.Sprintf("Use a number from 1 to %d, or -1 for unlimited.", max))
		}
		*dst = *v
	}
	set("monthly", c.MonthlyCents, 100_000_000, &p.MonthlyCents, "Use dollars up to $1,000,000, or -1 for a price by contract.")
	set("yearly", c.YearlyCents, 1_000_000_000, &p.YearlyCents, "Use dollars up to $10,000,000, or -1 for a price by contract.")
	set("runs", c.Runs, 1_000_000_000, &p.Runs, "Use a number from 0 to 1000000000, or -1 for unlimited.")
	set("spend", c.SpendMicros, maxSpendMicros, &p.SpendMicros, "Use dollars up to $1,000,000,000, or -1 for unlimited.")
	setInt("concurrency", c.Concurrency, 100_000, &p.Concurrency)
	setInt("members", c.Members, 1_000_000, &p.Members)
	setInt("api_per_minute", c.APIPerMinute, 10_000_000, &p.APIPerMinute)
	price := func(field string, v *string, dst *string) {
		if v == nil {
			return
		}
		if *v != "" && (len(*v) > 100 || !validStripeID(*v, "price_")) {
			errs.Add(field, "Use a Stripe price id such as price_1Nabc, or leave it empty.")
		}
		*dst = *v
	}
	price("stripe_price_monthly", c.StripePriceMonthly, &p.StripePriceMonthly)
	price("stripe_price_yearly", c.StripePriceYearly, &p.StripePriceYearly)
	if c.InstanceKeys != nil {
		p.InstanceKeys = *c.InstanceKeys
	}
	return p, errs.Err()
}

// ParsePlanChange reads a plan change from text, as the admin form and the
// CLI give it: get returns a field's value and whether it was given. Money
// is in dollars ("29", "12.50"), limits are whole numbers, and -1 is
// unlimited (or a price by contract). Problems are keyed by field.
func ParsePlanChange(get func(field string) (string, bool)) (PlanChange, error) {
	var c PlanChange
	errs := validation.Errors{}
	text := func(field string) *string {
		v, ok := get(field)
		if !ok {
			return nil
		}
		v = strings.TrimSpace(v)
		return &v
	}
	whole := func(field string) *int64 {
		v := text(field)
		if v == nil {
			return nil
		}
		n, err := strconv.ParseInt(*v, 10, 64)
		if err != nil {
			errs.Add(field, "Use a whole number, or -1 for unlimited.")
			return nil
		}
		return &n
	}
	small := func(field string) *int {
		n := whole(field)
		if n == nil {
			return nil
		}
		if *n > 1<<31-1 || *n < -1<<31 {
			errs.Add(field, "That number is too large.")
			return nil
		}
		v := int(*n)
		return &v
	}
	money := func(field string, unit int64) *int64 {
		v := text(field)
		if v == nil {
			return nil
		}
		if *v == "-1" {
			n := int64(Unlimited)
			return &n
		}
		micros, err := pricing.ParseMoney(*v, maxSpendMicros)
		if err != nil {
			errs.Add(field, "Use dollars such as 29 or 12.50, or -1.")
			return nil
		}
		n := micros / unit
		return &n
	}
	c.Name = text("name")
	c.MonthlyCents = money("monthly", 10_000)
	c.YearlyCents = money("yearly", 10_000)
	c.StripePriceMonthly = text("stripe_price_monthly")
	c.StripePriceYearly = text("stripe_price_yearly")
	c.Runs = whole("runs")
	c.SpendMicros = money("spend", 1)
	c.Concurrency = small("concurrency")
	c.Members = small("members")
	c.APIPerMinute = small("api_per_minute")
	if v := text("instance_keys"); v != nil {
		b, err := strconv.ParseBool(*v)
		if err != nil {
			errs.Add("instance_keys", "Use true or false.")
		} else {
			c.InstanceKeys = &b
		}
	}
	return c, errs.Err()
}

// validStripeID reports whether s looks like a Stripe id with prefix.
func validStripeID(s, prefix string) bool {
	if len(s) <= len(prefix) || s[:len(prefix)] != prefix {
		return false
	}
	for _, r := range s[len(prefix):] {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// updatePlan writes p, changed, inside q.
func updatePlan(ctx context.Context, q db.Queryer, p Plan) error {
	err := db.ExecOne(ctx, q, `UPDATE plans SET name = ?, monthly_cents = ?, yearly_cents = ?, stripe_price_monthly = ?,
		stripe_price_yearly = ?, runs_per_month = ?, spend_micros = ?, concurrency = ?, members = ?, api_per_minute = ?,
		instance_keys = ?, updated_at = ? WHERE id = ?`,
		p.Name, p.MonthlyCents, p.YearlyCents, p.StripePriceMonthly, p.StripePriceYearly, p.Runs, p.SpendMicros,
		p.Concurrency, p.Members, p.APIPerMinute, p.InstanceKeys, db.Now(), p.ID)
	if err != nil {
		return fmt.Errorf("billing: update plan %s: %w", p.ID, err)
	}
	return nil
}

// planByStripePrice returns the plan sold at Stripe price id price.
func planByStripePrice(ctx context.Context, q db.Queryer, price string) (Plan, error) {
	var p Plan
	err := db.Get(ctx, q, &p, `SELECT `+planColumns+` FROM plans WHERE stripe_price_monthly = ? OR stripe_price_yearly = ?
		ORDER BY position LIMIT 1`, price, price)
	if err != nil {
		return Plan{}, fmt.Errorf("billing: plan of Stripe price %s: %w", price, err)
	}
	return p, nil
}

// Concurrency is how many steps a team on a plan with planLimit may run
// at once on an instance whose own ceiling per team is instanceLimit
// (NOFX_TEAM_CONCURRENCY, 0 for none): the lower of the two that limit;
// 0 is no limit.
func Concurrency(planLimit, instanceLimit int) int {
	switch {
	case planLimit <= 0:
		return max(instanceLimit, 0)
	case instanceLimit <= 0:
		return planLimit
	}
	return min(planLimit, instanceLimit)
}

// FormatLimit writes a limit for people: "unlimited" or the number.
func FormatLimit(n int64) string {
	if n == Unlimited {
		return "unlimited"
	}
	return strconv.FormatInt(n, 10)
}

// FormatSpend writes a spend limit for people: "unlimited" or dollars.
func FormatSpend(micros int64) string {
	if micros == Unlimited {
		return "unlimited"
	}
	return pricing.FormatDollars(micros)
}

// FormatPrice writes a plan's price in cents: "$29", "$0", or "by contract".
func FormatPrice(cents int64) string {
	switch {
	case cents == Unlimited:
		return "by contract"
	case cents%100 == 0:
		return "$" + strconv.FormatInt(cents/100, 10)
	}
	return fmt.Sprintf("$%d.%02d", cents/100, cents%100)
}

// prefixed qualifies each column of a column list with prefix.
func prefixed(prefix, columns string) string {
	out := make([]byte, 0, len(columns)*2)
	start := true
	for i := 0; i < len(columns); i++ {
		ch := columns[i]
		if start && ch != ' ' && ch != '\n' && ch != '\t' {
			out = append(out, prefix...)
			start = false
		}
		if ch == ',' {
			start = true
		}
		out = append(out, ch)
	}
	return string(out)
}
