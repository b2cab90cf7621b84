// Package ai is the provider layer that llm steps call: one interface over
// every model API, the classification of its errors, and a registry of the
// providers an instance offers.
package ai

import "context"

// Request is one call to a model.
type Request struct {
	Model   string
	Prompt  string
	Options map[string]any // provider-specific; decoded from the step's JSON "options"
	// APIKey, when set, is used instead of the provider's own key (a
	// team's key).
	APIKey string
	// TeamID is the team the call is made for, 0 for none; with APIKey it
	// names the circuit of the team's key (and the simulated provider's
	// circuit is per team).
	TeamID int64
}

// Usage counts tokens as the provider reports them.
type Usage struct {
	InputTokens  int
	OutputTokens int
}

// Response is a finished call.
type Response struct {
	Text  string
	Usage Usage
}

// Provider calls one LLM API and is safe for concurrent use.
type Provider interface {
	// Name is the provider's name in steps and plans, such as "simulated".
	Name() string
	// Stream calls onDelta (when not nil) with each piece of text as it
	// arrives, from the calling goroutine, and returns the whole response;
	// on error the response is zero.
	Stream(ctx context.Context, req Request, onDelta func(string)) (Response, error)
	// ValidateStep checks a step's model and options before a run is
	// created; it returns field → message for "model" and "options"
	// problems (nil when fine).
	ValidateStep(model string, options map[string]any) map[string]string
}
