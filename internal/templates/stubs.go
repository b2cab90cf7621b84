package templates

// This file holds the package's contract while it is being written: each
// function here moves to its real file, implemented, and this file goes.

import (
	"context"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/validation"
)

var errTODO = errNotYet{}

type errNotYet struct{}

func (errNotYet) Error() string { return "templates: not implemented yet" }

// Service keeps a team's templates and their versions.
type Service struct {
	DB   *db.DB
	Runs *runs.Service // checks plans (providers, models) and starts runs
}

// List returns the team's templates, by name.
func (s *Service) List(ctx context.Context, actor access.Actor) ([]Template, error) {
	return nil, errTODO
}

// Get returns a template of the actor's team with its current version;
// another team's template is db.ErrNotFound.
func (s *Service) Get(ctx context.Context, actor access.Actor, slug string) (Template, Version, error) {
	return Template{}, Version{}, errTODO
}

// Version returns a template with its version n (0 means the current one).
func (s *Service) Version(ctx context.Context, actor access.Actor, slug string, n int) (Template, Version, error) {
	return Template{}, Version{}, errTODO
}

// Versions returns a template and its versions, newest first.
func (s *Service) Versions(ctx context.Context, actor access.Actor, slug string) (Template, []Version, error) {
	return Template{}, nil, errTODO
}

// Check normalizes spec and reports what blocks saving it (errs, keyed
// "slug", "name", "inputs[i].field", "goal", "steps[i].field") and what
// does not (warnings, such as a declared input no prompt uses).
func (s *Service) Check(spec *Spec) (errs, warnings validation.Errors) {
	return validation.Errors{"slug": errTODO.Error()}, nil
}

// Create saves a new template as its version 1.
func (s *Service) Create(ctx context.Context, actor access.Actor, spec Spec, note string) (Template, Version, error) {
	return Template{}, Version{}, errTODO
}

// Save makes spec the template's new current version, with a change note.
// When spec equals the current version, nothing is written and changed is false.
func (s *Service) Save(ctx context.Context, actor access.Actor, slug string, spec Spec, note string) (v Version, changed bool, err error) {
	return Version{}, false, errTODO
}

// Rollback makes version n current again.
func (s *Service) Rollback(ctx context.Context, actor access.Actor, slug string, n int) (Template, error) {
	return Template{}, errTODO
}

// Diff returns the line difference between two versions' exported JSON.
func (s *Service) Diff(ctx context.Context, actor access.Actor, slug string, from, to int) ([]DiffLine, error) {
	return nil, errTODO
}

// Delete removes a template, its versions and its deployments.
func (s *Service) Delete(ctx context.Context, actor access.Actor, slug string) error {
	return errTODO
}

// StartRun starts a run from the template's current version with values
// for its inputs, checked field by field ("inputs.name").
func (s *Service) StartRun(ctx context.Context, actor access.Actor, slug string, values map[string]any, idempotencyKey string) (runs.Run, bool, error) {
	return runs.Run{}, false, errTODO
}

// LoadVersion returns the template slug of teamID with its version n (0
// means the current one), without a permission check: for callers that
// have made their own, such as deployments.
func LoadVersion(ctx context.Context, q db.Queryer, teamID int64, slug string, n int) (Template, Version, error) {
	return Template{}, Version{}, errTODO
}

// Spec decodes the version's content.
func (v Version) Spec(slug string) (Spec, error) {
	return Spec{}, errTODO
}

// RunInput checks values against the version's inputs (field by field,
// "inputs.name"; defaults filled in, numbers converted) and returns what
// runs.Service.Create needs to start it.
func (v Version) RunInput(slug string, values map[string]any) (runs.CreateInput, error) {
	return runs.CreateInput{}, errTODO
}

// Parse decodes a spec strictly from JSON (unknown fields are an error), as
// the JSON view and the API import it; problems come back as
// validation.Errors under "json".
func Parse(data []byte) (Spec, error) {
	return Spec{}, errTODO
}

// Export encodes the spec as indented JSON, the format Parse reads.
func (s Spec) Export() []byte {
	return nil
}

// Values checks submitted values (JSON values, or strings from a form)
// against the declared inputs and returns the run's inputs: defaults filled
// in, numbers as float64. Problems are keyed "inputs.name".
func (s Spec) Values(raw map[string]any) (map[string]any, error) {
	return nil, errTODO
}

// SampleInputs returns values to preview the spec with: each input's
// default, or a sample made from its label.
func SampleInputs(s Spec) map[string]any {
	return nil
}

// Preview renders every step's prompt with sample inputs; outputs of
// earlier steps appear as placeholders.
func Preview(s Spec, sample map[string]any) []PreviewStep {
	return nil
}

// DiffSpecs returns the line difference between two specs' exported JSON.
func DiffSpecs(older, newer Spec) []DiffLine {
	return nil
}

// Starters returns the templates every new team starts with.
func Starters() []Spec {
	return nil
}

// SeedStarters saves the starter templates into a new team, in the
// transaction that creates the team.
func SeedStarters(ctx context.Context, q db.Queryer, teamID int64, actor access.Actor) error {
	return errTODO
}
