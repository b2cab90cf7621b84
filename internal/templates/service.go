package templates

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/validation"
)

// MaxNoteChars is the longest change note, in characters.
const MaxNoteChars = 500

// Service keeps a team's templates and their versions.
type Service struct {
	DB   *db.DB
	Runs *runs.Service // checks plans (providers, models) and starts runs
}

// errUnchanged ends a save's transaction when there is nothing to write.
var errUnchanged = errors.New("templates: unchanged")

// List returns the team's templates, by name.
func (s *Service) List(ctx context.Context, actor access.Actor) ([]Template, error) {
	if err := actor.Can(access.TemplatesRead); err != nil {
		return nil, err
	}
	var out []Template
	if err := db.Select(ctx, s.DB, &out, templateSelect+` WHERE t.team_id = ? ORDER BY t.name, t.slug`, actor.TeamID); err != nil {
		return nil, fmt.Errorf("templates: list: %w", err)
	}
	return out, nil
}

// Get returns a template of the actor's team with its current version;
// another team's template is db.ErrNotFound.
func (s *Service) Get(ctx context.Context, actor access.Actor, slug string) (Template, Version, error) {
	return s.Version(ctx, actor, slug, 0)
}

// Version returns a template with its version n (0 means the current one).
func (s *Service) Version(ctx context.Context, actor access.Actor, slug string, n int) (Template, Version, error) {
	if err := actor.Can(access.TemplatesRead); err != nil {
		return Template{}, Version{}, err
	}
	return LoadVersion(ctx, s.DB, actor.TeamID, slug, n)
}

// MaxListedVersions is how many versions Versions lists, newest first.
const MaxListedVersions = 200

// Versions returns a template and its newest versions (at most
// MaxListedVersions), newest first, without their content: Version returns
// one version whole.
func (s *Service) Versions(ctx context.Context, actor access.Actor, slug string) (Template, []Version, error) {
	if err := actor.Can(access.TemplatesRead); err != nil {
		return Template{}, nil, err
	}
	t, err := getTemplate(ctx, s.DB, actor.TeamID, slug)
	if err != nil {
		return Template{}, nil, err
	}
	var vs []Version
	if err := db.Select(ctx, s.DB, &vs, versionListSelect+` WHERE v.template_id = ? ORDER BY v.version DESC LIMIT ?`, t.ID, MaxListedVersions); err != nil {
		return Template{}, nil, fmt.Errorf("templates: versions of %s: %w", slug, err)
	}
	return t, vs, nil
}

// Check normalizes spec and reports what blocks saving it (errs, keyed
// "slug", "name", "inputs[i].field", "goal", "steps[i].field") and what
// does not (warnings, such as a declared input no prompt uses). Neither is
// nil.
func (s *Service) Check(spec *Spec) (errs, warnings validation.Errors) {
	spec.Normalize()
	errs, warnings = validation.Errors{}, validation.Errors{}
	validateSpec(errs, *spec)
	for field, msg := range s.Runs.CheckPlan(spec.Plan) {
		errs.Add(field, msg)
	}
	checkInputs(errs, warnings, *spec)
	return errs, warnings
}

// checkNote trims a change note and reports one that is too long.
func checkNote(note string, errs validation.Errors) string {
	note = strings.TrimSpace(note)
	if len([]rune(note)) > MaxNoteChars {
		errs.Add("note", fmt.Sprintf("Use at most %d characters.", MaxNoteChars))
	}
	return note
}

// Create saves a new template as its version 1.
func (s *Service) Create(ctx context.Context, actor access.Actor, spec Spec, note string) (Template, Version, error) {
	if err := actor.Can(access.TemplatesWrite); err != nil {
		return Template{}, Version{}, err
	}
	errs, _ := s.Check(&spec)
	note = checkNote(note, errs)
	if err := errs.Err(); err != nil {
		return Template{}, Version{}, err
	}
	slugTaken := validation.Errors{"slug": fmt.Sprintf("This team already has a template %q; choose another slug.", spec.Slug)}
	var (
		t Template
		v Version
	)
	err := db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		if _, err := getTemplate(ctx, tx, actor.TeamID, spec.Slug); err == nil {
			return slugTaken
		} else if !errors.Is(err, db.ErrNotFound) {
			return err
		}
		var err error
		if t, v, err = insertTemplate(ctx, tx, actor.TeamID, spec, note, actor, db.Now()); err != nil {
			if db.IsUniqueViolation(err) {
				return slugTaken
			}
			return err
		}
		return audit.Record(ctx, tx, audit.For(actor, "template.create", "template "+spec.Slug, summary(1, note)))
	})
	if err != nil {
		return Template{}, Version{}, err
	}
	return t, v, nil
}

// summary describes a saved version for the audit log.
func summary(n int, note string) string {
	if note == "" {
		return fmt.Sprintf("version %d", n)
	}
	return fmt.Sprintf("version %d: %s", n, note)
}

// lockTemplate reads the template slug of the actor's team inside tx,
// locking its row on PostgreSQL so that saves and rollbacks of one template
// take turns (SQLite transactions already do).
func (s *Service) lockTemplate(ctx context.Context, tx *sqlx.Tx, teamID int64, slug string) (Template, error) {
	if s.DB.Dialect == db.Postgres {
		var id int64
		if err := db.Get(ctx, tx, &id, `SELECT id FROM templates WHERE team_id = ? AND slug = ? FOR UPDATE`, teamID, slug); err != nil {
			return Template{}, fmt.Errorf("templates: lock %s: %w", slug, err)
		}
	}
	return getTemplate(ctx, tx, teamID, slug)
}

// Save makes spec the template's new current version, with a change note.
// When spec equals the current version, nothing is written and changed is
// false. An empty slug in spec means the template's own; another one is a
// validation error, as slugs never change.
func (s *Service) Save(ctx context.Context, actor access.Actor, slug string, spec Spec, note string) (v Version, changed bool, err error) {
	if err := actor.Can(access.TemplatesWrite); err != nil {
		return Version{}, false, err
	}
	// Another team's template is not found, before anything is validated.
	if _, err := getTemplate(ctx, s.DB, actor.TeamID, slug); err != nil {
		return Version{}, false, err
	}
	if strings.TrimSpace(spec.Slug) == "" {
		spec.Slug = slug
	}
	errs, _ := s.Check(&spec)
	note = checkNote(note, errs)
	if spec.Slug != slug {
		errs["slug"] = fmt.Sprintf("The slug cannot change: this template is %q.", slug)
	}
	if err := errs.Err(); err != nil {
		return Version{}, false, err
	}
	err = db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		t, err := s.lockTemplate(ctx, tx, actor.TeamID, slug)
		if err != nil {
			return err
		}
		current, err := getVersion(ctx, tx, t, t.CurrentVersion)
		if err != nil {
			return err
		}
		currentSpec, err := current.Spec(slug)
		if err != nil {
			return err
		}
		if string(currentSpec.Export()) == string(spec.Export()) {
			v = current
			return errUnchanged
		}
		now := db.Now()
		n := t.LatestVersion + 1
		if v, err = insertVersion(ctx, tx, t, n, spec, note, actor, now); err != nil {
			return err
		}
		_, err = db.Exec(ctx, tx, `UPDATE templates SET current_version = ?, name = ?, description = ?, updated_at = ? WHERE id = ?`,
			n, spec.Name, spec.Description, now, t.ID)
		if err != nil {
			return fmt.Errorf("templates: save %s: %w", slug, err)
		}
		return audit.Record(ctx, tx, audit.For(actor, "template.save", "template "+slug, summary(n, note)))
	})
	switch {
	case errors.Is(err, errUnchanged):
		return v, false, nil
	case err != nil:
		return Version{}, false, err
	}
	return v, true, nil
}

// Rollback makes version n current again. A version the template does not
// have is ErrNoVersion (and db.ErrNotFound); the current one is a
// runs.ErrConflict.
func (s *Service) Rollback(ctx context.Context, actor access.Actor, slug string, n int) (Template, error) {
	if err := actor.Can(access.TemplatesWrite); err != nil {
		return Template{}, err
	}
	var t Template
	err := db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		var err error
		if t, err = s.lockTemplate(ctx, tx, actor.TeamID, slug); err != nil {
			return err
		}
		v, err := getVersion(ctx, tx, t, n)
		if err != nil {
			return err
		}
		if n == t.CurrentVersion {
			return &runs.ConflictError{Message: fmt.Sprintf("Version %d is already the current version.", n)}
		}
		now := db.Now()
		_, err = db.Exec(ctx, tx, `UPDATE templates SET current_version = ?, name = ?, description = ?, updated_at = ? WHERE id = ?`,
			n, v.Name, v.Description, now, t.ID)
		if err != nil {
			return fmt.Errorf("templates: rollback %s: %w", slug, err)
		}
		was := t.CurrentVersion
		t.CurrentVersion, t.Name, t.Description, t.UpdatedAt = n, v.Name, v.Description, now
		return audit.Record(ctx, tx, audit.For(actor, "template.rollback", "template "+slug,
			fmt.Sprintf("version %d made current again (was version %d)", n, was)))
	})
	if err != nil {
		return Template{}, err
	}
	return t, nil
}

// Diff returns the line difference between two versions' exported JSON,
// from the older (as given) to the newer.
func (s *Service) Diff(ctx context.Context, actor access.Actor, slug string, from, to int) ([]DiffLine, error) {
	if err := actor.Can(access.TemplatesRead); err != nil {
		return nil, err
	}
	t, err := getTemplate(ctx, s.DB, actor.TeamID, slug)
	if err != nil {
		return nil, err
	}
	var specs [2]Spec
	for i, n := range []int{from, to} {
		v, err := getVersion(ctx, s.DB, t, n)
		if err != nil {
			return nil, err
		}
		if specs[i], err = v.Spec(slug); err != nil {
			return nil, err
		}
	}
	return DiffSpecs(specs[0], specs[1]), nil
}

// Delete removes a template, its versions and its deployments.
func (s *Service) Delete(ctx context.Context, actor access.Actor, slug string) error {
	if err := actor.Can(access.TemplatesDelete); err != nil {
		return err
	}
	return db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		t, err := s.lockTemplate(ctx, tx, actor.TeamID, slug)
		if err != nil {
			return err
		}
		if err := db.ExecOne(ctx, tx, `DELETE FROM templates WHERE id = ?`, t.ID); err != nil {
			return fmt.Errorf("templates: delete %s: %w", slug, err)
		}
		return audit.Record(ctx, tx, audit.For(actor, "template.delete", "template "+slug,
			fmt.Sprintf("deleted with its %d versions (current was version %d)", t.LatestVersion, t.CurrentVersion)))
	})
}

// StartRun starts a run from the template's current version with values
// for its inputs, checked field by field ("inputs.name").
func (s *Service) StartRun(ctx context.Context, actor access.Actor, slug string, values map[string]any, idempotencyKey string) (runs.Run, bool, error) {
	if err := actor.Can(access.RunsCreate); err != nil {
		return runs.Run{}, false, err
	}
	_, v, err := LoadVersion(ctx, s.DB, actor.TeamID, slug, 0)
	if err != nil {
		return runs.Run{}, false, err
	}
	in, err := v.RunInput(slug, values)
	if err != nil {
		return runs.Run{}, false, err
	}
	in.IdempotencyKey = idempotencyKey
	in.RequestHash = startRequestHash(slug, values)
	return s.Runs.Create(ctx, actor, in)
}

// startRequestHash is the request hash of starting slug with values as
// sent: the same request replays its run under its Idempotency-Key, even
// once the template has a new version, and other values are another request.
func startRequestHash(slug string, values map[string]any) string {
	if values == nil {
		values = map[string]any{}
	}
	return runs.RequestHash(map[string]any{"template": slug, "inputs": values})
}
