package runs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/db"
)

// DeadLetter is a step whose job the engine gave up on for a reason that
// is not its provider's answer (a worker error, corrupt data): the step is
// still queued, but its job was discarded (or is gone), so nothing will run
// it until a site admin retries or discards it.
type DeadLetter struct {
	JobID     int64     `db:"job_id"`
	StepID    int64     `db:"step_id"`
	StepName  string    `db:"step_name"`
	RunID     int64     `db:"run_id"`
	TeamID    int64     `db:"team_id"`
	TeamName  string    `db:"team_name"`
	Attempts  int       `db:"attempts"`
	UpdatedAt time.Time `db:"updated_at"`
	Error     string    `db:"-"` // the job's last error, from the engine
}

// deadLetterWhere picks the dead letters out of steps s joined to their
// job j (LEFT JOIN: a job cleaned away counts too).
const deadLetterWhere = `s.status = 'queued' AND s.job_id IS NOT NULL AND (j.id IS NULL OR j.state = 'discarded')`

// DeadLetters returns the dead letters across teams, newest first (at most
// limit), for site admins.
func (s *Service) DeadLetters(ctx context.Context, limit int) ([]DeadLetter, error) {
	var out []DeadLetter
	err := db.Select(ctx, s.DB.Reader(), &out, `SELECT s.job_id, s.id AS step_id, s.name AS step_name, s.run_id, r.team_id, t.name AS team_name,
		COALESCE(j.attempt, 0) AS attempts, s.updated_at
		FROM steps s JOIN runs r ON r.id = s.run_id JOIN teams t ON t.id = r.team_id LEFT JOIN river_job j ON j.id = s.job_id
		WHERE `+deadLetterWhere+` ORDER BY s.updated_at DESC, s.id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("runs: dead letters: %w", err)
	}
	return out, nil
}

// CountDeadLetters counts the dead letters across teams.
func CountDeadLetters(ctx context.Context, q db.Queryer) (int, error) {
	var n int
	err := db.Get(ctx, q, &n, `SELECT COUNT(*) FROM steps s LEFT JOIN river_job j ON j.id = s.job_id WHERE `+deadLetterWhere)
	if err != nil {
		return 0, fmt.Errorf("runs: count dead letters: %w", err)
	}
	return n, nil
}

// ErrNotDeadLetter is a dead letter that was retried, discarded or ran
// meanwhile.
var ErrNotDeadLetter = errors.New("runs: that step is no longer a dead letter")

// deadLetter locks the run of a dead letter and returns its step, inside t.
func (s *Service) deadLetter(ctx context.Context, t *txn, jobID int64) (*state, *Step, error) {
	var ref struct {
		RunID  int64 `db:"run_id"`
		StepID int64 `db:"step_id"`
	}
	err := db.Get(ctx, t.tx, &ref, `SELECT s.run_id, s.id AS step_id FROM steps s LEFT JOIN river_job j ON j.id = s.job_id
		WHERE s.job_id = ? AND `+deadLetterWhere, jobID)
	if errors.Is(err, db.ErrNotFound) {
		return nil, nil, ErrNotDeadLetter
	}
	if err != nil {
		return nil, nil, fmt.Errorf("runs: dead letter of job %d: %w", jobID, err)
	}
	st, err := loadState(ctx, s.DB, t.tx, ref.RunID, t.now, true)
	if err != nil {
		return nil, nil, err
	}
	step := st.stepByID(ref.StepID)
	if step == nil || step.Status != StepQueued || !step.JobID.Valid || step.JobID.Int64 != jobID {
		return nil, nil, ErrNotDeadLetter
	}
	t.runID, t.state = ref.RunID, st
	return st, step, nil
}

// RetryDeadLetter gives the dead letter of job jobID a new job, audited as
// by (a site admin).
func (s *Service) RetryDeadLetter(ctx context.Context, jobID int64, by audit.Entry) error {
	return s.transact(ctx, func(t *txn) error {
		st, step, err := s.deadLetter(ctx, t, jobID)
		if err != nil {
			return err
		}
		t.jobs = append(t.jobs, StepJob{RunID: st.run.ID, StepID: step.ID})
		st.event(step.Name, "step.requeued", "A site admin retried the step after the engine gave up on it", nil)
		by.TeamID = &st.run.TeamID
		by.Action, by.Target, by.Summary = "dead_letter.retry", fmt.Sprintf("run #%d step %s", st.run.ID, step.Name), fmt.Sprintf("job %d", jobID)
		return audit.Record(ctx, t.tx, by)
	})
}

// DiscardDeadLetter fails the dead letter of job jobID with reason, so
// that its run settles (its dependents are skipped), audited as by.
func (s *Service) DiscardDeadLetter(ctx context.Context, jobID int64, reason string, by audit.Entry) error {
	return s.transact(ctx, func(t *txn) error {
		st, step, err := s.deadLetter(ctx, t, jobID)
		if err != nil {
			return err
		}
		msg := "discarded by a site admin"
		if reason != "" {
			msg += ": " + reason
		}
		if err := st.setStep(ctx, t.tx, step, stepUpdate{status: StepFailed, error: msg, finish: true, clearLease: true}); err != nil {
			return err
		}
		st.event(step.Name, "step.failed", "The step could not run and was "+msg, nil)
		by.TeamID = &st.run.TeamID
		by.Action, by.Target, by.Summary = "dead_letter.discard", fmt.Sprintf("run #%d step %s", st.run.ID, step.Name), msg
		return audit.Record(ctx, t.tx, by)
	})
}
