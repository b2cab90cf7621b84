package web_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/config"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/teams"
)

// A step behind its team's open circuit says on the run page why it waits,
// when it tries again and when it gives up.
func TestRunPageSaysWhyAStepWaitsOnACircuit(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.client()
	c.signUp("waiter@example.com", password)
	teamID, _ := teamOf(t, a, "waiter@example.com")
	tripCircuit(t, a, teamID)

	id := c.startRun(url.Values{"prompt": {"wait for it"}, "provider": {"simulated"}, "model": {"echo"}})
	changes, unsubscribe := a.App.Broker.Subscribe(id)
	defer unsubscribe()
	deadline := time.After(20 * time.Second)
	var wait *goquery.Selection
	for {
		res := c.get(fmt.Sprintf("/runs/%d", id))
		require.Equal(t, http.StatusOK, res.StatusCode)
		if wait = res.Doc(t).Find(`[data-testid^=step-wait-]`); wait.Length() > 0 {
			break
		}
		select {
		case <-changes:
		case <-deadline:
			t.Fatalf("run %d never showed a circuit wait", id)
		}
	}
	text := wait.Text()
	require.Contains(t, text, "simulated circuit is open until")
	require.Contains(t, text, "Tries again at")
	require.Contains(t, text, "Gives up at")
	require.Contains(t, text, "patience 10m 00s")
	_, ok := wait.Find(`[data-testid^=step-retry-at-] time`).Attr("datetime")
	require.True(t, ok)
}

// A queued step of a team that runs as many steps as it may says so.
func TestRunPageSaysWhenAStepWaitsForATeamSlot(t *testing.T) {
	t.Parallel()
	a := newAppWith(t, dbtest.SQLiteURL(t), slog.New(slog.NewTextHandler(io.Discard, nil)), func(c *config.Config) { c.TeamConcurrency = 1 })
	key := a.newAPIClient("slots@example.com", teams.RoleOwner)
	c := a.client()
	require.Equal(t, http.StatusSeeOther, c.logIn("slots@example.com", password).StatusCode)

	slow := `{"name":"%s","kind":"llm","provider":"simulated","model":"echo","prompt":"x","options":{"latency_ms":60000}}`
	res := key.do(http.MethodPost, "/api/v1/runs", `{"plan":{"goal":"two at once","steps":[`+fmt.Sprintf(slow, "a")+`,`+fmt.Sprintf(slow, "b")+`]}}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	id := decode[apiRun](t, res).ID
	t.Cleanup(func() { key.do(http.MethodPost, fmt.Sprintf("/api/v1/runs/%d/cancel", id), "") })

	changes, unsubscribe := a.App.Broker.Subscribe(id)
	defer unsubscribe()
	deadline := time.After(20 * time.Second)
	for {
		doc := c.get(fmt.Sprintf("/runs/%d", id)).Doc(t)
		if wait := doc.Find(`[data-testid^=step-team-wait-]`); wait.Length() > 0 {
			require.Equal(t, 1, wait.Length(), "the running step does not wait")
			require.Contains(t, wait.Text(), "your team is running 1 step, as many as it may at once (1)")
			return
		}
		select {
		case <-changes:
		case <-deadline:
			t.Fatalf("run %d never showed a team slot wait", id)
		}
	}
}

// The run page follows its team's other runs: a queued step's wait for a
// team slot appears when another run takes the last slot and goes when it
// frees it, though nothing of the waiting run changed. No worker runs here,
// so the only news is the other run's.
func TestRunPageFollowsTheTeamsSlots(t *testing.T) {
	t.Parallel()
	a := newAppWith(t, dbtest.SQLiteURL(t), slog.New(slog.NewTextHandler(io.Discard, nil)), func(c *config.Config) {
		c.Workers, c.TeamConcurrency = 0, 1
	})
	key := a.newAPIClient("follow-slots@example.com", teams.RoleOwner)
	c := a.client()
	require.Equal(t, http.StatusSeeOther, c.logIn("follow-slots@example.com", password).StatusCode)
	step := `{"goal":"%s","steps":[{"name":"s","kind":"llm","provider":"simulated","model":"echo","prompt":"x"}]}`
	other := key.startRunAPI(fmt.Sprintf(step, "other"))
	waiting := key.startRunAPI(fmt.Sprintf(step, "waiting"))

	stream := c.openEvents(fmt.Sprintf("/runs/%d/live", waiting))
	first := stream.waitFor("step-s", "")
	require.NotContains(t, first.data, "step-team-wait-s", "the team has a free slot")

	claim := a.claimOnlyStep(other)
	stream.waitFor("step-s", "your team is running 1 step, as many as it may at once (1)")

	require.NoError(t, a.App.Runs.Complete(context.Background(), claim, "done", runs.Usage{}))
	freed := stream.waitFor("step-s", "Queued")
	require.NotContains(t, freed.data, "step-team-wait-s", "the slot is free again")
}

// claimOnlyStep claims the one step of run runID as a worker would, with a
// minute's lease, for tests whose app runs no workers.
func (a *app) claimOnlyStep(runID int64) runs.Claim {
	a.t.Helper()
	ctx := context.Background()
	var step struct {
		ID    int64 `db:"id"`
		JobID int64 `db:"job_id"`
	}
	require.NoError(a.t, db.Get(ctx, a.DB, &step, `SELECT id, job_id FROM steps WHERE run_id = ?`, runID))
	claim, err := a.App.Runs.Claim(ctx, runID, step.ID, step.JobID, time.Minute)
	require.NoError(a.t, err)
	return claim
}
