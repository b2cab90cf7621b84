package instance_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/ai"
	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/instance"
	"github.com/nofxhq/nofx/internal/live"
	"github.com/nofxhq/nofx/internal/pricing"
)

// down is a provider that always fails.
type down struct{}

func (down) Name() string { return "flaky" }
func (down) Stream(context.Context, ai.Request, func(string)) (ai.Response, error) {
	return ai.Response{}, &ai.StatusError{Provider: "flaky", Status: 503, Message: "overloaded"}
}
func (down) ValidateStep(string, map[string]any) map[string]string { return nil }

func newService(t *testing.T, d *db.DB) (*instance.Service, *live.Local) {
	broker := live.NewLocal()
	return &instance.Service{DB: d, Circuits: ai.NewCircuits(ai.CircuitConfig{FailuresToOpen: 1, OpenFor: time.Hour}), Broker: broker}, broker
}

func audited(t *testing.T, d *db.DB, action string) []audit.Entry {
	t.Helper()
	entries, err := audit.Recent(context.Background(), d, action, 10)
	require.NoError(t, err)
	return entries
}

// siteAdmin adds a user to act as.
func siteAdmin(t *testing.T, d *db.DB) instance.Admin {
	t.Helper()
	var id int64
	require.NoError(t, db.Get(context.Background(), d, &id,
		`INSERT INTO users (email, password_hash, is_site_admin, created_at, updated_at) VALUES ('root@example.com', 'x', TRUE, ?, ?) RETURNING id`, db.Now(), db.Now()))
	return instance.Admin{UserID: id, Email: "root@example.com"}
}

func TestCounts(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		svc, _ := newService(t, d)
		before, err := svc.Counts(ctx)
		require.NoError(t, err)
		require.Positive(t, before.SchemaVersion)
		_, err = db.Exec(ctx, d, `INSERT INTO teams (slug, name, created_at) VALUES ('counted', 'Counted', ?)`, db.Now())
		require.NoError(t, err)
		after, err := svc.Counts(ctx)
		require.NoError(t, err)
		require.Equal(t, before.Teams+1, after.Teams)
	})
}

func TestResetCircuit(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		svc, broker := newService(t, d)
		by := siteAdmin(t, d)

		_, err := svc.ResetCircuit(ctx, by, ai.CircuitKey{Provider: "flaky"})
		require.ErrorIs(t, err, ai.ErrNoCircuit, "no circuit yet")
		require.Empty(t, audited(t, d, "circuit.reset"), "a refused reset is not audited")

		p := ai.NewReliable(down{}, svc.Circuits, ai.RetryPolicy{Attempts: 1})
		_, err = p.Stream(ctx, ai.Request{Model: "m", Prompt: "x", TeamID: 7, APIKey: "team-key"}, nil)
		require.Error(t, err)
		open := 0
		for _, st := range svc.Circuits.ProviderStates("flaky") {
			if st.State == "open" {
				open++
			}
		}
		require.Equal(t, 1, open, "the team key's circuit opened")

		messages, stop := broker.Subscribe(live.SystemTopic)
		defer stop()
		target, err := svc.ResetCircuit(ctx, by, ai.CircuitKey{Provider: "flaky"})
		require.NoError(t, err)
		require.Equal(t, "flaky", target)
		for _, st := range svc.Circuits.ProviderStates("flaky") {
			require.Equal(t, "closed", st.State, st.Key.String())
		}
		entries := audited(t, d, "circuit.reset")
		require.Len(t, entries, 1)
		require.Equal(t, "root@example.com", entries[0].Actor)
		require.Contains(t, entries[0].Summary, "was open, last error: flaky: status 503: overloaded")
		select {
		case m := <-messages:
			require.Equal(t, live.KindCircuitReset, m.Kind)
			require.Equal(t, "flaky", m.Text)
		case <-time.After(5 * time.Second):
			t.Fatal("the other processes were not told")
		}
	})
}

func TestSetPrice(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		svc, _ := newService(t, d)
		by := siteAdmin(t, d)
		require.NoError(t, svc.SetPrice(ctx, by, "openai", "gpt-test", 1_500_000, 6_000_000))
		prices, err := svc.Prices(ctx)
		require.NoError(t, err)
		var found *pricing.Price
		for i := range prices {
			if prices[i].Provider == "openai" && prices[i].Model == "gpt-test" {
				found = &prices[i]
			}
		}
		require.NotNil(t, found)
		entries := audited(t, d, "price.set")
		require.Len(t, entries, 1)
		require.Equal(t, "openai/gpt-test", entries[0].Target)

		// A refused price writes neither the price nor the audit entry.
		require.Error(t, svc.SetPrice(ctx, by, "", "", 1, 1))
		require.Len(t, audited(t, d, "price.set"), 1)
	})
}
