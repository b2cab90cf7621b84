package ai_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/ai"
)

// A team's key, given with the request, is used instead of the instance's
// (and works when the instance has none).
func TestRequestKeyOverridesProviderKey(t *testing.T) {
	t.Parallel()
	anthropicSrv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		anthropicStart(w, 1)
		anthropicDelta(w, "hi")
		anthropicFinish(w, 1)
	})
	openAISrv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		openAIStart(w)
		openAIDelta(w, "hi")
		openAIFinish(w, 1, 1)
	})
	for _, tc := range []struct {
		name     string
		provider ai.Provider
		srv      *fakeServer
	}{
		{"anthropic", ai.NewAnthropic(ai.AnthropicConfig{BaseURL: anthropicSrv.URL}), anthropicSrv},
		{"openai", ai.NewOpenAI(ai.OpenAIConfig{BaseURL: openAISrv.URL + "/v1"}), openAISrv},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.provider.Stream(t.Context(), ai.Request{Model: "m", Prompt: "x"}, nil)
			require.ErrorIs(t, err, ai.ErrNoAPIKey, "no instance key and no team key")

			res, err := tc.provider.Stream(t.Context(), ai.Request{Model: "m", Prompt: "x", APIKey: "team-key-123"}, nil)
			require.NoError(t, err)
			require.Equal(t, "hi", res.Text)
			require.Equal(t, "Bearer team-key-123", tc.srv.lastRequest().Header.Get("Authorization"))
		})
	}
}
