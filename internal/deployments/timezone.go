package deployments

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/validation"
)

// SetTimeZone sets the time zone the actor's team reads its schedules in
// (an IANA name such as Europe/Paris, or UTC) and moves the next run of
// each of its active schedules to match.
func (s *Service) SetTimeZone(ctx context.Context, actor access.Actor, tz string) error {
	if err := actor.Can(access.TeamUpdate); err != nil {
		return err
	}
	loc, err := teams.LoadLocation(tz)
	if err != nil {
		return validation.Errors{"time_zone": "Use a time zone name such as UTC, Europe/Paris or America/New_York."}
	}
	return db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		t, err := teams.ByID(ctx, tx, actor.TeamID)
		if err != nil {
			return err
		}
		if t.TimeZone == tz {
			return nil
		}
		if err := teams.SetTimeZone(ctx, tx, actor.TeamID, tz); err != nil {
			return err
		}
		var scheduled []Deployment
		if err := db.Select(ctx, tx, &scheduled, deploymentSelect+` WHERE d.team_id = ? AND d.schedule <> '' AND NOT d.paused`, actor.TeamID); err != nil {
			return fmt.Errorf("deployments: scheduled deployments of team %d: %w", actor.TeamID, err)
		}
		now := s.now()
		for _, d := range scheduled {
			_, sched, err := ParseSchedule(d.Schedule)
			if err != nil {
				continue // never written by SetSchedule; the scheduler stops it
			}
			var next any
			if n := NextTick(sched, loc, now); !n.IsZero() {
				next = n
			}
			if _, err := db.Exec(ctx, tx, `UPDATE deployments SET next_run_at = ? WHERE id = ?`, next, d.ID); err != nil {
				return fmt.Errorf("deployments: move next run of %d: %w", d.ID, err)
			}
		}
		return audit.Record(ctx, tx, audit.For(actor, "team.time_zone", t.Slug, t.TimeZone+" → "+tz))
	})
}
