package templates_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/ai"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/live"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/runs/runstest"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/templates"
	"github.com/nofxhq/nofx/internal/validation"
)

// serviceSetup is a team with an owner acting in it, signed up with the
// starter templates.
type serviceSetup struct {
	ctx   context.Context
	db    *db.DB
	svc   *templates.Service
	owner access.Actor
}

func setupService(t *testing.T, d *db.DB) serviceSetup {
	t.Helper()
	ctx := context.Background()
	user, team, err := (&auth.Service{DB: d, SeedTeam: templates.SeedStarters}).SignUp(ctx, auth.SignUp{
		Email: "owner@example.com", Password: "a long enough password"})
	require.NoError(t, err)
	runSvc := &runs.Service{DB: d, Scheduler: &runstest.Jobs{}, Broker: live.NewLocal(), Providers: ai.NewRegistry(ai.NewSimulated(1))}
	return serviceSetup{ctx: ctx, db: d, svc: &templates.Service{DB: d, Runs: runSvc},
		owner: access.Actor{UserID: user.ID, TeamID: team.ID, Role: teams.RoleOwner}}
}

func (s serviceSetup) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, db.Get(s.ctx, s.db, &n, query, args...))
	return n
}

// example is a valid spec with slug "brief".
func example(t *testing.T) templates.Spec {
	return parse(t, exampleJSON)
}

func TestSignUpSeedsStarters(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := setupService(t, d)
		list, err := s.svc.List(s.ctx, s.owner)
		require.NoError(t, err)
		require.Len(t, list, 3)
		for _, tpl := range list {
			require.Equal(t, 1, tpl.CurrentVersion)
			require.Equal(t, 1, tpl.LatestVersion)
			_, versions, err := s.svc.Versions(s.ctx, s.owner, tpl.Slug)
			require.NoError(t, err)
			require.Len(t, versions, 1)
			require.Equal(t, templates.StarterNote, versions[0].Note)
			require.Equal(t, "owner@example.com", versions[0].Author)
		}
		_, v, err := s.svc.Get(s.ctx, s.owner, templates.StarterSummary)
		require.NoError(t, err)
		spec, err := v.Spec(templates.StarterSummary)
		require.NoError(t, err)
		require.Equal(t, templates.Starters()[0], spec, "stored as shipped")
		require.Zero(t, s.count(t, `SELECT COUNT(*) FROM audit_log WHERE action LIKE 'template.%'`), "seeding is part of the audited sign-up")
	})
}

func TestCreateSaveVersionsRollbackDiffDelete(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := setupService(t, d)
		spec := example(t)
		tpl, v1, err := s.svc.Create(s.ctx, s.owner, spec, "  first  ")
		require.NoError(t, err)
		require.Equal(t, "brief", tpl.Slug)
		require.Equal(t, "Brief", tpl.Name, "normalized")
		require.Equal(t, 1, tpl.CurrentVersion)
		require.Equal(t, 1, v1.Number)
		require.Equal(t, "first", v1.Note)
		require.Equal(t, "owner@example.com", v1.Author)

		_, _, err = s.svc.Create(s.ctx, s.owner, example(t), "")
		var verrs validation.Errors
		require.ErrorAs(t, err, &verrs)
		require.Contains(t, verrs["slug"], "already has a template")

		same, changed, err := s.svc.Save(s.ctx, s.owner, "brief", example(t), "nothing")
		require.NoError(t, err)
		require.False(t, changed, "an equal spec makes no version")
		require.Equal(t, 1, same.Number)

		edited := example(t)
		edited.Description = "Version two"
		v2, changed, err := s.svc.Save(s.ctx, s.owner, "brief", edited, "describe")
		require.NoError(t, err)
		require.True(t, changed)
		require.Equal(t, 2, v2.Number)
		require.Equal(t, "describe", v2.Note)

		edited.Slug = "renamed"
		_, _, err = s.svc.Save(s.ctx, s.owner, "brief", edited, "")
		require.ErrorAs(t, err, &verrs)
		require.Contains(t, verrs["slug"], "cannot change")
		edited.Slug = ""
		edited.Name = "Brief three"
		v3, changed, err := s.svc.Save(s.ctx, s.owner, "brief", edited, "rename")
		require.NoError(t, err, "an empty slug is the template's own")
		require.True(t, changed)
		require.Equal(t, 3, v3.Number)

		tpl, versions, err := s.svc.Versions(s.ctx, s.owner, "brief")
		require.NoError(t, err)
		require.Equal(t, 3, tpl.CurrentVersion)
		require.Equal(t, 3, tpl.LatestVersion)
		require.Equal(t, "Brief three", tpl.Name)
		require.Len(t, versions, 3)
		require.Equal(t, []int{3, 2, 1}, []int{versions[0].Number, versions[1].Number, versions[2].Number})
		require.Equal(t, "owner@example.com", versions[1].Author)

		// The list is the newest MaxListedVersions, without content.
		for n := 4; n <= templates.MaxListedVersions+5; n++ {
			_, err := db.Exec(s.ctx, s.db, `INSERT INTO template_versions (template_id, version, name, plan, created_at)
				VALUES (?, ?, 'x', '{}', ?)`, tpl.ID, n, db.Now())
			require.NoError(t, err)
		}
		_, many, err := s.svc.Versions(s.ctx, s.owner, "brief")
		require.NoError(t, err)
		require.Len(t, many, templates.MaxListedVersions)
		require.Equal(t, templates.MaxListedVersions+5, many[0].Number)
		require.Empty(t, many[0].PlanJSON, "lists do not carry each version's plan")
		_, err = db.Exec(s.ctx, s.db, `DELETE FROM template_versions WHERE template_id = ? AND version > 3`, tpl.ID)
		require.NoError(t, err)

		lines, err := s.svc.Diff(s.ctx, s.owner, "brief", 1, 2)
		require.NoError(t, err)
		var changes []string
		for _, l := range lines {
			if l.Op != ' ' {
				changes = append(changes, string(l.Op)+l.Text)
			}
		}
		require.Equal(t, []string{`-  "description": "A brief",`, `+  "description": "Version two",`}, changes)
		_, err = s.svc.Diff(s.ctx, s.owner, "brief", 1, 9)
		require.ErrorIs(t, err, templates.ErrNoVersion)
		require.ErrorIs(t, err, db.ErrNotFound)

		tpl, err = s.svc.Rollback(s.ctx, s.owner, "brief", 1)
		require.NoError(t, err)
		require.Equal(t, 1, tpl.CurrentVersion)
		require.Equal(t, "Brief", tpl.Name)
		tpl, current, err := s.svc.Get(s.ctx, s.owner, "brief")
		require.NoError(t, err)
		require.Equal(t, 1, current.Number)
		require.Equal(t, 3, tpl.LatestVersion, "a rollback keeps every version")
		_, err = s.svc.Rollback(s.ctx, s.owner, "brief", 1)
		require.ErrorIs(t, err, runs.ErrConflict, "already current")
		_, err = s.svc.Rollback(s.ctx, s.owner, "brief", 7)
		require.ErrorIs(t, err, templates.ErrNoVersion)
		_, old, err := s.svc.Version(s.ctx, s.owner, "brief", 2)
		require.NoError(t, err)
		require.Equal(t, "Version two", old.Description)

		v4, changed, err := s.svc.Save(s.ctx, s.owner, "brief", edited, "after rollback")
		require.NoError(t, err)
		require.True(t, changed, "version 3's content differs from the current version 1")
		require.Equal(t, 4, v4.Number, "numbers keep growing after a rollback")

		require.Equal(t, 1, s.count(t, `SELECT COUNT(*) FROM audit_log WHERE action = 'template.create' AND target = 'template brief' AND summary = 'version 1: first'`))
		require.Equal(t, 3, s.count(t, `SELECT COUNT(*) FROM audit_log WHERE action = 'template.save'`))
		require.Equal(t, 1, s.count(t, `SELECT COUNT(*) FROM audit_log WHERE action = 'template.rollback'`))

		require.NoError(t, s.svc.Delete(s.ctx, s.owner, "brief"))
		_, _, err = s.svc.Get(s.ctx, s.owner, "brief")
		require.ErrorIs(t, err, db.ErrNotFound)
		require.ErrorIs(t, s.svc.Delete(s.ctx, s.owner, "brief"), db.ErrNotFound)
		require.Zero(t, s.count(t, `SELECT COUNT(*) FROM template_versions v JOIN templates t ON t.id = v.template_id WHERE t.slug = 'brief'`))
		require.Equal(t, 1, s.count(t, `SELECT COUNT(*) FROM audit_log WHERE action = 'template.delete'`))
	})
}

func TestValidationWritesNothing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := setupService(t, d)
		bad := example(t)
		bad.Plan.Steps[0].Prompt = "{{inputs.nope}}"
		_, _, err := s.svc.Create(s.ctx, s.owner, bad, "")
		var verrs validation.Errors
		require.ErrorAs(t, err, &verrs)
		require.Equal(t, "{{inputs.nope}} is not a declared input: add it under Inputs.", verrs["steps[0].prompt"])
		_, _, err = s.svc.Save(s.ctx, s.owner, templates.StarterSummary, bad, "")
		require.ErrorAs(t, err, &verrs)
		require.Equal(t, 3, s.count(t, `SELECT COUNT(*) FROM template_versions`), "only the starters")
		require.Zero(t, s.count(t, `SELECT COUNT(*) FROM audit_log WHERE action LIKE 'template.%'`))
	})
}

func TestPermissionsAndOtherTeams(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := setupService(t, d)
		viewer, member, admin := s.owner, s.owner, s.owner
		viewer.Role, member.Role, admin.Role = teams.RoleViewer, teams.RoleMember, teams.RoleAdmin
		bad := templates.Spec{} // invalid: the role is checked first

		_, err := s.svc.List(s.ctx, viewer)
		require.NoError(t, err)
		_, _, err = s.svc.Get(s.ctx, viewer, templates.StarterSummary)
		require.NoError(t, err)
		_, _, err = s.svc.Create(s.ctx, viewer, bad, "")
		require.ErrorIs(t, err, access.ErrForbidden)
		_, _, err = s.svc.Save(s.ctx, viewer, "nope", bad, "")
		require.ErrorIs(t, err, access.ErrForbidden)
		_, err = s.svc.Rollback(s.ctx, viewer, "nope", 1)
		require.ErrorIs(t, err, access.ErrForbidden)
		_, _, err = s.svc.StartRun(s.ctx, viewer, "nope", nil, "")
		require.ErrorIs(t, err, access.ErrForbidden)
		require.ErrorIs(t, s.svc.Delete(s.ctx, viewer, "nope"), access.ErrForbidden)
		require.ErrorIs(t, s.svc.Delete(s.ctx, member, templates.StarterSummary), access.ErrForbidden, "members write but do not delete")
		require.NoError(t, s.svc.Delete(s.ctx, admin, templates.StarterFanOut))

		other, err := teams.Create(s.ctx, d, "Other", "other", false)
		require.NoError(t, err)
		stranger := access.Actor{UserID: s.owner.UserID, TeamID: other.ID, Role: teams.RoleOwner}
		list, err := s.svc.List(s.ctx, stranger)
		require.NoError(t, err)
		require.Empty(t, list)
		_, _, err = s.svc.Get(s.ctx, stranger, templates.StarterSummary)
		require.ErrorIs(t, err, db.ErrNotFound)
		_, _, err = s.svc.Versions(s.ctx, stranger, templates.StarterSummary)
		require.ErrorIs(t, err, db.ErrNotFound)
		_, err = s.svc.Diff(s.ctx, stranger, templates.StarterSummary, 1, 1)
		require.ErrorIs(t, err, db.ErrNotFound)
		spec := templates.Starters()[0]
		spec.Description = "hijacked"
		_, _, err = s.svc.Save(s.ctx, stranger, templates.StarterSummary, spec, "")
		require.ErrorIs(t, err, db.ErrNotFound)
		_, err = s.svc.Rollback(s.ctx, stranger, templates.StarterSummary, 1)
		require.ErrorIs(t, err, db.ErrNotFound)
		require.ErrorIs(t, s.svc.Delete(s.ctx, stranger, templates.StarterSummary), db.ErrNotFound)
		_, _, err = s.svc.StartRun(s.ctx, stranger, templates.StarterSummary, map[string]any{"text": "x"}, "")
		require.ErrorIs(t, err, db.ErrNotFound)

		_, created, err := s.svc.Create(s.ctx, stranger, templates.Starters()[0], "")
		require.NoError(t, err, "slugs are unique per team")
		require.Equal(t, 1, created.Number)
	})
}

func TestStartRun(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := setupService(t, d)
		edited := templates.Starters()[2]
		edited.Description = "v2"
		_, _, err := s.svc.Save(s.ctx, s.owner, templates.StarterFanOut, edited, "")
		require.NoError(t, err)

		_, _, err = s.svc.StartRun(s.ctx, s.owner, templates.StarterFanOut, map[string]any{"points": "many"}, "")
		var verrs validation.Errors
		require.ErrorAs(t, err, &verrs)
		require.Equal(t, validation.Errors{"inputs.topic": "Fill this in.", "inputs.points": "Enter a number."}, verrs)

		run, replayed, err := s.svc.StartRun(s.ctx, s.owner, templates.StarterFanOut, map[string]any{"topic": "tea"}, "k1")
		require.NoError(t, err)
		require.False(t, replayed)
		require.Equal(t, templates.StarterFanOut, run.Template)
		require.Equal(t, 2, run.TemplateVersion)
		inputs, err := run.Inputs()
		require.NoError(t, err)
		require.Equal(t, map[string]any{"topic": "tea", "points": json.Number("3")}, inputs, "read back as written")
		require.Equal(t, 3, run.StepsTotal)

		again, replayed, err := s.svc.StartRun(s.ctx, s.owner, templates.StarterFanOut, map[string]any{"topic": "tea"}, "k1")
		require.NoError(t, err)
		require.True(t, replayed)
		require.Equal(t, run.ID, again.ID)

		_, _, err = s.svc.StartRun(s.ctx, s.owner, "nope", nil, "")
		require.ErrorIs(t, err, db.ErrNotFound)
	})
}
