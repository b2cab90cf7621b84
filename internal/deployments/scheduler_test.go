package deployments_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/deployments"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/templates"
	"github.com/nofxhq/nofx/internal/validation"
)

func utc(h, m, s int) time.Time { return time.Date(2026, 11, 27, h, m, s, 0, time.UTC) }

func TestScheduleInTheTeamTimeZone(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := setup(t, d)
		owner := f.actor(teams.RoleOwner)
		slug, env := templates.StarterSummary, deployments.Production
		f.saveVersion(t, slug, func(s *templates.Spec) { s.Inputs[0].Default = "Scheduled text" })
		_, err := f.svc.Deploy(ctx, owner, slug, env, 0)
		require.NoError(t, err)
		f.clock.Set(utc(10, 0, 0))

		require.ErrorIs(t, f.svc.SetTimeZone(ctx, f.actor(teams.RoleMember), "Europe/Paris"), access.ErrForbidden)
		requireField(t, f.svc.SetTimeZone(ctx, owner, "Mars/Olympus"), "time_zone")
		requireField(t, f.svc.SetTimeZone(ctx, owner, ""), "time_zone")
		require.NoError(t, f.svc.SetTimeZone(ctx, owner, "Europe/Paris"))

		dep, err := f.svc.SetSchedule(ctx, owner, slug, env, "0 9 * * *")
		require.NoError(t, err)
		require.Equal(t, "0 9 * * *", dep.Schedule)
		require.NotNil(t, dep.NextRunAt)
		require.True(t, utc(8, 0, 0).Add(24*time.Hour).Equal(*dep.NextRunAt), "9:00 in Paris tomorrow, got %v", dep.NextRunAt)

		for _, bad := range []string{"bad", "0 9 * *", "0 0 30 2 *"} {
			_, err := f.svc.SetSchedule(ctx, owner, slug, env, bad)
			requireField(t, err, "schedule")
		}
		_, err = f.svc.SetSchedule(ctx, f.actor(teams.RoleMember), slug, env, "* * * * *")
		require.ErrorIs(t, err, access.ErrForbidden)
		_, err = f.svc.SetSchedule(ctx, f.other, slug, env, "* * * * *")
		require.ErrorIs(t, err, db.ErrNotFound)

		require.NoError(t, f.svc.Pause(ctx, owner, slug, env))
		dep, err = f.svc.Get(ctx, owner, slug, env)
		require.NoError(t, err)
		require.Nil(t, dep.NextRunAt, "a paused schedule has no next run")
		require.Equal(t, "0 9 * * *", dep.Schedule, "and keeps its expression")
		require.NoError(t, f.svc.Resume(ctx, owner, slug, env))
		dep, err = f.svc.Get(ctx, owner, slug, env)
		require.NoError(t, err)
		require.True(t, utc(8, 0, 0).Add(24*time.Hour).Equal(*dep.NextRunAt))

		// 9:00 in New York (UTC-5) is 14:00 UTC, still to come today.
		require.NoError(t, f.svc.SetTimeZone(ctx, owner, "America/New_York"))
		dep, err = f.svc.Get(ctx, owner, slug, env)
		require.NoError(t, err)
		require.True(t, utc(14, 0, 0).Equal(*dep.NextRunAt), "got %v", dep.NextRunAt)
		require.Equal(t, 2, f.audited(t, "team.time_zone"))

		dep, err = f.svc.SetSchedule(ctx, owner, slug, env, "")
		require.NoError(t, err)
		require.Empty(t, dep.Schedule)
		require.Nil(t, dep.NextRunAt)
		require.Equal(t, 2, f.audited(t, "deployment.schedule"), "refusals write nothing")
	})
}

func TestRunDueStartsOneRunPerTick(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := setup(t, d)
		owner := f.actor(teams.RoleOwner)
		slug := templates.StarterSummary
		v2 := f.saveVersion(t, slug, func(s *templates.Spec) { s.Inputs[0].Default = "Scheduled text" })
		_, err := f.svc.Deploy(ctx, owner, slug, deployments.Production, v2)
		require.NoError(t, err)
		// Version 1 needs its text: its scheduled runs cannot start.
		_, err = f.svc.Deploy(ctx, owner, slug, deployments.Staging, 1)
		require.NoError(t, err)

		f.clock.Set(utc(12, 0, 30))
		_, err = f.svc.SetSchedule(ctx, owner, slug, deployments.Production, "* * * * *")
		require.NoError(t, err)

		runDue := func(at time.Time) int {
			t.Helper()
			f.clock.Set(at)
			n, err := f.svc.RunDue(ctx)
			require.NoError(t, err)
			return n
		}
		require.Zero(t, runDue(utc(12, 0, 59)))
		require.Equal(t, 1, runDue(utc(12, 1, 0)))
		require.Zero(t, runDue(utc(12, 1, 10)), "the tick has its run")

		var run struct {
			TemplateVersion int        `db:"template_version"`
			TriggeredBy     string     `db:"triggered_by"`
			ScheduledFor    *time.Time `db:"scheduled_for"`
			Inputs          string     `db:"inputs"`
		}
		require.NoError(t, db.Get(ctx, d, &run, `SELECT template_version, triggered_by, scheduled_for, inputs FROM runs ORDER BY id DESC LIMIT 1`))
		require.Equal(t, v2, run.TemplateVersion)
		require.Equal(t, runs.TriggerSchedule, run.TriggeredBy)
		require.True(t, utc(12, 1, 0).Equal(*run.ScheduledFor))
		require.Contains(t, run.Inputs, "Scheduled text", "the version's defaults")

		// Down from 12:01:10 to 12:05:30: one run, for the latest missed tick.
		require.Equal(t, 1, runDue(utc(12, 5, 30)))
		require.NoError(t, db.Get(ctx, d, &run, `SELECT template_version, triggered_by, scheduled_for, inputs FROM runs ORDER BY id DESC LIMIT 1`))
		require.True(t, utc(12, 5, 0).Equal(*run.ScheduledFor), "got %v", run.ScheduledFor)
		dep, err := f.svc.Get(ctx, owner, slug, deployments.Production)
		require.NoError(t, err)
		require.True(t, utc(12, 6, 0).Equal(*dep.NextRunAt))

		// Staging's version needs its text: no schedule for it.
		_, err = f.svc.SetSchedule(ctx, owner, slug, deployments.Staging, "* * * * *")
		requireField(t, err, "schedule")
		// A schedule set before that rule: its ticks cannot start. Each is
		// skipped, and a streak of failing ticks is audited once.
		_, err = db.Exec(ctx, d, `UPDATE deployments SET schedule = '* * * * *', next_run_at = ? WHERE environment = 'staging'`, utc(12, 6, 0))
		require.NoError(t, err)
		require.Equal(t, 1, runDue(utc(12, 6, 0)), "production runs, staging cannot")
		require.Equal(t, 1, f.audited(t, "deployment.schedule_failed"))
		require.Zero(t, runDue(utc(12, 6, 1)))
		require.Equal(t, 1, f.audited(t, "deployment.schedule_failed"), "no spinning on a failing tick")
		staging, err := f.svc.Get(ctx, owner, slug, deployments.Staging)
		require.NoError(t, err)
		require.True(t, utc(12, 7, 0).Equal(*staging.NextRunAt), "the failing schedule moved on")
		require.NoError(t, f.svc.Pause(ctx, owner, slug, deployments.Production))
		require.Zero(t, runDue(utc(12, 7, 0)))
		require.Zero(t, runDue(utc(12, 8, 0)))
		require.Equal(t, 1, f.audited(t, "deployment.schedule_failed"), "the next failing ticks of the streak are not audited")
		// A tick that runs ends the streak: the next failure is audited.
		_, err = f.svc.Deploy(ctx, owner, slug, deployments.Staging, v2)
		require.NoError(t, err)
		require.Equal(t, 1, runDue(utc(12, 9, 0)))
		_, err = db.Exec(ctx, d, `UPDATE deployments SET version = 1 WHERE environment = 'staging'`)
		require.NoError(t, err)
		require.Zero(t, runDue(utc(12, 10, 0)))
		require.Equal(t, 2, f.audited(t, "deployment.schedule_failed"))
		require.NoError(t, f.svc.Resume(ctx, owner, slug, deployments.Production))

		// Paused, nothing runs.
		require.NoError(t, f.svc.Pause(ctx, owner, slug, deployments.Production))
		require.NoError(t, f.svc.Pause(ctx, owner, slug, deployments.Staging))
		require.Zero(t, runDue(utc(12, 19, 0)))
		require.Equal(t, 4, f.count(t, `SELECT COUNT(*) FROM runs WHERE triggered_by = 'schedule'`))
		require.Equal(t, 4, f.runs(t))
	})
}

func TestSchedulesNeedTheInputsDefaults(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := setup(t, d)
		owner := f.actor(teams.RoleOwner)
		slug, env := templates.StarterSummary, deployments.Production
		f.clock.Set(utc(10, 0, 0))
		_, err := f.svc.Deploy(ctx, owner, slug, env, 1)
		require.NoError(t, err)
		requireMessage := func(t *testing.T, err error, field, want string) {
			t.Helper()
			var verrs validation.Errors
			require.ErrorAs(t, err, &verrs)
			require.Contains(t, verrs[field], want)
		}
		const needsDefault = `Scheduled runs use the inputs' defaults: give "text" a default or make it optional first.`

		// Version 1's text is required and has no default.
		_, err = f.svc.SetSchedule(ctx, owner, slug, env, "0 9 * * *")
		requireMessage(t, err, "schedule", needsDefault)
		_, err = f.svc.SetSchedule(ctx, owner, slug, env, "")
		require.NoError(t, err, "clearing a schedule is always fine")

		v2 := f.saveVersion(t, slug, func(s *templates.Spec) { s.Inputs[0].Default = "Scheduled text" })
		_, err = f.svc.Deploy(ctx, owner, slug, env, v2)
		require.NoError(t, err)
		dep, err := f.svc.SetSchedule(ctx, owner, slug, env, "0 9 * * *")
		require.NoError(t, err)
		require.Equal(t, "0 9 * * *", dep.Schedule)

		// Back to version 1 would break the schedule.
		_, err = f.svc.Deploy(ctx, owner, slug, env, 1)
		requireMessage(t, err, "version", needsDefault)
		v3 := f.saveVersion(t, slug, func(s *templates.Spec) { s.Inputs[0].Required = false; s.Inputs[0].Default = "" })
		_, err = f.svc.Deploy(ctx, owner, slug, env, v3)
		require.NoError(t, err, "an optional input without a default is fine")

		// Resuming a schedule that was set before the rule is refused.
		require.NoError(t, f.svc.Pause(ctx, owner, slug, env))
		_, err = db.Exec(ctx, d, `UPDATE deployments SET version = 1 WHERE environment = ?`, env)
		require.NoError(t, err)
		requireMessage(t, f.svc.Resume(ctx, owner, slug, env), "schedule", needsDefault)
		dep, err = f.svc.Get(ctx, owner, slug, env)
		require.NoError(t, err)
		require.True(t, dep.Paused)
		_, err = f.svc.SetSchedule(ctx, owner, slug, env, "")
		require.NoError(t, err)
		require.NoError(t, f.svc.Resume(ctx, owner, slug, env), "without a schedule it resumes")
		require.Equal(t, 3, f.audited(t, "deployment.deploy"), "refusals write nothing")
	})
}
