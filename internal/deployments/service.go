package deployments

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/secrets"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/templates"
	"github.com/nofxhq/nofx/internal/validation"
)

// Service deploys a team's templates and starts runs of its deployments.
// Every change is one transaction with its audit row.
type Service struct {
	DB   *db.DB
	Runs *runs.Service
	Box  *secrets.Box // seals webhook secrets
	Log  *slog.Logger
	// Now is the clock; tests set it. Nil means time.Now.
	Now func() time.Time

	// failing holds the ids of the deployments whose last tick, as this
	// process saw it, failed: a failing streak is audited once.
	failing sync.Map
}

// now is the current time as the database stores it.
func (s *Service) now() time.Time {
	t := time.Now()
	if s.Now != nil {
		t = s.Now()
	}
	return t.UTC().Truncate(time.Microsecond)
}

func (s *Service) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// ValidEnvironment reports whether env is one a template deploys to.
func ValidEnvironment(env string) bool {
	return env == Production || env == Staging
}

// sealContext binds a sealed webhook secret to its deployment's token.
func sealContext(token string) string {
	return "deployment:" + token + ":webhook"
}

// randomString returns n random bytes, URL-safe base64 encoded.
func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("deployments: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// newSecret returns a webhook secret in plain text and sealed for token.
func (s *Service) newSecret(token string) (plain, sealed string, err error) {
	r, err := randomString(32)
	if err != nil {
		return "", "", err
	}
	plain = "whsec_" + r
	if sealed, err = s.Box.Seal(plain, sealContext(token)); err != nil {
		return "", "", fmt.Errorf("deployments: seal webhook secret: %w", err)
	}
	return plain, sealed, nil
}

func target(slug, env string) string { return slug + "@" + env }

// Deploy pins version of the template slug (0 means its current version)
// to env; a version whose scheduled runs could not start, on a deployment
// with a schedule, is refused. The first deploy to env creates the deployment with a webhook
// URL and secret, which comes back in plain text this once.
func (s *Service) Deploy(ctx context.Context, actor access.Actor, slug, env string, version int) (Deployed, error) {
	if err := actor.Can(access.TemplatesDeploy); err != nil {
		return Deployed{}, err
	}
	var out Deployed
	err := db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		errs := validation.Errors{}
		n := max(version, 0)
		t, v, err := templates.LoadVersion(ctx, tx, actor.TeamID, slug, n)
		switch {
		case errors.Is(err, templates.ErrNoVersion):
			errs.Add("version", fmt.Sprintf("Template %q has no version %d.", slug, version))
		case err != nil:
			return err
		case version < 0:
			errs.Add("version", "Choose a version of the template.")
		}
		if !ValidEnvironment(env) {
			errs.Add("environment", "Choose production or staging.")
		}
		if err := errs.Err(); err != nil {
			return err
		}
		now := s.now()
		var by sql.NullInt64
		if actor.UserID != 0 {
			by = sql.NullInt64{Int64: actor.UserID, Valid: true}
		}
		d, err := byEnv(ctx, tx, actor.TeamID, slug, env)
		switch {
		case errors.Is(err, db.ErrNotFound):
			d = Deployment{TeamID: actor.TeamID, TemplateID: t.ID, Environment: env, Version: v.Number,
				DeployedByUserID: by, CreatedAt: now, UpdatedAt: now}
			if d.WebhookToken, err = randomString(24); err != nil {
				return err
			}
			if out.Secret, d.SealedSecret, err = s.newSecret(d.WebhookToken); err != nil {
				return err
			}
			if _, err := insert(ctx, tx, d); err != nil {
				if db.IsUniqueViolation(err) {
					return &runs.ConflictError{Message: "Someone deployed to " + env + " at the same moment; reload and try again."}
				}
				return err
			}
			out.Created = true
			if err := audit.Record(ctx, tx, audit.For(actor, "deployment.deploy", target(slug, env), fmt.Sprintf("version %d, new deployment", v.Number))); err != nil {
				return err
			}
		case err != nil:
			return err
		case d.Version != v.Number:
			if d.Schedule != "" {
				msg, err := scheduleProblem(slug, v)
				if err != nil {
					return err
				}
				if msg != "" {
					return validation.Errors{"version": fmt.Sprintf("The %s schedule would fail on version %d. %s", env, v.Number, msg)}
				}
			}
			if _, err := db.Exec(ctx, tx, `UPDATE deployments SET version = ?, deployed_by_user_id = ?, updated_at = ? WHERE id = ?`,
				v.Number, by, now, d.ID); err != nil {
				return fmt.Errorf("deployments: pin version %d to %s: %w", v.Number, env, err)
			}
			if err := audit.Record(ctx, tx, audit.For(actor, "deployment.deploy", target(slug, env), fmt.Sprintf("version %d (was %d)", v.Number, d.Version))); err != nil {
				return err
			}
		}
		out.Deployment, err = byEnv(ctx, tx, actor.TeamID, slug, env)
		return err
	})
	if err != nil {
		return Deployed{}, err
	}
	return out, nil
}

// change runs fn on the deployment of slug to env in a transaction, after
// checking that the actor may deploy; another team's is db.ErrNotFound.
func (s *Service) change(ctx context.Context, actor access.Actor, slug, env string, fn func(tx *sqlx.Tx, d Deployment, now time.Time) error) error {
	if err := actor.Can(access.TemplatesDeploy); err != nil {
		return err
	}
	return db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		d, err := byEnv(ctx, tx, actor.TeamID, slug, env)
		if err != nil {
			return err
		}
		return fn(tx, d, s.now())
	})
}

// Pause stops every trigger of a deployment until Resume: API and webhook
// requests are refused and its schedule does not run.
func (s *Service) Pause(ctx context.Context, actor access.Actor, slug, env string) error {
	return s.change(ctx, actor, slug, env, func(tx *sqlx.Tx, d Deployment, now time.Time) error {
		if d.Paused {
			return nil
		}
		if _, err := db.Exec(ctx, tx, `UPDATE deployments SET paused = ?, next_run_at = NULL, updated_at = ? WHERE id = ?`, true, now, d.ID); err != nil {
			return fmt.Errorf("deployments: pause %d: %w", d.ID, err)
		}
		return audit.Record(ctx, tx, audit.For(actor, "deployment.pause", target(slug, env), ""))
	})
}

// Resume lets a paused deployment run again; its schedule picks up at its
// next tick from now (ticks missed while paused do not run). A schedule
// whose runs could not start is refused, as by SetSchedule.
func (s *Service) Resume(ctx context.Context, actor access.Actor, slug, env string) error {
	return s.change(ctx, actor, slug, env, func(tx *sqlx.Tx, d Deployment, now time.Time) error {
		if !d.Paused {
			return nil
		}
		if err := checkSchedulable(ctx, tx, d, d.Schedule); err != nil {
			return err
		}
		next, err := nextRun(ctx, tx, d.TeamID, d.Schedule, now)
		if err != nil {
			return err
		}
		if _, err := db.Exec(ctx, tx, `UPDATE deployments SET paused = ?, next_run_at = ?, updated_at = ? WHERE id = ?`, false, next, now, d.ID); err != nil {
			return fmt.Errorf("deployments: resume %d: %w", d.ID, err)
		}
		return audit.Record(ctx, tx, audit.For(actor, "deployment.resume", target(slug, env), ""))
	})
}

// nextRun returns the first tick of expr after now in teamID's time zone,
// or nil for an empty expression.
func nextRun(ctx context.Context, q db.Queryer, teamID int64, expr string, now time.Time) (*time.Time, error) {
	if expr == "" {
		return nil, nil
	}
	_, sched, err := ParseSchedule(expr)
	if err != nil {
		return nil, validation.Errors{"schedule": err.Error()}
	}
	t, err := teams.ByID(ctx, q, teamID)
	if err != nil {
		return nil, err
	}
	loc, err := teams.LoadLocation(t.TimeZone)
	if err != nil {
		loc = time.UTC
	}
	next := NextTick(sched, loc, now)
	if next.IsZero() {
		return nil, nil
	}
	return &next, nil
}

// scheduleProblem says why scheduled runs of v, which get no values but
// the inputs' defaults, cannot start, for a person; "" when they can.
func scheduleProblem(slug string, v templates.Version) (string, error) {
	_, err := v.RunInput(slug, nil)
	var verrs validation.Errors
	if err == nil || !errors.As(err, &verrs) {
		return "", err
	}
	spec, err := v.Spec(slug)
	if err != nil {
		return "", err
	}
	for _, in := range spec.Inputs {
		msg, bad := verrs["inputs."+in.Name]
		switch {
		case !bad:
		case in.Default == "":
			return fmt.Sprintf("Scheduled runs use the inputs' defaults: give %q a default or make it optional first.", in.Name), nil
		default:
			return fmt.Sprintf("Scheduled runs use the inputs' defaults, and the default of %q is refused: %s", in.Name, msg), nil
		}
	}
	return "Scheduled runs use the inputs' defaults, and they do not work: " + verrs.Error(), nil
}

// checkSchedulable refuses a schedule expr (none when empty) for d when its
// pinned version's scheduled runs could not start, under "schedule".
func checkSchedulable(ctx context.Context, q db.Queryer, d Deployment, expr string) error {
	if expr == "" {
		return nil
	}
	v, err := pinned(ctx, q, d)
	if err != nil {
		return err
	}
	msg, err := scheduleProblem(d.Template, v)
	if err != nil {
		return err
	}
	if msg != "" {
		return validation.Errors{"schedule": msg}
	}
	return nil
}

// SetSchedule gives a deployment a cron expression (five fields, read in
// the team's time zone), or clears it when expr is empty. Scheduled runs
// use the inputs' defaults, so a pinned version with a required input and
// no default is refused.
func (s *Service) SetSchedule(ctx context.Context, actor access.Actor, slug, env, expr string) (Deployment, error) {
	var out Deployment
	err := s.change(ctx, actor, slug, env, func(tx *sqlx.Tx, d Deployment, now time.Time) error {
		norm := strings.Join(strings.Fields(expr), " ")
		if norm != "" {
			var err error
			if norm, _, err = ParseSchedule(norm); err != nil {
				return validation.Errors{"schedule": err.Error()}
			}
		}
		if err := checkSchedulable(ctx, tx, d, norm); err != nil {
			return err
		}
		next, err := nextRun(ctx, tx, d.TeamID, norm, now)
		if err != nil {
			return err
		}
		if d.Paused {
			next = nil
		}
		if _, err := db.Exec(ctx, tx, `UPDATE deployments SET schedule = ?, next_run_at = ?, updated_at = ? WHERE id = ?`, norm, next, now, d.ID); err != nil {
			return fmt.Errorf("deployments: schedule %d: %w", d.ID, err)
		}
		summary := "cleared"
		if norm != "" {
			summary = norm
		}
		if err := audit.Record(ctx, tx, audit.For(actor, "deployment.schedule", target(slug, env), summary)); err != nil {
			return err
		}
		out, err = byEnv(ctx, tx, actor.TeamID, slug, env)
		return err
	})
	return out, err
}

// RotateSecret replaces a deployment's webhook secret and returns the new
// one in plain text, this once; the webhook URL stays.
func (s *Service) RotateSecret(ctx context.Context, actor access.Actor, slug, env string) (string, error) {
	var secret string
	err := s.change(ctx, actor, slug, env, func(tx *sqlx.Tx, d Deployment, now time.Time) error {
		plain, sealed, err := s.newSecret(d.WebhookToken)
		if err != nil {
			return err
		}
		if _, err := db.Exec(ctx, tx, `UPDATE deployments SET webhook_secret = ?, updated_at = ? WHERE id = ?`, sealed, now, d.ID); err != nil {
			return fmt.Errorf("deployments: rotate secret of %d: %w", d.ID, err)
		}
		secret = plain
		return audit.Record(ctx, tx, audit.For(actor, "deployment.rotate_secret", target(slug, env), "new webhook secret"))
	})
	return secret, err
}

// ParseInputMap reads an input map, a JSON object of input name → dotted
// path into a webhook body (such as "pull_request.title"); empty text is
// the empty map.
func ParseInputMap(raw string) (map[string]string, error) {
	m := map[string]string{}
	if strings.TrimSpace(raw) == "" {
		return m, nil
	}
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return nil, errors.New(`Write a JSON object of input name → path in the body, such as {"title": "pull_request.title"}.`)
	}
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		path := m[name]
		if name == "" || path == "" || strings.HasPrefix(path, ".") || strings.HasSuffix(path, ".") || strings.Contains(path, "..") {
			return nil, fmt.Errorf("The path for %q must be keys separated by dots, such as pull_request.title.", name)
		}
	}
	return m, nil
}

// SetInputMap sets how a deployment's webhook bodies become inputs (see
// ParseInputMap).
func (s *Service) SetInputMap(ctx context.Context, actor access.Actor, slug, env, raw string) error {
	return s.change(ctx, actor, slug, env, func(tx *sqlx.Tx, d Deployment, now time.Time) error {
		m, err := ParseInputMap(raw)
		if err != nil {
			return validation.Errors{"input_map": err.Error()}
		}
		b, _ := json.Marshal(m)
		if _, err := db.Exec(ctx, tx, `UPDATE deployments SET input_map = ?, updated_at = ? WHERE id = ?`, string(b), now, d.ID); err != nil {
			return fmt.Errorf("deployments: input map of %d: %w", d.ID, err)
		}
		return audit.Record(ctx, tx, audit.For(actor, "deployment.input_map", target(slug, env), string(b)))
	})
}

// Get returns the deployment of the template slug to env.
func (s *Service) Get(ctx context.Context, actor access.Actor, slug, env string) (Deployment, error) {
	if err := actor.Can(access.TemplatesRead); err != nil {
		return Deployment{}, err
	}
	return byEnv(ctx, s.DB, actor.TeamID, slug, env)
}

// All returns every deployment of the actor's team, with its last run.
func (s *Service) All(ctx context.Context, actor access.Actor) ([]Summary, error) {
	if err := actor.Can(access.TemplatesRead); err != nil {
		return nil, err
	}
	return forTeam(ctx, s.DB.Reader(), actor.TeamID)
}

// List returns the template slug's deployments, each with its last 10 runs
// and the stats of its runs of the last 30 days.
func (s *Service) List(ctx context.Context, actor access.Actor, slug string) ([]Overview, error) {
	if err := actor.Can(access.TemplatesRead); err != nil {
		return nil, err
	}
	t, _, err := templates.LoadVersion(ctx, s.DB, actor.TeamID, slug, 0)
	if err != nil {
		return nil, err
	}
	list, err := forTemplate(ctx, s.DB, t.ID)
	if err != nil {
		return nil, err
	}
	since := s.now().Add(-StatsWindow)
	out := make([]Overview, 0, len(list))
	for _, d := range list {
		o := Overview{Deployment: d}
		if o.Recent, err = recentRuns(ctx, s.DB, d.ID, 10); err != nil {
			return nil, err
		}
		if o.Stats, err = statsSince(ctx, s.DB, d.ID, since); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}
