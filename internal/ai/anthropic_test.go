package ai_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/ai"
)

// newAnthropic returns the provider pointed at baseURL with the test key.
func newAnthropic(baseURL string) *ai.Anthropic {
	return ai.NewAnthropic(ai.AnthropicConfig{APIKey: testAPIKey, BaseURL: baseURL})
}

// anthropicStart writes the events that open a message: message_start with
// the input tokens, content_block_start and a ping.
func anthropicStart(w http.ResponseWriter, inputTokens int) {
	startSSE(w)
	writeEvent(w, "message_start", fmt.Sprintf(`{"type":"message_start","message":{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":%d,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}`, inputTokens))
	writeEvent(w, "content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
	writeEvent(w, "ping", `{"type":"ping"}`)
}

// anthropicDelta writes one text delta.
func anthropicDelta(w http.ResponseWriter, text string) {
	writeEvent(w, "content_block_delta", fmt.Sprintf(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":%q}}`, text))
}

// anthropicFinish writes the events that close a message: content_block_stop,
// message_delta with the output tokens, and message_stop.
func anthropicFinish(w http.ResponseWriter, outputTokens int) {
	writeEvent(w, "content_block_stop", `{"type":"content_block_stop","index":0}`)
	writeEvent(w, "message_delta", fmt.Sprintf(`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":%d}}`, outputTokens))
	writeEvent(w, "message_stop", `{"type":"message_stop"}`)
}

// anthropicErrorBody is the API's error body for an error type and message.
func anthropicErrorBody(errorType, message string) string {
	return fmt.Sprintf(`{"type":"error","error":{"type":%q,"message":%q},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}`, errorType, message)
}

func TestAnthropicStream(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		options   map[string]any
		maxTokens float64 // the max_tokens sent
		system    string  // the system prompt sent, if any
	}{
		{"defaults", nil, ai.DefaultAnthropicMaxTokens, ""},
		{"options", map[string]any{"max_tokens": 300.0, "system": "Answer in French."}, 300, "Answer in French."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				anthropicStart(w, 25)
				for _, d := range []string{"Hello", ", brave", " new world", "!"} {
					anthropicDelta(w, d)
				}
				anthropicFinish(w, 15)
			})

			got := stream(t.Context(), newAnthropic(srv.URL), ai.Request{Model: "claude-sonnet-4-5", Prompt: "Say hello.", Options: tt.options})
			require.NoError(t, got.err)
			require.Equal(t, []string{"Hello", ", brave", " new world", "!"}, got.deltas)
			require.Equal(t, "Hello, brave new world!", got.resp.Text)
			require.Equal(t, ai.Usage{InputTokens: 25, OutputTokens: 15}, got.resp.Usage)

			req := srv.lastRequest()
			require.Equal(t, http.MethodPost, req.Method)
			require.Equal(t, "/v1/messages", req.Path)
			require.Equal(t, "Bearer "+testAPIKey, req.Header.Get("Authorization"), "SDK v2 sends the key as a bearer token")
			require.Equal(t, "2026-10-21", req.Header.Get("Anthropic-Version"))
			require.Equal(t, "0", req.Header.Get("X-Stainless-Retry-Count"))
			require.Equal(t, "claude-sonnet-4-5", req.Body["model"])
			require.Equal(t, tt.maxTokens, req.Body["max_tokens"])
			require.Equal(t, true, req.Body["stream"])
			require.Equal(t, []any{map[string]any{
				"role":    "user",
				"content": []any{map[string]any{"type": "text", "text": "Say hello."}},
			}}, req.Body["messages"])
			if tt.system == "" {
				require.NotContains(t, req.Body, "system")
			} else {
				require.Equal(t, []any{map[string]any{"type": "text", "text": tt.system}}, req.Body["system"])
			}
			require.NotContains(t, req.Body, "temperature")
		})
	}
}

func TestAnthropicStreamWithoutDeltaCallback(t *testing.T) {
	t.Parallel()
	srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		anthropicStart(w, 3)
		anthropicDelta(w, "ok")
		anthropicFinish(w, 1)
	})
	resp, err := newAnthropic(srv.URL).Stream(t.Context(), ai.Request{Model: "claude-haiku-4-5", Prompt: "hi"}, nil)
	require.NoError(t, err)
	require.Equal(t, ai.Response{Text: "ok", Usage: ai.Usage{InputTokens: 3, OutputTokens: 1}}, resp)
}

func TestAnthropicStatusErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		retryable  bool
		retryAfter time.Duration
		message    string
	}{
		{"408 request timeout", 408, nil, anthropicErrorBody("timeout_error", "Request timed out"), true, 0, "Request timed out"},
		{"409 conflict", 409, nil, anthropicErrorBody("conflict_error", "Conflict"), true, 0, "Conflict"},
		{"429 rate limited", 429, map[string]string{"retry-after": "7"}, anthropicErrorBody("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"), true, 7 * time.Second, "Number of request tokens has exceeded your per-minute rate limit"},
		{"429 with retry-after-ms", 429, map[string]string{"retry-after-ms": "1500", "retry-after": "2"}, anthropicErrorBody("rate_limit_error", "Rate limited"), true, 1500 * time.Millisecond, "Rate limited"},
		{"500 api error", 500, nil, anthropicErrorBody("api_error", "Internal server error"), true, 0, "Internal server error"},
		{"500 asking for a retry", 500, map[string]string{"x-should-retry": "true"}, anthropicErrorBody("api_error", "Internal server error"), true, 0, "Internal server error"},
		{"502 html from a proxy", 502, nil, "<html><body><h1>502 Bad Gateway</h1></body></html>", true, 0, "Bad Gateway"},
		{"503 unavailable", 503, map[string]string{"retry-after": "30"}, anthropicErrorBody("api_error", "Service unavailable"), true, 30 * time.Second, "Service unavailable"},
		{"504 gateway timeout", 504, nil, anthropicErrorBody("timeout_error", "Gateway timeout"), true, 0, "Gateway timeout"},
		{"529 overloaded", 529, nil, anthropicErrorBody("overloaded_error", "Overloaded"), true, 0, "Overloaded"},
		{"400 bad request", 400, nil, anthropicErrorBody("invalid_request_error", "max_tokens: Field required"), false, 0, "max_tokens: Field required"},
		{"401 wrong key", 401, nil, anthropicErrorBody("authentication_error", "invalid x-api-key"), false, 0, "invalid x-api-key"},
		{"403 forbidden", 403, nil, anthropicErrorBody("permission_error", "Your API key does not have permission to use the specified resource."), false, 0, "Your API key does not have permission to use the specified resource."},
		{"404 unknown model", 404, nil, anthropicErrorBody("not_found_error", "model: claude-nonexistent"), false, 0, "model: claude-nonexistent"},
		{"413 too large", 413, nil, anthropicErrorBody("request_too_large", "Request exceeds the maximum allowed number of bytes."), false, 0, "Request exceeds the maximum allowed number of bytes."},
		{"422 unprocessable", 422, nil, anthropicErrorBody("invalid_request_error", "Unprocessable"), false, 0, "Unprocessable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, tt.status, tt.header, tt.body)
			})

			got := stream(t.Context(), newAnthropic(srv.URL), ai.Request{Model: "claude-sonnet-4-5", Prompt: "hi"})
			require.Error(t, got.err)
			se, ok := errors.AsType[*ai.StatusError](got.err)
			require.True(t, ok, "want a *StatusError, got %T: %v", got.err, got.err)
			require.Equal(t, &ai.StatusError{Provider: "anthropic", Status: tt.status, RetryAfter: tt.retryAfter, Message: tt.message}, se)
			require.Equal(t, tt.retryable, ai.Retryable(got.err))
			require.Equal(t, tt.retryAfter, ai.RetryAfter(got.err))
			require.Equal(t, int32(1), srv.requests.Load(), "the SDK must not retry")
			require.Empty(t, got.deltas)
			require.Zero(t, got.resp)
		})
	}
}

func TestAnthropicRetryAfterDate(t *testing.T) {
	t.Parallel()
	at := time.Now().Add(time.Minute).UTC().Format(http.TimeFormat)
	srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 429, map[string]string{"retry-after": at}, anthropicErrorBody("rate_limit_error", "Rate limited"))
	})
	got := stream(t.Context(), newAnthropic(srv.URL), ai.Request{Model: "claude-sonnet-4-5", Prompt: "hi"})
	require.True(t, ai.Retryable(got.err))
	require.InDelta(t, time.Minute.Seconds(), ai.RetryAfter(got.err).Seconds(), 2)
}

func TestAnthropicRetryAfterHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		header map[string]string
		want   time.Duration
	}{
		{"none", nil, 0},
		{"seconds", map[string]string{"retry-after": "7"}, 7 * time.Second},
		{"fractional seconds", map[string]string{"retry-after": "0.5"}, 500 * time.Millisecond},
		{"milliseconds first", map[string]string{"retry-after-ms": "1500", "retry-after": "9"}, 1500 * time.Millisecond},
		{"bad milliseconds", map[string]string{"retry-after-ms": "soon", "retry-after": "9"}, 9 * time.Second},
		{"zero", map[string]string{"retry-after": "0"}, 0},
		{"negative", map[string]string{"retry-after": "-5"}, 0},
		{"not a number", map[string]string{"retry-after": "NaN"}, 0},
		{"garbage", map[string]string{"retry-after": "later"}, 0},
		{"a date in the past", map[string]string{"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0},
		{"huge", map[string]string{"retry-after": "1e300"}, 24 * time.Hour},
		{"huge milliseconds", map[string]string{"retry-after-ms": "1e300"}, 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, 429, tt.header, anthropicErrorBody("rate_limit_error", "Rate limited"))
			})
			got := stream(t.Context(), newAnthropic(srv.URL), ai.Request{Model: "claude-sonnet-4-5", Prompt: "hi"})
			require.True(t, ai.Retryable(got.err))
			require.Equal(t, tt.want, ai.RetryAfter(got.err))
		})
	}
}

func TestAnthropicErrorEvent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		errorType string
		message   string
		status    int
		retryable bool
	}{
		{"overloaded", "overloaded_error", "Overloaded", 529, true},
		{"api error", "api_error", "Internal server error", 500, true},
		{"rate limited", "rate_limit_error", "Rate limited", 429, true},
		{"timeout", "timeout_error", "Stream timed out", 504, true},
		{"unknown type", "brand_new_error", "Something new", 500, true},
		{"invalid request", "invalid_request_error", "Prompt is too long", 400, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				anthropicStart(w, 10)
				anthropicDelta(w, "Partial ")
				writeEvent(w, "error", fmt.Sprintf(`{"type":"error","error":{"type":%q,"message":%q}}`, tt.errorType, tt.message))
			})

			got := stream(t.Context(), newAnthropic(srv.URL), ai.Request{Model: "claude-sonnet-4-5", Prompt: "hi"})
			se, ok := errors.AsType[*ai.StatusError](got.err)
			require.True(t, ok, "want a *StatusError, got %T: %v", got.err, got.err)
			require.Equal(t, &ai.StatusError{Provider: "anthropic", Status: tt.status, Message: tt.message}, se)
			require.Equal(t, tt.retryable, ai.Retryable(got.err))
			require.Equal(t, []string{"Partial "}, got.deltas, "text before the error was streamed")
			require.Zero(t, got.resp)
			require.Equal(t, int32(1), srv.requests.Load())
		})
	}
}

func TestAnthropicStreamCutShort(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		end  func(t *testing.T, w http.ResponseWriter)
	}{
		{"connection dropped", hangUp},
		{"body ended before message_stop", func(*testing.T, http.ResponseWriter) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				anthropicStart(w, 10)
				anthropicDelta(w, "Hello")
				anthropicDelta(w, " there")
				tt.end(t, w)
			})

			got := stream(t.Context(), newAnthropic(srv.URL), ai.Request{Model: "claude-sonnet-4-5", Prompt: "hi"})
			require.ErrorIs(t, got.err, io.ErrUnexpectedEOF)
			require.True(t, ai.Retryable(got.err))
			require.Equal(t, []string{"Hello", " there"}, got.deltas)
			require.Zero(t, got.resp)
			require.Equal(t, int32(1), srv.requests.Load())
		})
	}
}

func TestAnthropicTimeout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		handle func(w http.ResponseWriter, r *http.Request)
	}{
		{"no response", func(w http.ResponseWriter, r *http.Request) { waitForClient(r) }},
		{"stalled stream", func(w http.ResponseWriter, r *http.Request) {
			anthropicStart(w, 10)
			anthropicDelta(w, "Hel")
			waitForClient(r)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newFakeServer(t, tt.handle)
			ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			defer cancel()

			got := stream(ctx, newAnthropic(srv.URL), ai.Request{Model: "claude-sonnet-4-5", Prompt: "hi"})
			require.ErrorIs(t, got.err, context.DeadlineExceeded)
			require.True(t, ai.Retryable(got.err))
			require.Zero(t, got.resp)
			require.Equal(t, int32(1), srv.requests.Load())
		})
	}
}

func TestAnthropicConnectionRefused(t *testing.T) {
	t.Parallel()
	got := stream(t.Context(), newAnthropic(refusedURL(t)), ai.Request{Model: "claude-sonnet-4-5", Prompt: "hi"})
	require.ErrorIs(t, got.err, syscall.ECONNREFUSED)
	require.True(t, ai.Retryable(got.err))
	require.Zero(t, got.resp)
}

func TestAnthropicCanceled(t *testing.T) {
	t.Parallel()
	t.Run("before the call", func(t *testing.T) {
		t.Parallel()
		srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
			anthropicStart(w, 1)
			anthropicFinish(w, 1)
		})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()

		got := stream(ctx, newAnthropic(srv.URL), ai.Request{Model: "claude-sonnet-4-5", Prompt: "hi"})
		require.ErrorIs(t, got.err, context.Canceled)
		require.False(t, ai.Retryable(got.err))
		require.Equal(t, int32(0), srv.requests.Load())
	})
	t.Run("during the stream", func(t *testing.T) {
		t.Parallel()
		srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
			anthropicStart(w, 1)
			anthropicDelta(w, "first")
			waitForClient(r)
		})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()

		var deltas []string
		_, err := newAnthropic(srv.URL).Stream(ctx, ai.Request{Model: "claude-sonnet-4-5", Prompt: "hi"}, func(d string) {
			deltas = append(deltas, d)
			cancel()
		})
		require.ErrorIs(t, err, context.Canceled)
		require.False(t, ai.Retryable(err))
		require.Equal(t, []string{"first"}, deltas)
	})
}

func TestAnthropicNoAPIKey(t *testing.T) {
	t.Parallel()
	srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 500, nil, anthropicErrorBody("api_error", "should not be called"))
	})
	p := ai.NewAnthropic(ai.AnthropicConfig{BaseURL: srv.URL})

	got := stream(t.Context(), p, ai.Request{Model: "claude-sonnet-4-5", Prompt: "hi"})
	require.ErrorIs(t, got.err, ai.ErrNoAPIKey)
	require.ErrorContains(t, got.err, "anthropic")
	require.False(t, ai.Retryable(got.err))
	require.Equal(t, int32(0), srv.requests.Load())
}

func TestAnthropicKeyNotInErrors(t *testing.T) {
	t.Parallel()
	srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 401, nil, anthropicErrorBody("authentication_error", "invalid x-api-key "+testAPIKey))
	})
	got := stream(t.Context(), newAnthropic(srv.URL), ai.Request{Model: "claude-sonnet-4-5", Prompt: "hi"})
	require.Error(t, got.err)
	require.NotContains(t, got.err.Error(), testAPIKey)
	require.Contains(t, got.err.Error(), "invalid x-api-key")
}

func TestAnthropicInvalidRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		req  ai.Request
		want string
	}{
		{"no model", ai.Request{Prompt: "hi"}, "anthropic: a model is required"},
		{"bad option", ai.Request{Model: "claude-sonnet-4-5", Prompt: "hi", Options: map[string]any{"max_tokens": 0.0}}, "max_tokens must be an integer from 1 to 64000, got 0"},
		{"temperature", ai.Request{Model: "claude-sonnet-4-5", Prompt: "hi", Options: map[string]any{"temperature": 0.5}}, "temperature is not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {})
			got := stream(t.Context(), newAnthropic(srv.URL), tt.req)
			require.ErrorContains(t, got.err, tt.want)
			require.False(t, ai.Retryable(got.err))
			require.Equal(t, int32(0), srv.requests.Load())
		})
	}
}

func TestAnthropicValidateStep(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		model   string
		options map[string]any
		want    map[string]string // field → a part of its message
	}{
		{"model only", "claude-sonnet-4-5", nil, nil},
		{"any model name", "claude-future-9", map[string]any{}, nil},
		{"all options", "claude-sonnet-4-5", map[string]any{"max_tokens": 64000, "system": "Be brief."}, nil},
		{"max_tokens from JSON", "claude-sonnet-4-5", map[string]any{"max_tokens": 1.0}, nil},
		{"empty system", "claude-sonnet-4-5", map[string]any{"system": ""}, nil},
		{"no model", "", nil, map[string]string{"model": "a model is required"}},
		{"max_tokens zero", "m", map[string]any{"max_tokens": 0}, map[string]string{"options": "max_tokens must be an integer from 1 to 64000, got 0"}},
		{"max_tokens too big", "m", map[string]any{"max_tokens": 64001}, map[string]string{"options": "max_tokens must be an integer from 1 to 64000, got 64001"}},
		{"max_tokens fraction", "m", map[string]any{"max_tokens": 10.5}, map[string]string{"options": "max_tokens must be an integer"}},
		{"max_tokens string", "m", map[string]any{"max_tokens": "100"}, map[string]string{"options": `max_tokens must be an integer from 1 to 64000, got "100"`}},
		{"temperature", "m", map[string]any{"temperature": 0.2}, map[string]string{"options": "temperature is not supported"}},
		{"system not a string", "m", map[string]any{"system": 5}, map[string]string{"options": "system must be a string, got 5"}},
		{"unknown option", "m", map[string]any{"top_k": 5}, map[string]string{"options": `unknown option "top_k"; the anthropic provider has max_tokens and system`}},
		{"model and options", "", map[string]any{"nope": true}, map[string]string{"model": "a model is required", "options": `unknown option "nope"`}},
	}
	p := newAnthropic("http://127.0.0.1:1")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := p.ValidateStep(tt.model, tt.options)
			require.Len(t, got, len(tt.want), "problems: %v", got)
			for field, part := range tt.want {
				require.Contains(t, got[field], part)
			}
		})
	}
}

func TestAnthropicValidateStepNamesEachProblem(t *testing.T) {
	t.Parallel()
	got := newAnthropic("http://127.0.0.1:1").ValidateStep("m", map[string]any{"max_tokens": -1, "system": 1, "x": 1})
	require.Equal(t, map[string]string{"options": "max_tokens must be an integer from 1 to 64000, got -1; " +
		"system must be a string, got 1; " +
		`unknown option "x"; the anthropic provider has max_tokens and system`}, got)
}
