package billing

import (
	"fmt"
	"strconv"
	"time"

	"github.com/nofxhq/nofx/internal/billing"
	"github.com/nofxhq/nofx/internal/pricing"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/views/components"
)

// Data is what the billing page shows.
type Data struct {
	TeamName  string
	Overview  billing.Overview
	Totals    runs.Totals
	Now       time.Time
	CanManage bool // the owner: may change the plan
	Stripe    bool // Stripe bills the instance's plans
	// Subscription is the team's Stripe subscription, if any; Invoices
	// its latest invoices, or InvoicesError why they could not be read.
	Subscription  *billing.Subscription
	Invoices      []billing.Invoice
	InvoicesError string
}

// SubscriptionCurrent reports whether the team has a subscription that
// bills it now.
func (d Data) SubscriptionCurrent() bool {
	return d.Subscription != nil && d.Subscription.Current(d.Now)
}

// SubscriptionText says where the subscription stands.
func (d Data) SubscriptionText() string {
	sub := d.Subscription
	switch {
	case sub == nil || sub.StripeSubscriptionID == "":
		return "No subscription yet."
	case !sub.Current(d.Now):
		return "The subscription has ended (" + sub.Status + ")."
	case sub.CancelAtPeriodEnd:
		return "Cancelled: the plan ends on " + components.DateText(sub.PeriodEnd.Time) + "."
	}
	every := "month"
	if sub.Interval == billing.IntervalYear {
		every = "year"
	}
	return "Renews every " + every + "; next on " + components.DateText(sub.PeriodEnd.Time) + "."
}

// PastDue says, when a payment failed, until when the plan is kept.
func (d Data) PastDue() string {
	sub := d.Subscription
	if sub == nil || !sub.PastDueSince.Valid {
		return ""
	}
	until := sub.PastDueSince.Time.Add(billing.PastDueGrace)
	if d.Now.After(until) {
		return "A payment failed on " + components.DateText(sub.PastDueSince.Time) + ": the team has the Free plan's limits until an invoice is paid. Update the payment method in Manage billing."
	}
	return "A payment failed on " + components.DateText(sub.PastDueSince.Time) + ". The plan is kept until " + components.DateText(until) +
		"; update the payment method in Manage billing."
}

// InvoiceAmount writes an invoice's amount.
func InvoiceAmount(inv billing.Invoice) string {
	return billing.FormatAmount(inv.AmountDue, inv.Currency)
}

// Meter is one limit's usage bar.
type Meter struct {
	ID    string // for data-testid
	Label string
	Used  int64
	Quota int64 // billing.Unlimited: no bar
	Text  string
	Money bool
}

// Percent is how much of the limit is used, capped at 100 for the bar.
func (m Meter) Percent() int64 {
	if m.Quota <= 0 {
		if m.Used > 0 && m.Quota == 0 {
			return 100
		}
		return 0
	}
	return min(m.Used*100/m.Quota, 100)
}

// Level is the bar's state: ok, warn from 80 %, over at 100 %.
func (m Meter) Level() string {
	switch {
	case m.Quota == billing.Unlimited:
		return "ok"
	case m.Quota == 0 || m.Used*100 >= 100*m.Quota:
		return "over"
	case m.Used*100 >= 80*m.Quota:
		return "warn"
	}
	return "ok"
}

// Status says the bar's state in words, so that colour is not the only cue.
func (m Meter) Status() string {
	switch m.Level() {
	case "over":
		return "limit reached"
	case "warn":
		return "nearly at the limit"
	}
	return ""
}

func (m Meter) format(n int64) string {
	if m.Money {
		return pricing.FormatDollars(n)
	}
	return strconv.FormatInt(n, 10)
}

// Meters are the bars of the limits a period's usage counts toward.
func (d Data) Meters() []Meter {
	o := d.Overview
	resets := "resets on " + components.DateText(o.Period.End)
	mk := func(id, label string, used, quota int64, money bool) Meter {
		m := Meter{ID: id, Label: label, Used: used, Quota: quota, Money: money}
		if quota == billing.Unlimited {
			m.Text = fmt.Sprintf("%s used · no limit", m.format(used))
		} else {
			m.Text = fmt.Sprintf("%s of %s used · %s", m.format(used), m.format(quota), resets)
		}
		return m
	}
	members := mk("members", "Members and open invitations", o.Usage.Members, int64(o.Plan.Members), false)
	if o.Plan.Members == billing.Unlimited {
		members.Text = fmt.Sprintf("%d · no limit", o.Usage.Members)
	} else {
		members.Text = fmt.Sprintf("%d of %d", o.Usage.Members, o.Plan.Members)
	}
	return []Meter{
		mk("runs", "Runs this period", o.Usage.Runs, o.Plan.Runs, false),
		mk("spend", "Model spend on the instance's keys", o.Usage.SpendMicros, o.Plan.SpendMicros, true),
		members,
	}
}

// chart draws one value of each day of the period; the days to come are
// left empty, so that bars keep their width through the period.
func (d Data) chart(id, title string, value func(billing.Day) int64, format func(int64) string) components.Chart {
	days := d.Overview.Days
	slots := int(d.Overview.Period.End.Sub(d.Overview.Period.Start).Hours()/24 + 0.5)
	points := make([]components.Point, len(days))
	for i, day := range days {
		points[i] = components.Point{Value: value(day), Label: day.Date.Format("2 Jan") + ": " + format(value(day))}
		if i%7 == 0 {
			points[i].Tick = day.Date.Format("2 Jan")
		}
	}
	return components.NewChart(id, title, points, slots, 12, format)
}

// RunsChart is runs started per day.
func (d Data) RunsChart() components.Chart {
	return d.chart("runs-chart", "Runs started per day", func(day billing.Day) int64 { return day.Runs },
		func(n int64) string { return strconv.FormatInt(n, 10) + " runs" })
}

// CostChart is model cost per day.
func (d Data) CostChart() components.Chart {
	return d.chart("cost-chart", "Model cost per day", func(day billing.Day) int64 { return day.CostMicros }, pricing.FormatDollars)
}

// PlanPrice writes a plan's prices for its card.
func PlanPrice(p billing.Plan) string {
	if p.ByContract() {
		return "By contract"
	}
	if p.MonthlyCents == 0 {
		return "$0"
	}
	return fmt.Sprintf("%s a month, or %s a year", billing.FormatPrice(p.MonthlyCents), billing.FormatPrice(p.YearlyCents))
}

// spend writes a plan's spend limit for its card.
func spend(micros int64) string {
	if micros == billing.Unlimited {
		return "Unlimited model spend"
	}
	return pricing.FormatDollars(micros) + " of model spend a month"
}

// PlanLimits lists a plan's limits for its card.
func PlanLimits(p billing.Plan) []string {
	limit := func(n int64, what string) string {
		if n == billing.Unlimited {
			return "Unlimited " + what
		}
		return components.FormatCount(n) + " " + what
	}
	out := []string{
		limit(p.Runs, "runs a month"),
		spend(p.SpendMicros),
		limit(int64(p.Concurrency), "steps at once"),
		limit(int64(p.Members), "members"),
		limit(int64(p.APIPerMinute), "API requests a minute"),
	}
	if !p.InstanceKeys {
		out = append(out, "Your own provider keys only")
	}
	return out
}
