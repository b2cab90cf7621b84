// Package runs owns runs, their steps and their event timelines: creating a
// run from a plan, moving steps through their states, and cancelling,
// retrying, rerunning and approving. The engine package executes the steps.
package runs

import (
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/nofxhq/nofx/internal/plan"
)

// Run statuses.
const (
	RunQueued    = "queued"
	RunRunning   = "running"
	RunWaiting   = "waiting"
	RunSucceeded = "succeeded"
	RunFailed    = "failed"
	RunCancelled = "cancelled"
)

// RunStatuses lists every run status, for filters.
var RunStatuses = []string{RunQueued, RunRunning, RunWaiting, RunSucceeded, RunFailed, RunCancelled}

// Step statuses.
const (
	StepQueued    = "queued"
	StepRunning   = "running"
	StepWaiting   = "waiting"
	StepSucceeded = "succeeded"
	StepFailed    = "failed"
	StepCancelled = "cancelled"
	StepTimedOut  = "timed_out"
	StepSkipped   = "skipped"
)

// Errors of the run lifecycle.
var (
	// ErrConflict is an action that does not fit the run's state, such as
	// cancelling a finished run.
	ErrConflict = errors.New("the run is not in a state that allows this")
	// ErrNotClaimable means a step job found its step already taken,
	// finished or cancelled: the job has nothing to do.
	ErrNotClaimable = errors.New("step is not claimable")
	// ErrLeaseLost means the step was cancelled or taken over while a worker
	// ran it: that worker's result is discarded.
	ErrLeaseLost = errors.New("step lease lost")
	// ErrIdempotencyKeyReused is an Idempotency-Key seen within the window
	// with a request other than the one that first used it.
	ErrIdempotencyKeyReused = errors.New("runs: idempotency key reused with a different request")
)

// ConflictError is ErrConflict with words for the person who asked.
type ConflictError struct{ Message string }

func (e *ConflictError) Error() string { return e.Message }

// Unwrap makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// Run is one execution of a plan.
type Run struct {
	ID              int64          `db:"id"`
	TeamID          int64          `db:"team_id"`
	Status          string         `db:"status"`
	Goal            string         `db:"goal"`
	Template        string         `db:"template"`
	PlanJSON        string         `db:"plan"`
	InputsJSON      string         `db:"inputs"`
	CreatedByUserID sql.NullInt64  `db:"created_by_user_id"`
	CreatedByKeyID  sql.NullInt64  `db:"created_by_key_id"`
	CreatedBy       string         `db:"created_by"` // the user's email, the key's name, or the trigger (webhook, schedule)
	RerunOf         sql.NullInt64  `db:"rerun_of"`
	IdempotencyKey  sql.NullString `db:"idempotency_key"`
	StepsTotal      int            `db:"steps_total"`
	StepsDone       int            `db:"steps_done"`    // finished, whatever the outcome
	StepsFailed     int            `db:"steps_failed"`  // of those done, failed or timed out
	StepsSkipped    int            `db:"steps_skipped"` // of those done, skipped or cancelled
	InputTokens     int64          `db:"input_tokens"`
	OutputTokens    int64          `db:"output_tokens"`
	CostMicros      int64          `db:"cost_micros"` // micro-dollars, from the price table
	Error           string         `db:"error"`
	CreatedAt       time.Time      `db:"created_at"`
	StartedAt       *time.Time     `db:"started_at"`
	FinishedAt      *time.Time     `db:"finished_at"`
	UpdatedAt       time.Time      `db:"updated_at"`
	TemplateVersion int            `db:"template_version"` // the template version the plan came from, 0 for none
	DeploymentID    sql.NullInt64  `db:"deployment_id"`
	DeploymentEnv   string         `db:"deployment_environment"` // the deployment's environment, "" for none
	TriggeredBy     string         `db:"triggered_by"`           // for a deployment's run: TriggerAPI, TriggerWebhook or TriggerSchedule
	ScheduledFor    *time.Time     `db:"scheduled_for"`          // the schedule tick that started the run
	Replay          bool           `db:"replay"`                 // holds a comparison's candidate steps, whose prompts are used as written
}

// What started a deployment's run.
const (
	TriggerAPI      = "api"
	TriggerWebhook  = "webhook"
	TriggerSchedule = "schedule"
	TriggerManual   = "manual" // a person, from the deployment's page
)

// Finished reports whether the run has reached a final status.
func (r Run) Finished() bool {
	return r.Status == RunSucceeded || r.Status == RunFailed || r.Status == RunCancelled
}

// CanCancel reports whether the run may be cancelled now.
func (r Run) CanCancel() bool { return !r.Finished() }

// CanRetry reports whether the run may be retried from its failed steps.
func (r Run) CanRetry() bool { return r.Status == RunFailed || r.Status == RunCancelled }

// Duration is how long the run has taken so far, or took.
func (r Run) Duration(now time.Time) time.Duration {
	if r.StartedAt == nil {
		return 0
	}
	end := now
	if r.FinishedAt != nil {
		end = *r.FinishedAt
	}
	return end.Sub(*r.StartedAt)
}

// Plan decodes the run's plan.
func (r Run) Plan() (plan.Plan, error) {
	var p plan.Plan
	err := json.Unmarshal([]byte(r.PlanJSON), &p)
	return p, err
}

// Inputs decodes the run's inputs, numbers as written (json.Number), so
// that 9007199254740993 keeps every digit.
func (r Run) Inputs() (map[string]any, error) {
	inputs := map[string]any{}
	dec := json.NewDecoder(strings.NewReader(r.InputsJSON))
	dec.UseNumber()
	err := dec.Decode(&inputs)
	return inputs, err
}

// Step is one step of a run, with its state.
type Step struct {
	ID              int64         `db:"id"`
	RunID           int64         `db:"run_id"`
	Position        int           `db:"position"`
	Name            string        `db:"name"`
	Kind            string        `db:"kind"`
	Status          string        `db:"status"`
	NeedsJSON       string        `db:"needs"`
	Provider        string        `db:"provider"`
	Model           string        `db:"model"`
	Prompt          string        `db:"prompt"`
	RenderedPrompt  string        `db:"rendered_prompt"`
	OptionsJSON     string        `db:"options"`
	Output          string        `db:"output"`
	Error           string        `db:"error"`
	Attempt         int           `db:"attempt"`
	MaxAttempts     int           `db:"max_attempts"`
	TimeoutMS       int64         `db:"timeout_ms"`
	PatienceMS      int64         `db:"patience_ms"`     // how long the step may wait on an open circuit
	WaitingCircuit  string        `db:"waiting_circuit"` // the circuit it last waited on (ai.CircuitKey.Encode)
	WaitingSince    *time.Time    `db:"waiting_since"`   // when it started waiting on that circuit
	WaitingUntil    *time.Time    `db:"waiting_until"`   // when it tries again
	WaitingOn       string        `db:"waiting_on"`      // WaitingOnSpend while a spend limit holds it back
	InputTokens     int64         `db:"input_tokens"`
	OutputTokens    int64         `db:"output_tokens"`
	CostMicros      int64         `db:"cost_micros"`
	FallbackJSON    string        `db:"fallback"`
	ServedBy        string        `db:"served_by"` // "provider/model" that answered, when not the step's own
	OwnKey          bool          `db:"own_key"`   // it was served on the team's own key
	Enqueued        bool          `db:"enqueued"`
	JobID           sql.NullInt64 `db:"job_id"` // the step's current job; older jobs find nothing to do
	LeaseToken      string        `db:"lease_token"`
	LeaseExpiresAt  *time.Time    `db:"lease_expires_at"`
	DecidedBy       sql.NullInt64 `db:"decided_by"`
	DecisionComment string        `db:"decision_comment"`
	StartedAt       *time.Time    `db:"started_at"`
	FinishedAt      *time.Time    `db:"finished_at"`
	UpdatedAt       time.Time     `db:"updated_at"`
}

// Needs decodes the names of the steps this one depends on.
func (s Step) Needs() []string {
	var needs []string
	_ = json.Unmarshal([]byte(s.NeedsJSON), &needs) // written by this package
	return needs
}

// Fallbacks decodes the providers to try when the step's own is unavailable.
func (s Step) Fallbacks() []plan.Fallback {
	var fb []plan.Fallback
	_ = json.Unmarshal([]byte(s.FallbackJSON), &fb) // written by this package
	return fb
}

// Options decodes the step's provider options.
func (s Step) Options() map[string]any {
	opts := map[string]any{}
	_ = json.Unmarshal([]byte(s.OptionsJSON), &opts) // written by this package
	return opts
}

// Timeout is the time one attempt may take.
func (s Step) Timeout() time.Duration { return time.Duration(s.TimeoutMS) * time.Millisecond }

// Patience is how long the step may wait on an open circuit before it fails.
func (s Step) Patience() time.Duration {
	if s.PatienceMS <= 0 {
		return plan.DefaultPatience
	}
	return time.Duration(s.PatienceMS) * time.Millisecond
}

// CircuitWait says whether the step is waiting on an open circuit now, and
// if so since when, when it tries again and when it gives up.
func (s Step) CircuitWait() (since, retryAt, giveUpAt time.Time, ok bool) {
	if !s.currentWait() || s.Status != StepQueued || s.WaitingUntil == nil {
		return time.Time{}, time.Time{}, time.Time{}, false
	}
	return *s.WaitingSince, *s.WaitingUntil, s.WaitingSince.Add(s.Patience()), true
}

// currentWait reports whether the step's recorded wait belongs to its
// current start: a retried run starts its steps afresh (started_at is
// reset), so an older wait no longer counts against its patience.
func (s Step) currentWait() bool {
	return s.WaitingSince != nil && s.StartedAt != nil && !s.WaitingSince.Before(*s.StartedAt)
}

// Finished reports whether the step has reached a final status.
func (s Step) Finished() bool {
	switch s.Status {
	case StepSucceeded, StepFailed, StepCancelled, StepTimedOut, StepSkipped:
		return true
	}
	return false
}

// Duration is how long the step has run so far, or ran.
func (s Step) Duration(now time.Time) time.Duration {
	if s.StartedAt == nil {
		return 0
	}
	end := now
	if s.FinishedAt != nil {
		end = *s.FinishedAt
	}
	return end.Sub(*s.StartedAt)
}

// Event is one entry of a run's timeline.
type Event struct {
	ID          int64         `db:"id"`
	RunID       int64         `db:"run_id"`
	Step        string        `db:"step"`
	Kind        string        `db:"kind"`
	Message     string        `db:"message"`
	ActorUserID sql.NullInt64 `db:"actor_user_id"`
	ActorKeyID  sql.NullInt64 `db:"actor_key_id"`
	Actor       string        `db:"actor"` // the user's email or the key's name
	CreatedAt   time.Time     `db:"created_at"`
}
