package deployments_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/deployments"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/templates"
)

func TestWebhookNumbersOutOfRange(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := setup(t, d)
		slug, env := templates.StarterFanOut, deployments.Production
		out, err := f.svc.Deploy(ctx, f.actor(teams.RoleOwner), slug, env, 0)
		require.NoError(t, err)
		require.NoError(t, f.svc.SetInputMap(ctx, f.actor(teams.RoleAdmin), slug, env, `{"points":"data.n"}`))
		token, secret := out.Deployment.WebhookToken, out.Secret
		at := f.clock.Now()
		deliver := func(body string) (runs.Run, error) {
			at = at.Add(time.Second) // a new timestamp: a new delivery, not a replay
			return f.svc.Receive(ctx, token, fmt.Sprint(at.Unix()), deployments.Sign(secret, at.Unix(), []byte(body)), strings.NewReader(body))
		}

		for _, body := range []string{
			`{"topic":"tea","data":{"n":1e400}}`,
			`{"topic":"tea","data":{"n":-1e400}}`,
			`{"topic":"tea","data":{"n":` + strings.Repeat("9", 400) + `}}`,
			`{"topic":"tea","data":{"n":"1e400"}}`,
		} {
			_, err := deliver(body)
			requireField(t, err, "inputs.points")
		}
		require.Zero(t, f.runs(t), "refused deliveries start nothing")
		require.Zero(t, f.count(t, `SELECT COUNT(*) FROM webhook_deliveries`), "nor remember anything")

		// A huge number sent for a text input is its text, and the run can
		// read it back.
		run, err := deliver(`{"topic":1e400,"data":{"n":2},"unused":1e999}`)
		require.NoError(t, err)
		inputs, err := run.Inputs()
		require.NoError(t, err)
		require.Equal(t, "1e400", inputs["topic"])
		require.Equal(t, 1, f.runs(t))
	})
}

func TestTriggerKeyReusedWithOtherInputs(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := setup(t, d)
		slug, env := templates.StarterSummary, deployments.Production
		_, err := f.svc.Deploy(ctx, f.actor(teams.RoleOwner), slug, env, 0)
		require.NoError(t, err)
		member := f.actor(teams.RoleMember)

		run, _, err := f.svc.Trigger(ctx, member, slug, env, map[string]any{"text": "Hello"}, "k")
		require.NoError(t, err)
		again, replayed, err := f.svc.Trigger(ctx, member, slug, env, map[string]any{"text": "Hello"}, "k")
		require.NoError(t, err)
		require.True(t, replayed)
		require.Equal(t, run.ID, again.ID)

		// Deploying another version does not make the same request another.
		v2 := f.saveVersion(t, slug, func(s *templates.Spec) { s.Plan.Goal = "Second version" })
		_, err = f.svc.Deploy(ctx, f.actor(teams.RoleOwner), slug, env, v2)
		require.NoError(t, err)
		again, replayed, err = f.svc.Trigger(ctx, member, slug, env, map[string]any{"text": "Hello"}, "k")
		require.NoError(t, err, "a retry after a deploy")
		require.True(t, replayed)
		require.Equal(t, run.ID, again.ID)

		_, _, err = f.svc.Trigger(ctx, member, slug, env, map[string]any{"text": "Goodbye"}, "k")
		require.ErrorIs(t, err, runs.ErrIdempotencyKeyReused)
		_, _, err = f.svc.RunNow(ctx, member, slug, env, map[string]any{"text": "Goodbye"}, "k")
		require.ErrorIs(t, err, runs.ErrIdempotencyKeyReused)
		// The template's own run form under the deployment's key is another request.
		_, _, err = f.templates.StartRun(ctx, member, slug, map[string]any{"text": "Hello"}, "k")
		require.ErrorIs(t, err, runs.ErrIdempotencyKeyReused)
		require.Equal(t, 1, f.runs(t), "nothing is written")
	})
}
