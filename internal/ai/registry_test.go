package ai_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/ai"
)

// namedProvider is a provider that does nothing but carry a name.
type namedProvider struct{ name string }

func (p namedProvider) Name() string { return p.name }

func (p namedProvider) Stream(context.Context, ai.Request, func(string)) (ai.Response, error) {
	return ai.Response{}, nil
}

func (p namedProvider) ValidateStep(string, map[string]any) map[string]string { return nil }

func TestRegistry(t *testing.T) {
	t.Parallel()
	sim := ai.NewSimulated(1)
	r := ai.NewRegistry(namedProvider{"openai"}, sim, namedProvider{"anthropic"})

	t.Run("Get", func(t *testing.T) {
		t.Parallel()
		got, ok := r.Get("simulated")
		require.True(t, ok)
		require.Same(t, sim, got)

		got, ok = r.Get("anthropic")
		require.True(t, ok)
		require.Equal(t, "anthropic", got.Name())

		_, ok = r.Get("nope")
		require.False(t, ok)
	})

	t.Run("Names are sorted and a copy", func(t *testing.T) {
		t.Parallel()
		names := r.Names()
		require.Equal(t, []string{"anthropic", "openai", "simulated"}, names)
		names[0] = "changed"
		require.Equal(t, []string{"anthropic", "openai", "simulated"}, r.Names())
	})

	t.Run("empty", func(t *testing.T) {
		t.Parallel()
		empty := ai.NewRegistry()
		require.Empty(t, empty.Names())
		_, ok := empty.Get("simulated")
		require.False(t, ok)
	})

	t.Run("wiring mistakes panic", func(t *testing.T) {
		t.Parallel()
		require.PanicsWithValue(t, `ai: provider "openai" registered twice`, func() {
			ai.NewRegistry(namedProvider{"openai"}, namedProvider{"openai"})
		})
		require.Panics(t, func() { ai.NewRegistry(nil) })
	})
}
