package runs

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/ai"
	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/billing"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/live"
	"github.com/nofxhq/nofx/internal/plan"
	"github.com/nofxhq/nofx/internal/validation"
)

// IdempotencyWindow is how long an Idempotency-Key keeps returning the run
// it first created.
const IdempotencyWindow = 24 * time.Hour

// maxInputsSize caps the JSON size of a run's inputs.
const maxInputsSize = 64 << 10

// StepJob asks the engine to work one step, at a time (zero means now).
type StepJob struct {
	RunID  int64
	StepID int64
	At     time.Time
}

// Scheduler enqueues step jobs in the transaction that makes the steps
// ready, so that a step is never ready without a job, nor a job without its
// step. It returns the jobs' ids, in order.
type Scheduler interface {
	Schedule(ctx context.Context, tx *sqlx.Tx, jobs []StepJob) ([]int64, error)
}

// Service creates runs and moves them through their lifecycle.
type Service struct {
	DB        *db.DB
	Scheduler Scheduler
	Broker    live.Broker
	Providers *ai.Registry
	// Keys tells which providers a team saved a key of its own for. With
	// it, Create refuses a new run whose LLM step names a provider that
	// needs a key neither the instance nor the team has: the run would only
	// fail at that step. Nil skips the check.
	Keys interface {
		Saved(ctx context.Context, teamID int64) ([]string, error)
	}
	// RetryBase and RetryMax shape the backoff between attempts of a step:
	// RetryBase doubled after each failed attempt, at most RetryMax.
	RetryBase time.Duration
	RetryMax  time.Duration
	// ListCache keeps the API's encoded runs list pages (ListEncoded); nil
	// reads every page.
	ListCache *ListCache
}

// CreateInput is what a new run is made from.
type CreateInput struct {
	Plan           plan.Plan
	Inputs         map[string]any
	Template       string // the slug of the template the plan came from
	IdempotencyKey string
	RerunOf        int64
	// TemplateVersion is the version of Template the plan came from.
	TemplateVersion int
	// DeploymentID, TriggeredBy and ScheduledFor record which deployment
	// started the run, how, and for which schedule tick. At most one run
	// exists per deployment and tick.
	DeploymentID int64
	TriggeredBy  string
	ScheduledFor *time.Time
	// Within, when set, runs first in the transaction that creates the run;
	// its error aborts the run, leaving nothing written. Deployments use it
	// to claim a schedule tick or a webhook delivery exactly once.
	Within func(ctx context.Context, tx *sqlx.Tx) error
	// After, when set, runs last in the transaction that creates the run,
	// with the run as written; its error aborts the run, leaving nothing
	// written. Comparisons use it to record themselves with their replay.
	After func(ctx context.Context, tx *sqlx.Tx, run Run) error
	// Replay makes the run a comparison's replay: its steps' prompts are
	// used as written, it is no run of the lists, and it counts toward no
	// runs limit (its steps' spend counts as any step's).
	Replay bool
	// RequestHash is the RequestHash of the request the run is started
	// from, stored with IdempotencyKey: the same key with another request
	// is ErrIdempotencyKeyReused. Empty means a hash of the plan and inputs.
	RequestHash string
}

// validate checks the plan, its providers and its inputs before anything is
// written. Problems are keyed by field: goal, steps[i].field, inputs.name.
func (s *Service) validate(in *CreateInput) error {
	in.Plan.Normalize()
	checked := in.Plan
	if in.Replay {
		// A replay's prompts are the original's as rendered: text, not a
		// template, and as long as the original made them.
		checked.Steps = append([]plan.StepSpec(nil), in.Plan.Steps...)
		for i := range checked.Steps {
			checked.Steps[i].Prompt = "replayed as written"
		}
	}
	errs := s.CheckPlan(checked)
	if in.Inputs == nil {
		in.Inputs = map[string]any{}
	}
	for _, name := range in.Plan.InputsUsed() {
		if in.Replay {
			break // its prompts are used as written: they read no input
		}
		if _, ok := in.Inputs[name]; !ok {
			errs.Add("inputs."+name, "The plan uses this input; give it a value.")
		}
	}
	// Every value accepted must read back: no number JSON cannot hold.
	if plan.CheckNumbers(errs, "inputs", in.Inputs) == 0 {
		if b, err := json.Marshal(in.Inputs); err != nil || len(b) > maxInputsSize {
			errs.Add("inputs", fmt.Sprintf("Inputs must be JSON of at most %d KiB.", maxInputsSize>>10))
		}
	}
	if len(in.IdempotencyKey) > 255 {
		errs.Add("idempotency_key", "Use at most 255 characters.")
	}
	return errs.Err()
}

// CheckPlan reports every problem with a normalized plan, its providers and
// models included, keyed as Plan.Validate keys them; the result is never nil.
func (s *Service) CheckPlan(p plan.Plan) validation.Errors {
	errs := p.Validate()
	if errs == nil {
		errs = validation.Errors{}
	}
	for i, step := range p.Steps {
		if step.Kind != plan.KindLLM || step.Provider == "" {
			continue
		}
		prefix := fmt.Sprintf("steps[%d].", i)
		p, ok := s.Providers.Get(step.Provider)
		if !ok {
			errs.Add(prefix+"provider", fmt.Sprintf("unknown provider %q: use one of %s", step.Provider, strings.Join(s.Providers.Names(), ", ")))
			continue
		}
		for field, msg := range p.ValidateStep(step.Model, step.Options) {
			errs.Add(prefix+field, msg)
		}
		for j, fb := range step.Fallback {
			fp, ok := s.Providers.Get(fb.Provider)
			if !ok {
				errs.Add(fmt.Sprintf("%sfallback[%d].provider", prefix, j), fmt.Sprintf("unknown provider %q", fb.Provider))
				continue
			}
			if msg, bad := fp.ValidateStep(fb.Model, nil)["model"]; bad {
				errs.Add(fmt.Sprintf("%sfallback[%d].model", prefix, j), msg)
			}
		}
	}
	return errs
}

// Create validates a plan and writes the run, its steps, its first event and
// the jobs of its ready steps in one transaction. With an Idempotency-Key
// seen in the last 24 hours for the team, it returns that run instead, and
// replayed is true; the key seen with another request is
// ErrIdempotencyKeyReused, and nothing is written.
func (s *Service) Create(ctx context.Context, actor access.Actor, in CreateInput) (run Run, replayed bool, err error) {
	if err := actor.Can(access.RunsCreate); err != nil {
		return Run{}, false, err
	}
	if err := s.validate(&in); err != nil {
		return Run{}, false, err
	}
	planJSON, err := json.Marshal(in.Plan)
	if err != nil {
		return Run{}, false, fmt.Errorf("runs: encode plan: %w", err)
	}
	inputsJSON, err := json.Marshal(in.Inputs)
	if err != nil {
		return Run{}, false, fmt.Errorf("runs: encode inputs: %w", err)
	}
	var hash string // stored only with a key
	if in.IdempotencyKey != "" {
		hash = createHash(in, planJSON, inputsJSON)
	}
	run, replayed, err = s.create(ctx, actor, in, planJSON, inputsJSON, hash)
	if err != nil && in.IdempotencyKey != "" && db.IsUniqueViolation(err) {
		// Another request took the key first, between our look-up and our
		// insert (PostgreSQL): look again, to replay its run or refuse.
		run, replayed, err = s.create(ctx, actor, in, planJSON, inputsJSON, hash)
	}
	if err != nil {
		return Run{}, false, err
	}
	return run, replayed, nil
}

// create is Create's transaction, once the run is validated and encoded:
// the idempotency claim (replayOf), the run (insertRun), its steps
// (insertSteps), and its first event and audit entry (recordCreate).
func (s *Service) create(ctx context.Context, actor access.Actor, in CreateInput, planJSON, inputsJSON []byte, hash string) (run Run, replayed bool, err error) {
	var runID int64
	err = s.transact(ctx, func(t *txn) error {
		q, now := t.tx, t.now
		// The run as this transaction leaves it: queued, even when a worker
		// takes its first step the moment it commits.
		t.after = func() error {
			// Counted toward the team's plan last, so that the team's
			// usage row is locked only as the transaction ends (creates of
			// one team wait for each other there); a run past its limits
			// still writes nothing, as all of this rolls back.
			if !in.Replay && !replayed {
				if err := billing.CountRun(ctx, q, actor.TeamID, now); err != nil {
					return err
				}
			}
			if replayed {
				var err error
				if run, err = getRun(ctx, q, actor.TeamID, runID); err != nil {
					return err
				}
			} else {
				run = t.state.run // as settled and written: reading it back would cost a round trip
			}
			if in.After != nil && !replayed {
				return in.After(ctx, t.tx, run)
			}
			return nil
		}
		if in.Within != nil {
			if err := in.Within(ctx, t.tx); err != nil {
				return err
			}
		}
		if in.IdempotencyKey != "" {
			id, err := replayOf(ctx, q, actor.TeamID, in.IdempotencyKey, hash, now)
			if err != nil {
				return err
			}
			if id != 0 {
				runID, replayed = id, true
				return nil
			}
		}
		if err := s.refuseKeyless(ctx, actor.TeamID, in.Plan); err != nil {
			return err // after the replay: a run already made is returned as it was
		}
		st, err := insertRun(ctx, q, actor, in, planJSON, inputsJSON, hash, now)
		if err != nil {
			return err
		}
		runID = st.run.ID
		if err := insertSteps(ctx, q, st, in.Plan.Steps); err != nil {
			return err
		}
		t.runID, t.state = runID, st
		recordCreate(ctx, st, actor, in)
		return nil
	})
	if err != nil {
		return Run{}, false, err
	}
	return run, replayed, nil
}

// refuseKeyless refuses a plan whose LLM steps call a provider that needs
// a key neither the instance nor the team has (see Service.Keys). The
// team's saved keys are read only when a step needs one.
func (s *Service) refuseKeyless(ctx context.Context, teamID int64, p plan.Plan) error {
	if s.Keys == nil || s.Providers == nil {
		return nil
	}
	var saved []string
	read := false
	errs := validation.Errors{}
	for i, step := range p.Steps {
		provider, ok := s.Providers.Get(step.Provider)
		if step.Kind != plan.KindLLM || !ok || !ai.NeedsKey(provider) {
			continue
		}
		if !read {
			var err error
			if saved, err = s.Keys.Saved(ctx, teamID); err != nil {
				return err
			}
			read = true
		}
		if !slices.Contains(saved, step.Provider) {
			errs.Add(fmt.Sprintf("steps[%d].provider", i), step.Provider+" has no API key here: add one under Team → Provider keys, or pick another provider.")
		}
	}
	return errs.Err()
}

// insertRun writes a new run, queued, and returns it as written, for the
// transaction's settle: read back, it would cost more round trips.
func insertRun(ctx context.Context, q *sqlx.Tx, actor access.Actor, in CreateInput, planJSON, inputsJSON []byte, hash string, now time.Time) (*state, error) {
	var key, keyHash, rerunOf any
	if in.IdempotencyKey != "" {
		key, keyHash = in.IdempotencyKey, hash
	}
	if in.RerunOf != 0 {
		rerunOf = in.RerunOf
	}
	var deploymentID any
	if in.DeploymentID != 0 {
		deploymentID = in.DeploymentID
	}
	var userID, keyID any
	if actor.UserID != 0 {
		userID = actor.UserID
	}
	if actor.APIKeyID != 0 {
		keyID = actor.APIKeyID
	}
	// The names behind the ids come back with the new id, as runSelect
	// reads them.
	var inserted struct {
		ID            int64  `db:"id"`
		CreatedBy     string `db:"created_by"`
		DeploymentEnv string `db:"deployment_environment"`
	}
	err := db.Get(ctx, q, &inserted, `INSERT INTO runs (team_id, status, goal, template, plan, inputs, created_by_user_id,
		created_by_key_id, rerun_of, idempotency_key, idempotency_hash, steps_total, created_at, updated_at,
		template_version, deployment_id, triggered_by, scheduled_for, replay)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		RETURNING id,
			COALESCE((SELECT email FROM users WHERE id = runs.created_by_user_id), (SELECT name FROM api_keys WHERE id = runs.created_by_key_id), runs.triggered_by, '') AS created_by,
			COALESCE((SELECT environment FROM deployments WHERE id = runs.deployment_id), '') AS deployment_environment`,
		actor.TeamID, RunQueued, in.Plan.Goal, in.Template, string(planJSON), string(inputsJSON), userID,
		keyID, rerunOf, key, keyHash, len(in.Plan.Steps), now, now,
		in.TemplateVersion, deploymentID, in.TriggeredBy, in.ScheduledFor, in.Replay)
	if err != nil {
		return nil, fmt.Errorf("runs: create: %w", err)
	}
	st := &state{run: Run{ID: inserted.ID, TeamID: actor.TeamID, Status: RunQueued, Goal: in.Plan.Goal, Template: in.Template,
		PlanJSON: string(planJSON), InputsJSON: string(inputsJSON), StepsTotal: len(in.Plan.Steps),
		CreatedAt: now, UpdatedAt: now, TemplateVersion: in.TemplateVersion, TriggeredBy: in.TriggeredBy, ScheduledFor: in.ScheduledFor, Replay: in.Replay,
		CreatedByUserID: sql.NullInt64{Int64: actor.UserID, Valid: actor.UserID != 0},
		CreatedByKeyID:  sql.NullInt64{Int64: actor.APIKeyID, Valid: actor.APIKeyID != 0},
		RerunOf:         sql.NullInt64{Int64: in.RerunOf, Valid: in.RerunOf != 0},
		IdempotencyKey:  sql.NullString{String: in.IdempotencyKey, Valid: in.IdempotencyKey != ""},
		DeploymentID:    sql.NullInt64{Int64: in.DeploymentID, Valid: in.DeploymentID != 0},
		CreatedBy:       inserted.CreatedBy, DeploymentEnv: inserted.DeploymentEnv,
	}, byName: map[string]*Step{}, now: now}
	return st, nil
}

// insertSteps writes the run's steps, queued, into its state.
func insertSteps(ctx context.Context, q *sqlx.Tx, st *state, specs []plan.StepSpec) error {
	for i, spec := range specs {
		needs, _ := json.Marshal(orEmpty(spec.Needs))
		options, _ := json.Marshal(orEmptyMap(spec.Options))
		fallback := spec.Fallback
		if fallback == nil {
			fallback = []plan.Fallback{}
		}
		fallbackJSON, _ := json.Marshal(fallback)
		step := &Step{RunID: st.run.ID, Position: i, Name: spec.Name, Kind: spec.Kind, Status: StepQueued, NeedsJSON: string(needs),
			Provider: spec.Provider, Model: spec.Model, Prompt: spec.Prompt, OptionsJSON: string(options), FallbackJSON: string(fallbackJSON),
			MaxAttempts: spec.MaxAttempts, TimeoutMS: spec.TimeoutDuration().Milliseconds(), PatienceMS: spec.PatienceDuration().Milliseconds(), UpdatedAt: st.now}
		err := db.Get(ctx, q, &step.ID, `INSERT INTO steps (run_id, position, name, kind, status, needs, provider, model, prompt,
			options, fallback, max_attempts, timeout_ms, patience_ms, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			st.run.ID, i, step.Name, step.Kind, step.Status, step.NeedsJSON, step.Provider, step.Model, step.Prompt,
			step.OptionsJSON, step.FallbackJSON, step.MaxAttempts, step.TimeoutMS, step.PatienceMS, st.now)
		if err != nil {
			return fmt.Errorf("runs: create step %s: %w", spec.Name, err)
		}
		st.steps = append(st.steps, step)
		st.byName[step.Name] = step
	}
	return nil
}

// recordCreate adds the run's first event and its audit entry to the
// transaction's writes.
func recordCreate(ctx context.Context, st *state, actor access.Actor, in CreateInput) {
	msg := "Run created"
	switch {
	case in.RerunOf != 0:
		msg = fmt.Sprintf("Run created as a rerun of run #%d", in.RerunOf)
	case in.TriggeredBy != "":
		msg = fmt.Sprintf("Run created by a deployment's %s trigger", in.TriggeredBy)
	}
	st.event("", "run.created", msg, &actor)
	summary := in.Plan.Goal
	if in.RerunOf != 0 {
		summary = fmt.Sprintf("rerun of #%d: %s", in.RerunOf, summary)
	}
	entry := audit.For(actor, "run.create", fmt.Sprintf("run #%d", st.run.ID), summary)
	if actor.UserID == 0 && actor.APIKeyID == 0 {
		entry.Actor = in.TriggeredBy // a webhook or a schedule
	}
	query, args := audit.Insert(ctx, entry)
	st.later(query, args...) // with the run's other writes
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func orEmptyMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// Get returns a run of the actor's team with its steps.
func (s *Service) Get(ctx context.Context, actor access.Actor, id int64) (Run, []Step, error) {
	if err := actor.Can(access.RunsRead); err != nil {
		return Run{}, nil, err
	}
	run, err := getRun(ctx, s.DB.Reader(), actor.TeamID, id)
	if err != nil {
		return Run{}, nil, err
	}
	steps, err := listSteps(ctx, s.DB.Reader(), id)
	return run, steps, err
}

// Events returns the run's timeline after the event afterID.
func (s *Service) Events(ctx context.Context, actor access.Actor, runID, afterID int64) ([]Event, error) {
	if err := actor.Can(access.RunsRead); err != nil {
		return nil, err
	}
	if _, err := getRun(ctx, s.DB.Reader(), actor.TeamID, runID); err != nil {
		return nil, err
	}
	return listEvents(ctx, s.DB.Reader(), runID, afterID)
}

// TeamOfMember returns the team of run id when userID is a member of it,
// whichever team they act in now (for a link to a run of their other
// team); else db.ErrNotFound.
func (s *Service) TeamOfMember(ctx context.Context, userID, id int64) (int64, error) {
	var teamID int64
	err := db.Get(ctx, s.DB.Reader(), &teamID, `SELECT r.team_id FROM runs r
		JOIN memberships m ON m.team_id = r.team_id AND m.user_id = ? WHERE r.id = ?`, userID, id)
	if err != nil {
		return 0, fmt.Errorf("runs: team of %d: %w", id, err)
	}
	return teamID, nil
}

// List returns one page of the team's runs, newest first, without their
// plans and inputs.
func (s *Service) List(ctx context.Context, actor access.Actor, f ListFilter) (Page, error) {
	if err := actor.Can(access.RunsRead); err != nil {
		return Page{}, err
	}
	return listRuns(ctx, s.DB.Reader(), actor.TeamID, f)
}

// TemplatesUsed lists the templates the team's runs came from.
func (s *Service) TemplatesUsed(ctx context.Context, actor access.Actor) ([]string, error) {
	if err := actor.Can(access.RunsRead); err != nil {
		return nil, err
	}
	return templatesUsed(ctx, s.DB.Reader(), actor.TeamID)
}

// Cancel stops a run: queued and waiting steps never start, running ones
// see their context cancelled.
func (s *Service) Cancel(ctx context.Context, actor access.Actor, runID int64) error {
	if err := actor.Can(access.RunsCancel); err != nil {
		return err
	}
	return s.changeRun(ctx, actor, runID, func(q db.Queryer, st *state) error {
		if !st.run.CanCancel() {
			return &ConflictError{fmt.Sprintf("Run #%d has already %s.", runID, st.run.Status)}
		}
		for _, step := range st.steps {
			switch step.Status {
			case StepQueued, StepWaiting, StepRunning:
				if err := st.setStep(ctx, q, step, stepUpdate{status: StepCancelled, error: "cancelled", finish: true, clearLease: true}); err != nil {
					return err
				}
			}
		}
		_, err := db.Exec(ctx, q, `UPDATE runs SET status = ?, finished_at = ?, updated_at = ? WHERE id = ?`, RunCancelled, st.now, st.now, runID)
		if err != nil {
			return fmt.Errorf("runs: cancel %d: %w", runID, err)
		}
		st.run.Status, st.run.FinishedAt = RunCancelled, &st.now
		st.event("", "run.cancelled", "Run cancelled", &actor)
		return audit.Record(ctx, q, audit.For(actor, "run.cancel", fmt.Sprintf("run #%d", runID), ""))
	})
}

// Retry resumes a failed or cancelled run from the steps that did not
// succeed, keeping the outputs of those that did.
func (s *Service) Retry(ctx context.Context, actor access.Actor, runID int64) error {
	if err := actor.Can(access.RunsRetry); err != nil {
		return err
	}
	return s.changeRun(ctx, actor, runID, func(q db.Queryer, st *state) error {
		if !st.run.CanRetry() {
			return &ConflictError{fmt.Sprintf("Only failed or cancelled runs can be retried; run #%d is %s.", runID, st.run.Status)}
		}
		for _, step := range st.steps {
			if step.Status == StepSucceeded {
				continue
			}
			_, err := db.Exec(ctx, q, `UPDATE steps SET status = ?, attempt = 0, error = '', output = '', rendered_prompt = '',
				enqueued = ?, job_id = NULL, lease_token = '', lease_expires_at = NULL, decided_by = NULL, decision_comment = '', waiting_on = '',
				started_at = NULL, finished_at = NULL, updated_at = ? WHERE id = ?`, StepQueued, false, st.now, step.ID)
			if err != nil {
				return fmt.Errorf("runs: reset step %s: %w", step.Name, err)
			}
			step.Status, step.Attempt, step.Error, step.Output, step.Enqueued, step.WaitingOn = StepQueued, 0, "", "", false, ""
			step.StartedAt, step.FinishedAt = nil, nil
		}
		_, err := db.Exec(ctx, q, `UPDATE runs SET status = ?, error = '', finished_at = NULL, updated_at = ? WHERE id = ?`,
			RunQueued, st.now, runID)
		if err != nil {
			return fmt.Errorf("runs: reset run: %w", err)
		}
		st.run.Status, st.run.Error, st.run.FinishedAt = RunQueued, "", nil
		st.event("", "run.retried", "Run retried from its unfinished steps", &actor)
		return audit.Record(ctx, q, audit.For(actor, "run.retry", fmt.Sprintf("run #%d", runID), ""))
	})
}

// Rerun starts a new run from the same plan and inputs, linked to the
// original.
func (s *Service) Rerun(ctx context.Context, actor access.Actor, runID int64) (Run, error) {
	if err := actor.Can(access.RunsCreate); err != nil {
		return Run{}, err
	}
	orig, err := getRun(ctx, s.DB, actor.TeamID, runID)
	if err != nil {
		return Run{}, err
	}
	if orig.Replay {
		return Run{}, &ConflictError{Message: "This run is a comparison's replay: compare the original step again instead."}
	}
	plan, err := orig.Plan()
	if err != nil {
		return Run{}, fmt.Errorf("runs: decode plan of %d: %w", runID, err)
	}
	inputs, err := orig.Inputs()
	if err != nil {
		return Run{}, fmt.Errorf("runs: decode inputs of %d: %w", runID, err)
	}
	run, _, err := s.Create(ctx, actor, CreateInput{Plan: plan, Inputs: inputs, Template: orig.Template, RerunOf: orig.ID})
	return run, err
}

// Decide approves or rejects a waiting approval step, with a comment.
func (s *Service) Decide(ctx context.Context, actor access.Actor, runID int64, stepName string, approve bool, comment string) error {
	if err := actor.Can(access.RunsApprove); err != nil {
		return err
	}
	comment = strings.TrimSpace(comment)
	if len(comment) > 2000 {
		return validation.Errors{"comment": "Use at most 2000 characters."}
	}
	return s.changeRun(ctx, actor, runID, func(q db.Queryer, st *state) error {
		step, ok := st.byName[stepName]
		if !ok {
			return fmt.Errorf("runs: step %q: %w", stepName, db.ErrNotFound)
		}
		if step.Kind != plan.KindApproval || step.Status != StepWaiting {
			return &ConflictError{fmt.Sprintf("Step %s is not waiting for approval.", stepName)}
		}
		who := "someone"
		if actor.UserID != 0 {
			who = "a team member"
		}
		var decidedBy any
		if actor.UserID != 0 {
			decidedBy = actor.UserID
		}
		if _, err := db.Exec(ctx, q, `UPDATE steps SET decided_by = ?, decision_comment = ? WHERE id = ?`, decidedBy, comment, step.ID); err != nil {
			return fmt.Errorf("runs: record decision: %w", err)
		}
		if approve {
			msg := "Approved"
			if comment != "" {
				msg += ": " + comment
			}
			if err := st.setStep(ctx, q, step, stepUpdate{status: StepSucceeded, output: comment, finish: true}); err != nil {
				return err
			}
			st.event(stepName, "step.approved", msg, &actor)
			return audit.Record(ctx, q, audit.For(actor, "run.approve", fmt.Sprintf("run #%d step %s", runID, stepName), comment))
		}
		reason := "Rejected by " + who
		if comment != "" {
			reason = "Rejected: " + comment
		}
		if err := st.setStep(ctx, q, step, stepUpdate{status: StepFailed, error: reason, finish: true}); err != nil {
			return err
		}
		st.event(stepName, "step.rejected", reason, &actor)
		return audit.Record(ctx, q, audit.For(actor, "run.reject", fmt.Sprintf("run #%d step %s", runID, stepName), comment))
	})
}
