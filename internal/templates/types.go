// Package templates owns a team's templates: declared inputs and a plan,
// saved as immutable versions, validated, previewed, diffed, rolled back and
// started as runs. The deployments package pins their versions.
package templates

import (
	"database/sql"
	"errors"
	"time"

	"github.com/nofxhq/nofx/internal/plan"
)

// Input types.
const (
	InputText     = "text"
	InputLongText = "long_text"
	InputNumber   = "number"
	InputChoice   = "choice"
)

// InputTypes lists every input type, in the order forms offer them.
var InputTypes = []string{InputText, InputLongText, InputNumber, InputChoice}

// ErrNoVersion is asked for a version a template does not have.
var ErrNoVersion = errors.New("templates: no such version")

// Input is one input a template declares: what a person fills in to start a run.
type Input struct {
	Name     string   `json:"name"`
	Label    string   `json:"label,omitempty"`
	Type     string   `json:"type"`
	Required bool     `json:"required,omitempty"`
	Default  string   `json:"default,omitempty"` // a number's default is its decimal text
	Choices  []string `json:"choices,omitempty"` // choice only
}

// Spec is the content of a template: what the builder edits, a version
// freezes, and the JSON view and the API import and export.
type Spec struct {
	Slug        string    `json:"slug"`
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Inputs      []Input   `json:"inputs"`
	Plan        plan.Plan `json:"plan"`
}

// Template is a team's template, with the number of its current version.
type Template struct {
	ID             int64     `db:"id"`
	TeamID         int64     `db:"team_id"`
	Slug           string    `db:"slug"`
	Name           string    `db:"name"`
	Description    string    `db:"description"`
	CurrentVersion int       `db:"current_version"`
	LatestVersion  int       `db:"latest_version"`
	CreatedAt      time.Time `db:"created_at"`
	UpdatedAt      time.Time `db:"updated_at"`
}

// Version is one immutable save of a template.
type Version struct {
	ID           int64         `db:"id"`
	TemplateID   int64         `db:"template_id"`
	Number       int           `db:"version"`
	Name         string        `db:"name"`
	Description  string        `db:"description"`
	InputsJSON   string        `db:"inputs"`
	PlanJSON     string        `db:"plan"`
	Note         string        `db:"note"`
	AuthorUserID sql.NullInt64 `db:"author_user_id"`
	AuthorKeyID  sql.NullInt64 `db:"author_key_id"`
	Author       string        `db:"author"` // the user's email or the key's name when saved
	CreatedAt    time.Time     `db:"created_at"`
}

// PreviewStep is one step's prompt rendered with sample inputs.
type PreviewStep struct {
	Name     string
	Kind     string
	Prompt   string // as written
	Rendered string // with inputs and placeholder outputs of earlier steps filled in
	// Missing is the exact variable that has no value, such as
	// "inputs.topic", when rendering stopped there.
	Missing string
	// Error is any other problem with the prompt, such as bad template syntax.
	Error string
}

// DiffLine is one line of the difference between two versions' JSON.
type DiffLine struct {
	Op    byte // ' ' unchanged, '-' only in the older, '+' only in the newer
	Text  string
	OldNo int // line number in the older version, 0 for an added line
	NewNo int // line number in the newer version, 0 for a removed line
}

// StarterSummary is the slug of the one-step summary starter template.
const StarterSummary = "summary"
