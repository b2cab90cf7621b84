package runs

import (
	"context"
	"fmt"

	"github.com/nofxhq/nofx/internal/billing"
	"github.com/nofxhq/nofx/internal/db"
)

// WaitingOnSpend is a step's WaitingOn while its team's spend limit holds
// it back.
const WaitingOnSpend = "spend_limit"

// SpendWaitReason is what a step held back by the spend limit shows.
const SpendWaitReason = "Spend limit reached"

// WaitForSpend gives a claim back without using its attempt because its
// team's model spend reached the plan's limit: the step waits, without a
// job, until WakeSpendLimited finds the limit no longer holds (the plan
// changed or was raised, or a new period began). If the limit no longer
// holds by the time this commits, the step is queued again at once.
func (s *Service) WaitForSpend(ctx context.Context, c Claim) error {
	return s.transact(ctx, func(t *txn) error {
		st, step, err := s.lockClaim(ctx, t, c)
		if err != nil {
			return err
		}
		al, err := billing.AllowanceOf(ctx, t.tx, st.run.TeamID)
		if err != nil {
			return err
		}
		if !al.SpendReached {
			_, err = db.Exec(ctx, t.tx, `UPDATE steps SET status = ?, attempt = attempt - 1, lease_token = '', lease_expires_at = NULL,
				updated_at = ? WHERE id = ?`, StepQueued, t.now, step.ID)
			if err != nil {
				return fmt.Errorf("runs: requeue step %s: %w", step.Name, err)
			}
			step.Status, step.Enqueued, step.Attempt, step.LeaseToken, step.LeaseExpiresAt = StepQueued, true, step.Attempt-1, "", nil
			t.jobs = append(t.jobs, StepJob{RunID: st.run.ID, StepID: step.ID})
			return nil
		}
		reason := fmt.Sprintf("%s: the team has spent %s of the %s plan's %s this period", SpendWaitReason,
			billing.FormatSpend(al.Spent), al.Plan.Name, billing.FormatSpend(al.Plan.SpendMicros))
		_, err = db.Exec(ctx, t.tx, `UPDATE steps SET status = ?, attempt = attempt - 1, error = ?, waiting_on = ?, lease_token = '',
			lease_expires_at = NULL, job_id = NULL, updated_at = ? WHERE id = ?`, StepWaiting, reason, WaitingOnSpend, t.now, step.ID)
		if err != nil {
			return fmt.Errorf("runs: hold step %s at the spend limit: %w", step.Name, err)
		}
		step.Status, step.Attempt, step.Error, step.WaitingOn, step.LeaseToken, step.LeaseExpiresAt = StepWaiting, step.Attempt-1, reason, WaitingOnSpend, "", nil
		step.JobID.Valid = false
		st.event(step.Name, "step.spend_limited", reason+"; it starts when the limit is raised, the plan changes or the period ends", nil)
		return nil
	})
}

// WakeSpendLimited queues again every step held back by a spend limit that
// no longer holds, and returns how many. Plan changes call it at once; the
// engine's sweep calls it too, for a new period and for changes made by
// other processes.
func (s *Service) WakeSpendLimited(ctx context.Context) (int, error) {
	// By team first, so that one team held all month cannot hide the
	// others' steps behind its own.
	var teamIDs []int64
	err := db.Select(ctx, s.DB, &teamIDs, `SELECT DISTINCT r.team_id FROM steps s JOIN runs r ON r.id = s.run_id
		WHERE s.waiting_on = ? AND s.status = ?`, WaitingOnSpend, StepWaiting)
	if err != nil {
		return 0, fmt.Errorf("runs: find teams held by a spend limit: %w", err)
	}
	woken := 0
	for _, teamID := range teamIDs {
		al, err := billing.AllowanceOf(ctx, s.DB, teamID)
		if err != nil {
			return woken, err
		}
		if al.SpendReached {
			continue
		}
		var held []struct {
			StepID int64 `db:"step_id"`
			RunID  int64 `db:"run_id"`
		}
		err = db.Select(ctx, s.DB, &held, `SELECT s.id AS step_id, s.run_id FROM steps s JOIN runs r ON r.id = s.run_id
			WHERE r.team_id = ? AND s.waiting_on = ? AND s.status = ? ORDER BY s.id`, teamID, WaitingOnSpend, StepWaiting)
		if err != nil {
			return woken, fmt.Errorf("runs: steps of team %d held by its spend limit: %w", teamID, err)
		}
		for _, h := range held {
			ok, err := s.releaseFromSpend(ctx, h.RunID, h.StepID)
			if err != nil {
				return woken, err
			}
			if ok {
				woken++
			}
		}
	}
	return woken, nil
}

// releaseFromSpend queues again a step held by its team's spend limit,
// unless it moved on meanwhile (cancelled, say).
func (s *Service) releaseFromSpend(ctx context.Context, runID, stepID int64) (bool, error) {
	released := false
	err := s.transact(ctx, func(t *txn) error {
		st, err := loadState(ctx, s.DB, t.tx, runID, t.now, true)
		if err != nil {
			return err
		}
		step := st.stepByID(stepID)
		if step == nil || step.WaitingOn != WaitingOnSpend || step.Status != StepWaiting {
			return nil
		}
		_, err = db.Exec(ctx, t.tx, `UPDATE steps SET status = ?, error = '', waiting_on = '', updated_at = ? WHERE id = ?`,
			StepQueued, t.now, step.ID)
		if err != nil {
			return fmt.Errorf("runs: release step %s from the spend limit: %w", step.Name, err)
		}
		step.Status, step.Error, step.WaitingOn, step.Enqueued = StepQueued, "", "", true
		t.runID, t.state = runID, st
		t.jobs = append(t.jobs, StepJob{RunID: runID, StepID: step.ID})
		st.event(step.Name, "step.spend_released", "The spend limit no longer holds this step back; it is queued again", nil)
		released = true
		return nil
	})
	return released, err
}
