package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"

	"github.com/jmoiron/sqlx"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/apikeys"
	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/config"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/templates"
	"github.com/nofxhq/nofx/internal/validation"
)

// openForCommand loads the configuration and opens a migrated database for
// a one-shot command. Logs go nowhere: commands print what they did.
func openForCommand(ctx context.Context, getenv func(string) string) (*db.DB, error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return nil, err
	}
	d, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if _, err := d.Migrate(ctx); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func migrate(ctx context.Context, stdout io.Writer, getenv func(string) string) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	d, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer d.Close()
	n, err := d.Migrate(ctx)
	if err != nil {
		return err
	}
	current, _, err := d.MigrationVersions(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "applied %d migrations; schema is at version %d\n", n, current)
	return nil
}

func users(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] != "create" {
		return errors.New("usage: nofx users create --email E --password P [--name N] [--site-admin]")
	}
	fs := flag.NewFlagSet("users create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	email := fs.String("email", "", "email address (required)")
	password := fs.String("password", "", "password (required)")
	name := fs.String("name", "", "display name")
	siteAdmin := fs.Bool("site-admin", false, "make the user a site admin")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	d, err := openForCommand(ctx, getenv)
	if err != nil {
		return err
	}
	defer d.Close()

	svc := &auth.Service{DB: d, SeedTeam: templates.SeedStarters}
	user, team, err := svc.SignUp(ctx, auth.SignUp{Email: *email, Name: *name, Password: *password, SiteAdmin: *siteAdmin})
	var verrs validation.Errors
	if errors.As(err, &verrs) {
		fields := make([]string, 0, len(verrs))
		for field := range verrs {
			fields = append(fields, field)
		}
		sort.Strings(fields)
		for _, field := range fields {
			fmt.Fprintf(stderr, "--%s: %s\n", field, verrs[field])
		}
		return errors.New("user not created")
	}
	if err != nil {
		return err
	}
	admin := ""
	if user.IsSiteAdmin {
		admin = " (site admin)"
	}
	fmt.Fprintf(stdout, "created user %s%s with team %s\n", user.Email, admin, team.Slug)
	return nil
}

func tokens(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] != "create" {
		return errors.New("usage: nofx tokens create --email E [--team SLUG] [--role R] [--name N]")
	}
	fs := flag.NewFlagSet("tokens create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	email := fs.String("email", "", "the user the key is made for (required)")
	teamSlug := fs.String("team", "", "team slug (default: the user's personal team)")
	roleName := fs.String("role", "", "role of the key: owner, admin, member or viewer (default: the user's own role)")
	name := fs.String("name", "cli", "a name to recognise the key by")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *email == "" {
		return errors.New("--email is required")
	}
	d, err := openForCommand(ctx, getenv)
	if err != nil {
		return err
	}
	defer d.Close()

	user, err := auth.UserByEmail(ctx, d, auth.NormalizeEmail(*email))
	if errors.Is(err, db.ErrNotFound) {
		return fmt.Errorf("no user with email %s", *email)
	}
	if err != nil {
		return err
	}
	membership, err := pickTeam(ctx, d, user.ID, *teamSlug)
	if err != nil {
		return err
	}
	role := membership.Role
	if *roleName != "" {
		if role, err = teams.ParseRole(*roleName); err != nil {
			return fmt.Errorf("--role: %w", err)
		}
		if !membership.Role.AtLeast(role) {
			return fmt.Errorf("--role: %s is %s in %s and cannot make a key with role %s", user.Email, membership.Role, membership.Slug, role)
		}
	}
	var secret string
	err = db.WithTx(ctx, d, func(tx *sqlx.Tx) error {
		var key apikeys.Key
		if key, secret, err = apikeys.Create(ctx, tx, membership.ID, *name, role, user.ID, nil); err != nil {
			return err
		}
		actor := access.Actor{UserID: user.ID, TeamID: membership.ID, Role: membership.Role}
		return audit.Record(ctx, tx, audit.For(actor, "api_key.create", key.Name, "role "+string(role)+", from the command line"))
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, secret)
	return nil
}

// pickTeam returns the user's membership in the team with slug, or their
// personal team when slug is empty.
func pickTeam(ctx context.Context, d *db.DB, userID int64, slug string) (teams.Membership, error) {
	if slug == "" {
		ms, err := teams.ForUser(ctx, d, userID)
		if err != nil {
			return teams.Membership{}, err
		}
		if len(ms) == 0 {
			return teams.Membership{}, errors.New("the user belongs to no team: give --team")
		}
		return ms[0], nil
	}
	team, err := teams.BySlug(ctx, d, slug)
	if errors.Is(err, db.ErrNotFound) {
		return teams.Membership{}, fmt.Errorf("--team: no team with slug %q", slug)
	}
	if err != nil {
		return teams.Membership{}, err
	}
	m, err := teams.MembershipOf(ctx, d, team.ID, userID)
	if errors.Is(err, db.ErrNotFound) {
		return teams.Membership{}, fmt.Errorf("--team: the user is not a member of %q", slug)
	}
	return m, err
}
