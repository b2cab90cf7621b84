package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/ai"
	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/pricing"
)

// tripCircuit makes the simulated provider fail for team teamID until the
// team's circuit opens, and returns the circuit's key.
func tripCircuit(t *testing.T, a *app, teamID int64) ai.CircuitKey {
	t.Helper()
	p, ok := a.App.Providers.Get("simulated")
	require.True(t, ok)
	key := ai.TeamCircuit("simulated", teamID, "")
	failing := ai.Request{Model: "echo", Prompt: "x", TeamID: teamID, Options: map[string]any{"fail_rate": 1.0, "fail_status": 500.0}}
	for a.App.Circuits.State(key).State != ai.CircuitOpen {
		_, err := p.Stream(context.Background(), failing, nil)
		require.Error(t, err)
	}
	return key
}

// teamOf returns the id and name of the personal team of the user with email.
func teamOf(t *testing.T, a *app, email string) (int64, string) {
	t.Helper()
	var team struct {
		ID   int64  `db:"id"`
		Name string `db:"name"`
	}
	require.NoError(t, db.Get(context.Background(), a.DB, &team, `SELECT t.id, t.name FROM teams t
		JOIN memberships m ON m.team_id = t.id JOIN users u ON u.id = m.user_id WHERE u.email = ? ORDER BY t.id LIMIT 1`, email))
	return team.ID, team.Name
}

func TestAdminResetsCircuit(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	admin := a.client()
	admin.signUp("root@example.com", password) // the first user is the site admin
	other := a.client()
	other.signUp("user@example.com", password)

	teamA, nameA := teamOf(t, a, "root@example.com")
	teamB, _ := teamOf(t, a, "user@example.com")
	keyA := tripCircuit(t, a, teamA)
	keyB := tripCircuit(t, a, teamB)
	idA := fmt.Sprintf("simulated-team-%d", teamA)
	page := admin.get("/admin/circuits")
	require.Equal(t, http.StatusOK, page.StatusCode)
	doc := page.Doc(t)
	require.Equal(t, "open", strings.TrimSpace(doc.Find(`[data-testid=circuit-state-`+idA+`]`).Text()))
	require.Contains(t, doc.Find(`[data-testid=circuit-`+idA+`]`).Text(), "simulated failure", "the last error is shown")
	require.Equal(t, nameA, strings.TrimSpace(doc.Find(`[data-testid=circuit-team-`+idA+`]`).Text()), "each circuit shows its team")
	require.Equal(t, "instance", strings.TrimSpace(doc.Find(`[data-testid=circuit-team-anthropic-instance]`).Text()))
	require.Equal(t, "closed", strings.TrimSpace(doc.Find(`[data-testid=circuit-state-anthropic-instance]`).Text()), "every provider is listed")

	require.Equal(t, http.StatusForbidden, other.get("/admin/circuits").StatusCode)
	res := other.submit("/runs", "/admin/circuits/simulated/reset", url.Values{"scope": {keyA.Scope}})
	require.Equal(t, http.StatusForbidden, res.StatusCode, "only site admins reset circuits")
	require.Equal(t, ai.CircuitOpen, a.App.Circuits.State(keyA).State)

	res = admin.submit("/admin/circuits", "/admin/circuits/simulated/reset", url.Values{"scope": {keyA.Scope}, "base_url": {""}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, ai.CircuitClosed, a.App.Circuits.State(keyA).State)
	require.Equal(t, ai.CircuitOpen, a.App.Circuits.State(keyB).State, "only that team's circuit was reset")
	doc = admin.get("/admin/circuits").Doc(t)
	require.Equal(t, "closed", strings.TrimSpace(doc.Find(`[data-testid=circuit-state-`+idA+`]`).Text()))
	require.Contains(t, doc.Find(`[data-testid=resets]`).Text(), "root@example.com")

	entries, err := audit.Recent(context.Background(), a.DB, "circuit.reset", 10)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	require.Equal(t, keyA.String(), entries[0].Target)
	require.Equal(t, "root@example.com", entries[0].Actor)
	require.NotEmpty(t, entries[0].RequestID)

	res = admin.submit("/admin/circuits", "/admin/circuits/nowhere/reset", url.Values{})
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	res = admin.submit("/admin/circuits", "/admin/circuits/simulated/reset", url.Values{"scope": {"team:999999"}})
	require.Equal(t, http.StatusNotFound, res.StatusCode)

	// Without a scope, every circuit of the provider is reset.
	res = admin.submit("/admin/circuits", "/admin/circuits/simulated/reset", url.Values{})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, ai.CircuitClosed, a.App.Circuits.State(keyB).State)

	metrics := admin.get("/metrics").Body
	require.Contains(t, metrics, `nofx_provider_circuit_state{provider="simulated",scope="team"} 0`)
	require.NotContains(t, metrics, fmt.Sprintf("team:%d", teamA), "no label names a team")
	require.Contains(t, metrics, `nofx_provider_circuit_state{provider="anthropic",scope="instance"} 0`)
	require.Contains(t, metrics, `nofx_provider_calls_total{outcome="retryable_error",provider="simulated"}`)
}

func TestAdminEditsPrices(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	admin := a.client()
	admin.signUp("root@example.com", password)

	doc := admin.get("/admin/prices").Doc(t)
	require.Contains(t, doc.Find(`[data-testid=price-anthropic-claude-sonnet-4-5]`).Text(), "$3.00", "seeded with list prices")

	res := admin.submit("/admin/prices", "/admin/prices", url.Values{"provider": {"openai"}, "model": {"my-model"}, "input": {"abc"}, "output": {""}})
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	doc = res.Doc(t)
	require.NotEmpty(t, doc.Find(`[data-testid=error-input]`).Text())
	require.NotEmpty(t, doc.Find(`[data-testid=error-output]`).Text())
	require.Equal(t, "my-model", doc.Find(`#model`).AttrOr("value", ""), "what was typed is kept")

	res = admin.submit("/admin/prices", "/admin/prices", url.Values{"provider": {"openai"}, "model": {"my-model"}, "input": {"1.25"}, "output": {"$5"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	p, ok, err := pricing.Lookup(context.Background(), a.DB, "openai", "my-model")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, int64(1_250_000), p.InputPerMTok)
	require.Equal(t, int64(5_000_000), p.OutputPerMTok)
	entries, err := audit.Recent(context.Background(), a.DB, "price.set", 10)
	require.NoError(t, err)
	require.Len(t, entries, 1)
}

func TestBrowserAdminResetsOpenCircuit(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := newBrowser(t)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(a.URL+"/signup"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=signup-form]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=signup-form] input[name=email]`), "root@example.com"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=signup-form] input[name=password]`), password),
		chromedp.Click(chromedp.CSS(`[data-testid=signup-form] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=dashboard]`)),
	), "sign up")

	teamID, _ := teamOf(t, a, "root@example.com")
	key := tripCircuit(t, a, teamID)
	id := fmt.Sprintf("simulated-team-%d", teamID)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`nav a[href="/admin"]`)),
		chromedp.WaitVisible(chromedp.CSS(`nav.subnav`)),
		chromedp.Click(chromedp.CSS(`nav.subnav a[href="/admin/circuits"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=reset-`+id+`]`)),
	), "open the circuits page")
	state, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid=circuit-state-`+id+`]`)))
	require.NoError(t, err)
	require.Equal(t, "open", strings.TrimSpace(state))

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`[data-testid=reset-`+id+`]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=resets]`)),
	), "reset")
	state, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid=circuit-state-`+id+`]`)))
	require.NoError(t, err)
	require.Equal(t, "closed", strings.TrimSpace(state))
	flash, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid=flash]`)))
	require.NoError(t, err)
	require.Contains(t, flash, "closed again")
	require.Equal(t, ai.CircuitClosed, a.App.Circuits.State(key).State)
}

// TestCircuitResetReachesOtherProcesses resets an open circuit on one of
// two processes sharing a PostgreSQL database and sees the other close its
// own.
func TestCircuitResetReachesOtherProcesses(t *testing.T) {
	t.Parallel()
	shared := dbtest.PostgresURL(t)
	first, second := newAppAt(t, shared), newAppAt(t, shared)
	admin := first.client()
	admin.signUp("root@example.com", password)

	teamID, _ := teamOf(t, first, "root@example.com")
	key := tripCircuit(t, first, teamID)
	tripCircuit(t, second, teamID)
	other := tripCircuit(t, second, teamID+1000) // another team's, never reset
	res := admin.submit("/admin/circuits", "/admin/circuits/simulated/reset", url.Values{"scope": {key.Scope}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, ai.CircuitClosed, first.App.Circuits.State(key).State)
	require.Eventually(t, func() bool {
		return second.App.Circuits.State(key).State == ai.CircuitClosed
	}, 10*time.Second, 10*time.Millisecond, "the other process closes its circuit too")
	require.Equal(t, ai.CircuitOpen, second.App.Circuits.State(other).State, "the reset names one circuit")
}
