package ai_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/ai"
)

// streamed is what one call to Stream gave back.
type streamed struct {
	resp   ai.Response
	deltas []string
	err    error
}

func stream(ctx context.Context, p ai.Provider, req ai.Request) streamed {
	var s streamed
	s.resp, s.err = p.Stream(ctx, req, func(d string) { s.deltas = append(s.deltas, d) })
	return s
}

func TestSimulatedEcho(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		prompt string
		deltas []string
		input  int
	}{
		{"empty", "", nil, 0},
		{"one word", "hello", []string{"hello"}, 1},
		{"words", "hello brave new world", []string{"hello ", "brave ", "new ", "world"}, 4},
		{"spaces kept", "  hello   world  ", []string{"  hello   ", "world  "}, 2},
		{"lines and tabs", "a\n\tb\nc\n", []string{"a\n\t", "b\n", "c\n"}, 3},
		{"only whitespace", " \n ", []string{" \n "}, 1},
		{"unicode", "héllo wörld\u00a0ünï", []string{"héllo ", "wörld\u00a0", "ünï"}, 3},
		{"punctuation stays on its word", "Hi, there! {{inputs.x}}", []string{"Hi, ", "there! ", "{{inputs.x}}"}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := stream(t.Context(), ai.NewSimulated(1), ai.Request{Model: "echo", Prompt: tt.prompt})
			require.NoError(t, got.err)
			require.Equal(t, tt.prompt, got.resp.Text)
			require.Equal(t, tt.deltas, got.deltas)
			require.Equal(t, tt.prompt, strings.Join(got.deltas, ""))
			require.Equal(t, ai.Usage{InputTokens: tt.input, OutputTokens: len(tt.deltas)}, got.resp.Usage)
		})
	}
}

func TestSimulatedLorem(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		prompt string
	}{
		{"empty prompt", ""},
		{"short prompt", "Write a haiku about queues."},
		{"long prompt", strings.Repeat("long prompt ", 500)},
	}
	for _, tt := range tests {
		prompt := tt.prompt
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			first := stream(t.Context(), ai.NewSimulated(1), ai.Request{Model: "lorem", Prompt: prompt})
			require.NoError(t, first.err)
			again := stream(t.Context(), ai.NewSimulated(99), ai.Request{Model: "lorem", Prompt: prompt})
			require.NoError(t, again.err)
			require.Equal(t, first.resp, again.resp, "the same prompt gets the same text, whatever the seed")

			text := first.resp.Text
			require.Len(t, strings.Fields(text), 50)
			require.True(t, unicode.IsUpper([]rune(text)[0]), "text starts a sentence: %q", text)
			require.True(t, strings.HasSuffix(text, "."), "text ends a sentence: %q", text)
			require.Equal(t, text, strings.Join(first.deltas, ""))
			require.Equal(t, 50, first.resp.Usage.OutputTokens)
			require.Equal(t, len(strings.Fields(prompt)), first.resp.Usage.InputTokens)
		})
	}

	t.Run("different prompts get different text", func(t *testing.T) {
		t.Parallel()
		sim := ai.NewSimulated(1)
		a := stream(t.Context(), sim, ai.Request{Model: "lorem", Prompt: "one"})
		b := stream(t.Context(), sim, ai.Request{Model: "lorem", Prompt: "two"})
		require.NoError(t, a.err)
		require.NoError(t, b.err)
		require.NotEqual(t, a.resp.Text, b.resp.Text)
	})
}

func TestSimulatedFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		options    map[string]any
		status     int
		retryable  bool
		retryAfter time.Duration
	}{
		{"429 asks to wait", map[string]any{"fail_rate": 1.0, "fail_status": 429.0}, 429, true, time.Second},
		{"500", map[string]any{"fail_rate": 1.0, "fail_status": 500.0}, 500, true, 0},
		{"529 asks to wait", map[string]any{"fail_rate": 1.0, "fail_status": 529.0}, 529, true, time.Second},
		{"400 is final", map[string]any{"fail_rate": 1.0, "fail_status": 400.0}, 400, false, 0},
		{"500 by default", map[string]any{"fail_rate": 1.0}, 500, true, 0},
		{"json.Number and int", map[string]any{"fail_rate": json.Number("1"), "fail_status": 503}, 503, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := stream(t.Context(), ai.NewSimulated(1), ai.Request{Model: "echo", Prompt: "hello world", Options: tt.options})
			var se *ai.StatusError
			require.ErrorAs(t, got.err, &se)
			require.Equal(t, "simulated", se.Provider)
			require.Equal(t, tt.status, se.Status)
			require.Equal(t, tt.retryable, ai.Retryable(got.err))
			require.Equal(t, tt.retryAfter, ai.RetryAfter(got.err))
			require.Empty(t, got.deltas, "a failing call streams nothing")
			require.Zero(t, got.resp)
		})
	}

	t.Run("fail_rate 0 never fails", func(t *testing.T) {
		t.Parallel()
		sim := ai.NewSimulated(1)
		for range 1000 {
			got := stream(t.Context(), sim, ai.Request{Model: "echo", Prompt: "hi", Options: map[string]any{"fail_rate": 0.0, "fail_status": 529.0}})
			require.NoError(t, got.err)
		}
	})

	t.Run("fail_rate between follows the seed", func(t *testing.T) {
		t.Parallel()
		outcomes := func(seed int64) []bool {
			sim := ai.NewSimulated(seed)
			var failed []bool
			for range 200 {
				got := stream(t.Context(), sim, ai.Request{Model: "echo", Prompt: "hi", Options: map[string]any{"fail_rate": 0.5}})
				failed = append(failed, got.err != nil)
			}
			return failed
		}
		first := outcomes(7)
		require.Equal(t, first, outcomes(7), "the same seed fails the same calls")
		require.Contains(t, first, true)
		require.Contains(t, first, false)
	})
}

func TestSimulatedLatency(t *testing.T) {
	t.Parallel()
	manyWords := strings.Repeat("word ", 10000)

	t.Run("cancel mid-stream returns promptly", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		firstDelta := make(chan struct{})
		go func() {
			<-firstDelta
			cancel()
		}()
		var once sync.Once
		start := time.Now()
		// 10,000 chunks over 600 s: 60 ms a chunk, so the whole call would take ten minutes.
		_, err := ai.NewSimulated(1).Stream(ctx, ai.Request{Model: "echo", Prompt: manyWords, Options: map[string]any{"latency_ms": 600000.0}},
			func(string) { once.Do(func() { close(firstDelta) }) })
		require.ErrorIs(t, err, context.Canceled)
		require.False(t, ai.Retryable(err))
		require.Less(t, time.Since(start), 30*time.Second)
	})

	t.Run("cancelled before a failing call", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		got := stream(ctx, ai.NewSimulated(1), ai.Request{Model: "echo", Prompt: "hi", Options: map[string]any{"latency_ms": 600000.0, "fail_rate": 1.0}})
		require.ErrorIs(t, got.err, context.Canceled)
		require.Empty(t, got.deltas)
	})

	t.Run("a deadline interrupts the wait before a failure", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
		defer cancel()
		got := stream(ctx, ai.NewSimulated(1), ai.Request{Model: "echo", Prompt: "hi", Options: map[string]any{"latency_ms": 600000.0, "fail_rate": 1.0}})
		require.ErrorIs(t, got.err, context.DeadlineExceeded)
		require.True(t, ai.Retryable(got.err))
	})

	t.Run("the call takes at least its latency", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name    string
			prompt  string
			options map[string]any
		}{
			{"streaming", "one two three four five", map[string]any{"latency_ms": 25.0}},
			{"empty output", "", map[string]any{"latency_ms": 25.0}},
			{"failing", "one two", map[string]any{"latency_ms": 25.0, "fail_rate": 1.0}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				start := time.Now()
				stream(t.Context(), ai.NewSimulated(1), ai.Request{Model: "echo", Prompt: tt.prompt, Options: tt.options})
				require.GreaterOrEqual(t, time.Since(start), 25*time.Millisecond)
			})
		}
	})

	t.Run("zero latency still notices cancellation", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		n := 0
		_, err := ai.NewSimulated(1).Stream(ctx, ai.Request{Model: "echo", Prompt: manyWords}, func(string) {
			n++
			cancel()
		})
		require.ErrorIs(t, err, context.Canceled)
		require.Equal(t, 1, n)
	})
}

func TestSimulatedValidateStep(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		model   string
		options map[string]any
		want    map[string]string // field → a fragment of its message
	}{
		{"echo without options", "echo", nil, nil},
		{"lorem with every option", "lorem", map[string]any{"latency_ms": 1500.0, "fail_rate": 0.25, "fail_status": 529.0}, nil},
		{"limits are allowed", "echo", map[string]any{"latency_ms": 600000.0, "fail_rate": 1.0, "fail_status": 400.0}, nil},
		{"zeros are allowed", "echo", map[string]any{"latency_ms": 0.0, "fail_rate": 0.0, "fail_status": 599.0}, nil},
		{"json.Number and ints", "echo", map[string]any{"latency_ms": json.Number("20"), "fail_rate": 0, "fail_status": int64(429)}, nil},
		{"unknown model", "gpt-9", nil, map[string]string{"model": `unknown model "gpt-9"; the simulated provider has echo, lorem`}},
		{"missing model", "", nil, map[string]string{"model": "a model is required; the simulated provider has echo, lorem"}},
		{"unknown option", "echo", map[string]any{"temperature": 0.2}, map[string]string{"options": `unknown option "temperature"`}},
		{"fail_rate 1.5", "echo", map[string]any{"fail_rate": 1.5}, map[string]string{"options": "fail_rate must be a number from 0 to 1, got 1.5"}},
		{"fail_rate below 0", "echo", map[string]any{"fail_rate": -0.1}, map[string]string{"options": "fail_rate must be a number from 0 to 1, got -0.1"}},
		{"latency_ms -1", "echo", map[string]any{"latency_ms": -1.0}, map[string]string{"options": "latency_ms must be a number of milliseconds from 0 to 600000, got -1"}},
		{"latency_ms too long", "echo", map[string]any{"latency_ms": 600001.0}, map[string]string{"options": "latency_ms must be a number of milliseconds from 0 to 600000, got 600001"}},
		{"fail_status 200", "echo", map[string]any{"fail_status": 200.0}, map[string]string{"options": "fail_status must be an HTTP error status, an integer from 400 to 599, got 200"}},
		{"fail_status 600", "echo", map[string]any{"fail_status": 600.0}, map[string]string{"options": "fail_status must be an HTTP error status"}},
		{"fail_status fraction", "echo", map[string]any{"fail_status": 429.5}, map[string]string{"options": "fail_status must be an HTTP error status, an integer from 400 to 599, got 429.5"}},
		{"latency_ms string", "echo", map[string]any{"latency_ms": "100"}, map[string]string{"options": `latency_ms must be a number of milliseconds from 0 to 600000, got "100"`}},
		{"fail_rate bool", "echo", map[string]any{"fail_rate": true}, map[string]string{"options": "fail_rate must be a number from 0 to 1, got true"}},
		{"fail_status null", "echo", map[string]any{"fail_status": nil}, map[string]string{"options": "fail_status must be an HTTP error status, an integer from 400 to 599, got null"}},
		{"fail_status object", "echo", map[string]any{"fail_status": map[string]any{"code": 500.0}}, map[string]string{"options": "fail_status must be"}},
		{"bad json.Number", "echo", map[string]any{"fail_rate": json.Number("lots")}, map[string]string{"options": "fail_rate must be a number from 0 to 1, got lots"}},
		{"model and options together", "nope", map[string]any{"fail_rate": 2.0}, map[string]string{"model": `unknown model "nope"`, "options": "fail_rate must be"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := ai.NewSimulated(1).ValidateStep(tt.model, tt.options)
			if tt.want == nil {
				require.Nil(t, got)
				return
			}
			require.Len(t, got, len(tt.want), "problems: %v", got)
			for field, fragment := range tt.want {
				require.Contains(t, got[field], fragment)
			}
		})
	}

	t.Run("every bad option is named, in order", func(t *testing.T) {
		t.Parallel()
		got := ai.NewSimulated(1).ValidateStep("echo", map[string]any{"fail_rate": 2.0, "latency_ms": -1.0, "seed": 3.0})
		require.Equal(t, map[string]string{"options": "fail_rate must be a number from 0 to 1, got 2; " +
			"latency_ms must be a number of milliseconds from 0 to 600000, got -1; " +
			`unknown option "seed"; the simulated provider has latency_ms, fail_rate and fail_status`}, got)
	})

	t.Run("Stream refuses what ValidateStep refuses", func(t *testing.T) {
		t.Parallel()
		sim := ai.NewSimulated(1)
		_, err := sim.Stream(t.Context(), ai.Request{Model: "gpt-9", Prompt: "hi"}, nil)
		require.ErrorContains(t, err, `unknown model "gpt-9"`)
		require.False(t, ai.Retryable(err))
		_, err = sim.Stream(t.Context(), ai.Request{Model: "echo", Prompt: "hi", Options: map[string]any{"fail_rate": 1.5}}, nil)
		require.ErrorContains(t, err, "fail_rate must be a number from 0 to 1")
		require.False(t, ai.Retryable(err))
	})
}

func TestSimulatedConcurrentUse(t *testing.T) {
	t.Parallel()
	sim := ai.NewSimulated(1)
	results := make([][]streamed, 8)
	var wg sync.WaitGroup
	for g := range results {
		wg.Go(func() {
			for range 200 {
				got := stream(t.Context(), sim, ai.Request{Model: "lorem", Prompt: "hi", Options: map[string]any{"fail_rate": 0.3}})
				results[g] = append(results[g], got)
			}
		})
	}
	wg.Wait()
	failed := 0
	for _, calls := range results {
		for _, got := range calls {
			if got.err != nil {
				require.ErrorAs(t, got.err, new(*ai.StatusError))
				failed++
				continue
			}
			require.Equal(t, got.resp.Text, strings.Join(got.deltas, ""))
		}
	}
	require.Positive(t, failed)
	require.Less(t, failed, 8*200)
}

func TestSimulatedModels(t *testing.T) {
	t.Parallel()
	sim := ai.NewSimulated(1)
	require.Equal(t, "simulated", sim.Name())
	models := sim.Models()
	require.Equal(t, []string{"echo", "lorem"}, models)
	models[0] = "changed"
	require.Equal(t, []string{"echo", "lorem"}, sim.Models())
}

func BenchmarkSimulatedZeroLatency(b *testing.B) {
	sim := ai.NewSimulated(1)
	ctx := b.Context()
	req := ai.Request{Model: "echo", Prompt: strings.Repeat("Summarise the incident report for the on-call team. ", 6)}
	deltas := 0
	onDelta := func(string) { deltas++ }
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sim.Stream(ctx, req, onDelta); err != nil {
			b.Fatal(err)
		}
	}
}
