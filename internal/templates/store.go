package templates

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/db"
)

// templateSelect reads templates with the number of their latest version.
const templateSelect = `SELECT t.id, t.team_id, t.slug, t.name, t.description, t.current_version,
	COALESCE((SELECT MAX(v.version) FROM template_versions v WHERE v.template_id = t.id), 0) AS latest_version,
	t.created_at, t.updated_at
	FROM templates t`

// versionSelect reads versions with their author as it was when saved.
const versionSelect = `SELECT v.id, v.template_id, v.version, v.name, v.description, v.inputs, v.plan, v.note,
	v.author_user_id, v.author_key_id, v.author, v.created_at
	FROM template_versions v`

// versionListSelect reads versions without their plans, for lists; their
// inputs are small, and the deployments page builds its webhook example
// from them.
const versionListSelect = `SELECT v.id, v.template_id, v.version, v.name, v.description, v.inputs, '' AS plan, v.note,
	v.author_user_id, v.author_key_id, v.author, v.created_at
	FROM template_versions v`

// noVersion is the error of a missing version: errors.Is finds both
// ErrNoVersion and db.ErrNotFound in it.
func noVersion(slug string, n int) error {
	return fmt.Errorf("templates: %s version %d: %w (%w)", slug, n, ErrNoVersion, db.ErrNotFound)
}

// getTemplate returns the template slug of teamID; another team's is db.ErrNotFound.
func getTemplate(ctx context.Context, q db.Queryer, teamID int64, slug string) (Template, error) {
	var t Template
	if err := db.Get(ctx, q, &t, templateSelect+` WHERE t.team_id = ? AND t.slug = ?`, teamID, slug); err != nil {
		return Template{}, fmt.Errorf("templates: get %s: %w", slug, err)
	}
	return t, nil
}

// getVersion returns version n of the template t.
func getVersion(ctx context.Context, q db.Queryer, t Template, n int) (Version, error) {
	var v Version
	err := db.Get(ctx, q, &v, versionSelect+` WHERE v.template_id = ? AND v.version = ?`, t.ID, n)
	switch {
	case errors.Is(err, db.ErrNotFound):
		return Version{}, noVersion(t.Slug, n)
	case err != nil:
		return Version{}, fmt.Errorf("templates: %s version %d: %w", t.Slug, n, err)
	}
	return v, nil
}

// LoadVersion returns the template slug of teamID with its version n (0
// means the current one), without a permission check: for callers that
// have made their own, such as deployments.
func LoadVersion(ctx context.Context, q db.Queryer, teamID int64, slug string, n int) (Template, Version, error) {
	t, err := getTemplate(ctx, q, teamID, slug)
	if err != nil {
		return Template{}, Version{}, err
	}
	if n == 0 {
		n = t.CurrentVersion
	}
	v, err := getVersion(ctx, q, t, n)
	if err != nil {
		return Template{}, Version{}, err
	}
	return t, v, nil
}

// insertTemplate writes a new template of teamID with spec as its version 1.
func insertTemplate(ctx context.Context, q db.Queryer, teamID int64, spec Spec, note string, actor access.Actor, now time.Time) (Template, Version, error) {
	t := Template{TeamID: teamID, Slug: spec.Slug, Name: spec.Name, Description: spec.Description,
		CurrentVersion: 1, LatestVersion: 1, CreatedAt: now, UpdatedAt: now}
	err := db.Get(ctx, q, &t.ID, `INSERT INTO templates (team_id, slug, name, description, current_version, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`, teamID, spec.Slug, spec.Name, spec.Description, 1, now, now)
	if err != nil {
		return Template{}, Version{}, fmt.Errorf("templates: create %s: %w", spec.Slug, err)
	}
	v, err := insertVersion(ctx, q, t, 1, spec, note, actor, now)
	if err != nil {
		return Template{}, Version{}, err
	}
	return t, v, nil
}

// insertVersion writes spec as version n of t, with its author's name as it is now.
func insertVersion(ctx context.Context, q db.Queryer, t Template, n int, spec Spec, note string, actor access.Actor, now time.Time) (Version, error) {
	inputs := spec.Inputs
	if inputs == nil {
		inputs = []Input{}
	}
	inputsJSON, err := json.Marshal(inputs)
	if err != nil {
		return Version{}, fmt.Errorf("templates: encode inputs: %w", err)
	}
	planJSON, err := json.Marshal(spec.Plan)
	if err != nil {
		return Version{}, fmt.Errorf("templates: encode plan: %w", err)
	}
	var userID, keyID *int64
	if actor.UserID != 0 {
		userID = &actor.UserID
	}
	if actor.APIKeyID != 0 {
		keyID = &actor.APIKeyID
	}
	var id int64
	err = db.Get(ctx, q, &id, `INSERT INTO template_versions (template_id, version, name, description, inputs, plan, note,
		author_user_id, author_key_id, author, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?,
			COALESCE((SELECT email FROM users WHERE id = ?), (SELECT name FROM api_keys WHERE id = ?), ''), ?) RETURNING id`,
		t.ID, n, spec.Name, spec.Description, string(inputsJSON), string(planJSON), note,
		userID, keyID, userID, keyID, now)
	if err != nil {
		return Version{}, fmt.Errorf("templates: %s version %d: %w", t.Slug, n, err)
	}
	return getVersion(ctx, q, t, n)
}
