// Package comparisons replays a finished run's LLM step on other models:
// each candidate is a real step of a replay run, so retries, circuits,
// patience, team concurrency, spend limits and usage all apply, and the
// original run is left as it was.
package comparisons

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/plan"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/validation"
)

// MaxCandidates is how many models one comparison replays a step on.
const MaxCandidates = 4

// Original names the original step among a comparison's outputs.
const Original = "original"

// CandidateSpec is a model to replay a step on.
type CandidateSpec struct {
	Provider string `json:"provider"`
	Model    string `json:"model"`
}

// Comparison is a step of a run replayed on other models.
type Comparison struct {
	ID              int64         `db:"id"`
	TeamID          int64         `db:"team_id"`
	RunID           int64         `db:"run_id"`
	StepName        string        `db:"step_name"`
	ReplayRunID     int64         `db:"replay_run_id"`
	Template        string        `db:"template"`
	TemplateVersion int           `db:"template_version"`
	Preferred       string        `db:"preferred"` // Original, a candidate's name, or ""
	PreferredAt     *time.Time    `db:"preferred_at"`
	CreatedByUserID sql.NullInt64 `db:"created_by_user_id"`
	CreatedAt       time.Time     `db:"created_at"`
	CreatedBy       string        `db:"created_by"`
	Status          string        `db:"status"` // the replay's
	// The original step as it was when compared.
	OriginalProvider     string `db:"original_provider"`
	OriginalModel        string `db:"original_model"`
	OriginalStatus       string `db:"original_status"`
	OriginalOutput       string `db:"original_output"`
	OriginalError        string `db:"original_error"`
	OriginalInputTokens  int64  `db:"original_input_tokens"`
	OriginalOutputTokens int64  `db:"original_output_tokens"`
	OriginalCostMicros   int64  `db:"original_cost_micros"`
	OriginalDurationMS   int64  `db:"original_duration_ms"`
}

// Candidate is one output of a comparison: the original step's or a
// replay's, with what it cost and took.
type Candidate struct {
	Name         string
	Provider     string
	Model        string
	Status       string
	Output       string
	Error        string
	InputTokens  int64
	OutputTokens int64
	CostMicros   int64
	Duration     time.Duration
	Finished     bool
}

// View is a comparison with the original and its candidates.
type View struct {
	Comparison
	Original   Candidate
	Candidates []Candidate
}

// Done reports whether every candidate finished.
func (v View) Done() bool {
	for _, c := range v.Candidates {
		if !c.Finished {
			return false
		}
	}
	return true
}

// Service creates and reads comparisons.
type Service struct {
	DB   *db.DB
	Runs *runs.Service
}

const comparisonSelect = `SELECT c.id, c.team_id, c.run_id, c.step_name, c.replay_run_id, c.template, c.template_version,
	c.preferred, c.preferred_at, c.created_by_user_id, c.created_at,
	c.original_provider, c.original_model, c.original_status, c.original_output, c.original_error,
	c.original_input_tokens, c.original_output_tokens, c.original_cost_micros, c.original_duration_ms,
	COALESCE(u.email, k.name, '') AS created_by, r.status
	FROM comparisons c JOIN runs r ON r.id = c.replay_run_id
	LEFT JOIN users u ON u.id = c.created_by_user_id LEFT JOIN api_keys k ON k.id = c.created_by_key_id`

// Create replays step stepName of the actor's finished run runID on each of
// cands (1 to MaxCandidates), with the step's exact rendered prompt, and its
// options on its own provider. Problems with the candidates are keyed
// candidates[i].provider and candidates[i].model. With an idempotency key
// (as runs take one), the same request within runs.IdempotencyWindow
// returns the first comparison, replayed true, and replays nothing again.
func (s *Service) Create(ctx context.Context, actor access.Actor, runID int64, stepName string, cands []CandidateSpec, key string) (c Comparison, replayed bool, err error) {
	if err := actor.Can(access.RunsCreate); err != nil {
		return Comparison{}, false, err
	}
	run, steps, err := s.Runs.Get(ctx, actor, runID)
	if err != nil {
		return Comparison{}, false, err
	}
	var orig *runs.Step
	for i := range steps {
		if steps[i].Name == stepName {
			orig = &steps[i]
		}
	}
	switch {
	case orig == nil:
		return Comparison{}, false, fmt.Errorf("comparisons: step %q of run %d: %w", stepName, runID, db.ErrNotFound)
	case run.Replay:
		return Comparison{}, false, &runs.ConflictError{Message: "This run is a comparison's replay: compare the original step instead."}
	case orig.Kind != plan.KindLLM:
		return Comparison{}, false, &runs.ConflictError{Message: "Only LLM steps can be compared on other models."}
	case !run.Finished() || !orig.Finished() || orig.RenderedPrompt == "":
		return Comparison{}, false, &runs.ConflictError{Message: "The step has not run yet: compare it once its run has finished."}
	}
	errs := validation.Errors{}
	if len(cands) == 0 || len(cands) > MaxCandidates {
		errs.Add("candidates", fmt.Sprintf("Give 1 to %d provider and model pairs.", MaxCandidates))
	}
	for i, c := range cands {
		if strings.TrimSpace(c.Provider) == "" {
			errs.Add(fmt.Sprintf("candidates[%d].provider", i), "Choose a provider.")
		}
		if strings.TrimSpace(c.Model) == "" {
			errs.Add(fmt.Sprintf("candidates[%d].model", i), "Choose a model.")
		}
	}
	if err := errs.Err(); err != nil {
		return Comparison{}, false, err
	}
	replay := plan.Plan{Goal: fmt.Sprintf("Compare step %s of run #%d", stepName, runID)}
	for i, c := range cands {
		spec := plan.StepSpec{Name: fmt.Sprintf("c%d", i+1), Kind: plan.KindLLM, Provider: strings.TrimSpace(c.Provider),
			Model: strings.TrimSpace(c.Model), Prompt: orig.RenderedPrompt, MaxAttempts: orig.MaxAttempts,
			Timeout: orig.Timeout().String(), Patience: orig.Patience().String()}
		if spec.Provider == orig.Provider {
			spec.Options = orig.Options()
		}
		replay.Steps = append(replay.Steps, spec)
	}
	var out Comparison
	replayRun, replayed, err := s.Runs.Create(ctx, actor, runs.CreateInput{
		Plan: replay, Replay: true, Template: run.Template, TemplateVersion: run.TemplateVersion, IdempotencyKey: key,
		After: func(ctx context.Context, tx *sqlx.Tx, replay runs.Run) error {
			var userID, keyID any
			if actor.UserID != 0 {
				userID = actor.UserID
			}
			if actor.APIKeyID != 0 {
				keyID = actor.APIKeyID
			}
			var id int64
			o := candidate(*orig, Original)
			err := db.Get(ctx, tx, &id, `INSERT INTO comparisons (team_id, run_id, step_name, replay_run_id, template, template_version,
				created_by_user_id, created_by_key_id, created_at, original_provider, original_model, original_status, original_output,
				original_error, original_input_tokens, original_output_tokens, original_cost_micros, original_duration_ms)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
				actor.TeamID, runID, stepName, replay.ID, run.Template, run.TemplateVersion, userID, keyID, db.Now(),
				o.Provider, o.Model, o.Status, o.Output, o.Error, o.InputTokens, o.OutputTokens, o.CostMicros, o.Duration.Milliseconds())
			if err != nil {
				return fmt.Errorf("comparisons: create: %w", err)
			}
			names := make([]string, len(cands))
			for i, c := range cands {
				names[i] = c.Provider + "/" + c.Model
			}
			out = Comparison{ID: id, TeamID: actor.TeamID, RunID: runID, StepName: stepName, ReplayRunID: replay.ID}
			return audit.Record(ctx, tx, audit.For(actor, "comparison.create", fmt.Sprintf("run #%d step %s", runID, stepName),
				"on "+strings.Join(names, ", ")))
		},
	})
	var verrs validation.Errors
	if errors.As(err, &verrs) {
		return Comparison{}, false, candidateErrors(verrs)
	}
	if err != nil {
		return Comparison{}, false, err
	}
	if replayed {
		// The key's run was this request's replay: its comparison was made
		// with it, in the same transaction. (The request hash tells a key
		// reused for another request, which runs.Create refuses.)
		out, err = s.byReplay(ctx, actor, replayRun.ID)
		if errors.Is(err, db.ErrNotFound) {
			return Comparison{}, false, runs.ErrIdempotencyKeyReused
		}
		if err != nil {
			return Comparison{}, false, err
		}
	}
	return out, replayed, nil
}

// byReplay is the actor's team's comparison whose replay is run runID.
func (s *Service) byReplay(ctx context.Context, actor access.Actor, runID int64) (Comparison, error) {
	var c Comparison
	err := db.Get(ctx, s.DB.Reader(), &c, `SELECT id, team_id, run_id, step_name, replay_run_id FROM comparisons
		WHERE replay_run_id = ? AND team_id = ?`, runID, actor.TeamID)
	if err != nil {
		return Comparison{}, fmt.Errorf("comparisons: of replay run %d: %w", runID, err)
	}
	return c, nil
}

// candidateErrors keys the replay plan's problems by candidate.
func candidateErrors(verrs validation.Errors) validation.Errors {
	out := validation.Errors{}
	for k, v := range verrs {
		if rest, ok := strings.CutPrefix(k, "steps["); ok {
			k = "candidates[" + rest
		}
		out[k] = v
	}
	return out
}

// Get returns comparison id of the actor's team with its candidates.
func (s *Service) Get(ctx context.Context, actor access.Actor, id int64) (View, error) {
	if err := actor.Can(access.RunsRead); err != nil {
		return View{}, err
	}
	var c Comparison
	if err := db.Get(ctx, s.DB.Reader(), &c, comparisonSelect+` WHERE c.id = ? AND c.team_id = ?`, id, actor.TeamID); err != nil {
		return View{}, fmt.Errorf("comparisons: get %d: %w", id, err)
	}
	// The original as it was when compared: a retry of its run would
	// change the step, and the candidates answered this one.
	v := View{Comparison: c, Original: Candidate{Name: Original, Provider: c.OriginalProvider, Model: c.OriginalModel,
		Status: c.OriginalStatus, Output: c.OriginalOutput, Error: c.OriginalError, InputTokens: c.OriginalInputTokens,
		OutputTokens: c.OriginalOutputTokens, CostMicros: c.OriginalCostMicros,
		Duration: time.Duration(c.OriginalDurationMS) * time.Millisecond, Finished: true}}
	_, replay, err := s.Runs.Get(ctx, actor, c.ReplayRunID)
	if err != nil {
		return View{}, err
	}
	for _, st := range replay {
		v.Candidates = append(v.Candidates, candidate(st, st.Name))
	}
	return v, nil
}

func candidate(st runs.Step, name string) Candidate {
	c := Candidate{Name: name, Provider: st.Provider, Model: st.Model, Status: st.Status, Output: st.Output, Error: st.Error,
		InputTokens: st.InputTokens, OutputTokens: st.OutputTokens, CostMicros: st.CostMicros, Finished: st.Finished()}
	if st.ServedBy != "" { // a fallback answered
		c.Provider, c.Model, _ = strings.Cut(st.ServedBy, "/")
	}
	if st.StartedAt != nil && st.FinishedAt != nil {
		c.Duration = st.FinishedAt.Sub(*st.StartedAt)
	}
	return c
}

// ForRun lists the comparisons of the actor's run runID, newest first.
func (s *Service) ForRun(ctx context.Context, actor access.Actor, runID int64) ([]Comparison, error) {
	return s.list(ctx, actor, `c.run_id = ?`, runID)
}

// ForTemplate lists the comparisons of the runs of the actor's template
// slug, newest first.
func (s *Service) ForTemplate(ctx context.Context, actor access.Actor, slug string) ([]Comparison, error) {
	return s.list(ctx, actor, `c.template = ?`, slug)
}

func (s *Service) list(ctx context.Context, actor access.Actor, where string, arg any) ([]Comparison, error) {
	if err := actor.Can(access.RunsRead); err != nil {
		return nil, err
	}
	var out []Comparison
	err := db.Select(ctx, s.DB.Reader(), &out, comparisonSelect+` WHERE c.team_id = ? AND `+where+` ORDER BY c.id DESC LIMIT 50`, actor.TeamID, arg)
	if err != nil {
		return nil, fmt.Errorf("comparisons: list: %w", err)
	}
	return out, nil
}

// Prefer marks the output a person prefers: Original or a candidate's name.
func (s *Service) Prefer(ctx context.Context, actor access.Actor, id int64, name string) error {
	if err := actor.Can(access.RunsCreate); err != nil {
		return err
	}
	v, err := s.Get(ctx, actor, id)
	if err != nil {
		return err
	}
	ok := name == Original
	for _, c := range v.Candidates {
		ok = ok || c.Name == name
	}
	if !ok {
		return validation.Errors{"preferred": "Choose the original or one of the candidates."}
	}
	var by any
	if actor.UserID != 0 {
		by = actor.UserID
	}
	return db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		err := db.ExecOne(ctx, tx, `UPDATE comparisons SET preferred = ?, preferred_by = ?, preferred_at = ? WHERE id = ? AND team_id = ?`,
			name, by, db.Now(), id, actor.TeamID)
		if err != nil {
			return fmt.Errorf("comparisons: prefer in %d: %w", id, err)
		}
		return audit.Record(ctx, tx, audit.For(actor, "comparison.prefer", fmt.Sprintf("comparison #%d", id), "preferred "+name))
	})
}

// Delete removes comparison id and its replay; candidates still running
// are cancelled first, so that their workers stop at once (a call already
// answered is recorded as any cancelled step's).
func (s *Service) Delete(ctx context.Context, actor access.Actor, id int64) error {
	if err := actor.Can(access.RunsCreate); err != nil {
		return err
	}
	v, err := s.Get(ctx, actor, id)
	if err != nil {
		return err
	}
	if !v.Done() {
		if err := s.Runs.Cancel(ctx, actor, v.ReplayRunID); err != nil && !errors.Is(err, runs.ErrConflict) {
			return err
		}
	}
	return db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		var c Comparison
		if err := db.Get(ctx, tx, &c, comparisonSelect+` WHERE c.id = ? AND c.team_id = ?`, id, actor.TeamID); err != nil {
			return fmt.Errorf("comparisons: delete %d: %w", id, err)
		}
		// The replay's rows go with it (the comparison too, by cascade).
		if err := db.ExecOne(ctx, tx, `DELETE FROM runs WHERE id = ? AND team_id = ? AND replay`, c.ReplayRunID, actor.TeamID); err != nil {
			return fmt.Errorf("comparisons: delete the replay of %d: %w", id, err)
		}
		return audit.Record(ctx, tx, audit.For(actor, "comparison.delete", fmt.Sprintf("comparison #%d", id),
			fmt.Sprintf("run #%d step %s", c.RunID, c.StepName)))
	})
}
