package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/billing"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/validation"
)

// cliActor is who the audit log says made a change from the command line.
const cliActor = "command line"

// plans lists the plans, or changes one: nofx plans list, nofx plans set ID.
func plans(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	const usage = "usage: nofx plans list | nofx plans set ID [--name N] [--runs N] [--spend DOLLARS] [--concurrency N] [--members N] " +
		"[--api-per-minute N] [--monthly DOLLARS] [--yearly DOLLARS] [--stripe-price-monthly P] [--stripe-price-yearly P] [--instance-keys true|false]"
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "list":
		d, err := openForCommand(ctx, getenv)
		if err != nil {
			return err
		}
		defer d.Close()
		list, err := billing.ListPlans(ctx, d)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tNAME\tMONTHLY\tYEARLY\tRUNS\tSPEND\tCONCURRENCY\tMEMBERS\tAPI/MIN\tINSTANCE KEYS\tSTRIPE MONTHLY\tSTRIPE YEARLY")
		for _, p := range list {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%t\t%s\t%s\n", p.ID, p.Name, billing.FormatPrice(p.MonthlyCents),
				billing.FormatPrice(p.YearlyCents), billing.FormatLimit(p.Runs), billing.FormatSpend(p.SpendMicros),
				billing.FormatLimit(int64(p.Concurrency)), billing.FormatLimit(int64(p.Members)), billing.FormatLimit(int64(p.APIPerMinute)),
				p.InstanceKeys, orDash(p.StripePriceMonthly), orDash(p.StripePriceYearly))
		}
		return w.Flush()
	case "set":
		return plansSet(ctx, args[1:], stdout, stderr, getenv)
	}
	return errors.New(usage)
}

// planFlags maps the flags of nofx plans set to the fields of a plan change.
var planFlags = map[string]string{
	"name": "name", "runs": "runs", "spend": "spend", "concurrency": "concurrency", "members": "members",
	"api-per-minute": "api_per_minute", "monthly": "monthly", "yearly": "yearly",
	"stripe-price-monthly": "stripe_price_monthly", "stripe-price-yearly": "stripe_price_yearly", "instance-keys": "instance_keys",
}

func plansSet(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] == "" || args[0][0] == '-' {
		return errors.New("usage: nofx plans set ID [flags]: name the plan first (see nofx plans list)")
	}
	id := args[0]
	fs := flag.NewFlagSet("plans set", flag.ContinueOnError)
	fs.SetOutput(stderr)
	values := map[string]*string{}
	for name := range planFlags {
		values[name] = fs.String(name, "", "")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	given := map[string]string{}
	fs.Visit(func(f *flag.Flag) { given[planFlags[f.Name]] = *values[f.Name] })
	if len(given) == 0 {
		return errors.New("nothing to change: give at least one flag, such as --runs 500")
	}
	change, err := billing.ParsePlanChange(func(field string) (string, bool) { v, ok := given[field]; return v, ok })
	if err != nil {
		return flagErrors(err)
	}
	d, err := openForCommand(ctx, getenv)
	if err != nil {
		return err
	}
	defer d.Close()
	p, err := (&billing.Service{DB: d}).UpdatePlan(ctx, audit.Entry{Actor: cliActor}, id, change)
	if errors.Is(err, billing.ErrUnknownPlan) {
		return fmt.Errorf("no plan %q (see nofx plans list)", id)
	}
	if err != nil {
		return flagErrors(err)
	}
	fmt.Fprintf(stdout, "plan %s: runs %s, spend %s, concurrency %s, members %s, API %s/min, instance keys %t\n", p.ID,
		billing.FormatLimit(p.Runs), billing.FormatSpend(p.SpendMicros), billing.FormatLimit(int64(p.Concurrency)),
		billing.FormatLimit(int64(p.Members)), billing.FormatLimit(int64(p.APIPerMinute)), p.InstanceKeys)
	return nil
}

// flagErrors words validation problems by the flags that caused them.
func flagErrors(err error) error {
	var errs validation.Errors
	if !errors.As(err, &errs) {
		return err
	}
	flagOf := map[string]string{}
	for flagName, field := range planFlags {
		flagOf[field] = flagName
	}
	fields := make([]string, 0, len(errs))
	for field := range errs {
		fields = append(fields, field)
	}
	sort.Strings(fields)
	var out []error
	for _, field := range fields {
		out = append(out, fmt.Errorf("--%s: %s", flagOf[field], errs[field]))
	}
	return errors.Join(out...)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// teamsCommand changes a team by hand: nofx teams set-plan.
func teamsCommand(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] != "set-plan" {
		return errors.New("usage: nofx teams set-plan --team SLUG --plan ID")
	}
	fs := flag.NewFlagSet("teams set-plan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	slug := fs.String("team", "", "the team's slug (required)")
	planID := fs.String("plan", "", "the plan's id (required; see nofx plans list)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *slug == "" || *planID == "" {
		return errors.New("--team and --plan are required")
	}
	d, err := openForCommand(ctx, getenv)
	if err != nil {
		return err
	}
	defer d.Close()
	team, err := teams.BySlug(ctx, d, *slug)
	if errors.Is(err, db.ErrNotFound) {
		return fmt.Errorf("no team with slug %q", *slug)
	}
	if err != nil {
		return err
	}
	err = (&billing.Service{DB: d}).SetTeamPlan(ctx, audit.Entry{Actor: cliActor}, team.ID, *planID)
	var errs validation.Errors
	if errors.As(err, &errs) {
		return fmt.Errorf("no plan %q (see nofx plans list)", *planID)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "team %s is on plan %s\n", team.Slug, *planID)
	return nil
}
