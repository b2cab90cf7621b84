package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/stretchr/testify/require"
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
	require.Contains(t, text, "patience 10m0s")
	_, ok := wait.Find(`[data-testid^=step-retry-at-]`).Attr("datetime")
	require.True(t, ok)
}
