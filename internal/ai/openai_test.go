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

// newOpenAI returns the provider pointed at the /v1 base URL of server URL
// srvURL, as NOFX_OPENAI_BASE_URL would for a compatible server.
func newOpenAI(srvURL string) *ai.OpenAI {
	return ai.NewOpenAI(ai.OpenAIConfig{APIKey: testAPIKey, BaseURL: srvURL + "/v1"})
}

// openAIChunk writes one chat.completion.chunk with choices and usage, both JSON.
func openAIChunk(w http.ResponseWriter, choices, usage string) {
	writeEvent(w, "", fmt.Sprintf(`{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741570283,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_06737a9306","choices":%s,"usage":%s}`, choices, usage))
}

// openAIStart writes the first chunk of a completion, which names the role.
func openAIStart(w http.ResponseWriter) {
	startSSE(w)
	openAIChunk(w, `[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]`, "null")
}

// openAIDelta writes a chunk with one piece of content.
func openAIDelta(w http.ResponseWriter, text string) {
	openAIChunk(w, fmt.Sprintf(`[{"index":0,"delta":{"content":%q},"logprobs":null,"finish_reason":null}]`, text), "null")
}

// openAIFinish writes the chunk with the finish reason, the usage chunk that
// stream_options.include_usage asks for, and [DONE].
func openAIFinish(w http.ResponseWriter, promptTokens, completionTokens int) {
	openAIChunk(w, `[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]`, "null")
	openAIChunk(w, "[]", fmt.Sprintf(`{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`, promptTokens, completionTokens, promptTokens+completionTokens))
	writeEvent(w, "", "[DONE]")
}

// openAIErrorBody is OpenAI's error body.
func openAIErrorBody(message, errorType, code string) string {
	c := "null"
	if code != "" {
		c = fmt.Sprintf("%q", code)
	}
	return fmt.Sprintf(`{"error":{"message":%q,"type":%q,"param":null,"code":%s}}`, message, errorType, c)
}

func TestOpenAIStream(t *testing.T) {
	t.Parallel()
	userMessage := map[string]any{"role": "user", "content": "Say hello."}
	tests := []struct {
		name     string
		config   ai.OpenAIConfig
		options  map[string]any
		messages []any
		fields   map[string]any // body fields sent, beyond model, messages, stream and stream_options
	}{
		{"defaults", ai.OpenAIConfig{}, nil, []any{userMessage}, map[string]any{}},
		{"config max tokens", ai.OpenAIConfig{MaxTokens: 800}, nil, []any{userMessage}, map[string]any{"max_completion_tokens": 800.0}},
		{
			"options", ai.OpenAIConfig{MaxTokens: 800},
			map[string]any{"max_tokens": 300.0, "temperature": 1.5, "system": "Answer in French."},
			[]any{map[string]any{"role": "system", "content": "Answer in French."}, userMessage},
			map[string]any{"max_completion_tokens": 300.0, "temperature": 1.5},
		},
		{"temperature zero is sent", ai.OpenAIConfig{}, map[string]any{"temperature": 0}, []any{userMessage}, map[string]any{"temperature": 0.0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				openAIStart(w)
				for _, d := range []string{"Hello", ", brave", " new world", "!"} {
					openAIDelta(w, d)
				}
				openAIFinish(w, 9, 12)
			})
			cfg := tt.config
			cfg.APIKey, cfg.BaseURL = testAPIKey, srv.URL+"/v1"

			got := stream(t.Context(), ai.NewOpenAI(cfg), ai.Request{Model: "gpt-4o-mini", Prompt: "Say hello.", Options: tt.options})
			require.NoError(t, got.err)
			require.Equal(t, []string{"Hello", ", brave", " new world", "!"}, got.deltas)
			require.Equal(t, "Hello, brave new world!", got.resp.Text)
			require.Equal(t, ai.Usage{InputTokens: 9, OutputTokens: 12}, got.resp.Usage)

			req := srv.lastRequest()
			require.Equal(t, http.MethodPost, req.Method)
			require.Equal(t, "/v1/chat/completions", req.Path)
			require.Equal(t, "Bearer "+testAPIKey, req.Header.Get("Authorization"))
			require.Equal(t, "0", req.Header.Get("X-Stainless-Retry-Count"))
			want := map[string]any{
				"model":          "gpt-4o-mini",
				"messages":       tt.messages,
				"stream":         true,
				"stream_options": map[string]any{"include_usage": true},
			}
			for k, v := range tt.fields {
				want[k] = v
			}
			require.Equal(t, want, req.Body)
		})
	}
}

func TestOpenAIStreamWithoutUsage(t *testing.T) {
	t.Parallel()
	// A compatible server that ignores stream_options still finishes the stream.
	srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		openAIStart(w)
		openAIDelta(w, "ok")
		writeEvent(w, "", "[DONE]")
	})
	resp, err := newOpenAI(srv.URL).Stream(t.Context(), ai.Request{Model: "llama3.2", Prompt: "hi"}, nil)
	require.NoError(t, err)
	require.Equal(t, ai.Response{Text: "ok"}, resp)
}

func TestOpenAIStatusErrors(t *testing.T) {
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
		{"408 request timeout", 408, nil, openAIErrorBody("Request timed out.", "server_error", ""), true, 0, "Request timed out."},
		{"409 conflict", 409, nil, openAIErrorBody("Conflict.", "invalid_request_error", ""), true, 0, "Conflict."},
		{"429 rate limited", 429, map[string]string{"retry-after": "7"}, openAIErrorBody("Rate limit reached for gpt-4o-mini in organization org-x on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.", "requests", "rate_limit_exceeded"), true, 7 * time.Second, "Rate limit reached for gpt-4o-mini in organization org-x on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s."},
		{"429 with retry-after-ms", 429, map[string]string{"retry-after-ms": "250"}, openAIErrorBody("Rate limited.", "tokens", "rate_limit_exceeded"), true, 250 * time.Millisecond, "Rate limited."},
		{"500 server error", 500, nil, openAIErrorBody("The server had an error while processing your request. Sorry about that!", "server_error", ""), true, 0, "The server had an error while processing your request. Sorry about that!"},
		{"500 asking for a retry", 500, map[string]string{"x-should-retry": "true"}, openAIErrorBody("Retry me.", "server_error", ""), true, 0, "Retry me."},
		{"502 html from a proxy", 502, nil, "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>", true, 0, "Bad Gateway"},
		{"503 overloaded", 503, map[string]string{"retry-after": "30"}, openAIErrorBody("The engine is currently overloaded, please try again later.", "server_error", ""), true, 30 * time.Second, "The engine is currently overloaded, please try again later."},
		{"504 gateway timeout", 504, nil, openAIErrorBody("Gateway timeout.", "server_error", ""), true, 0, "Gateway timeout."},
		{"529 overloaded gateway", 529, nil, openAIErrorBody("Overloaded.", "overloaded_error", ""), true, 0, "Overloaded."},
		{"400 bad request", 400, nil, openAIErrorBody("Invalid value for 'temperature': expected a decimal.", "invalid_request_error", "invalid_value"), false, 0, "Invalid value for 'temperature': expected a decimal."},
		{"401 wrong key", 401, nil, openAIErrorBody("Incorrect API key provided: sk-wrong. You can find your API key at https://platform.openai.com/account/api-keys.", "invalid_request_error", "invalid_api_key"), false, 0, "Incorrect API key provided: sk-wrong. You can find your API key at https://platform.openai.com/account/api-keys."},
		{"403 forbidden", 403, nil, openAIErrorBody("Project `proj_x` does not have access to model `gpt-5`", "invalid_request_error", "model_not_found"), false, 0, "Project `proj_x` does not have access to model `gpt-5`"},
		{"404 unknown model", 404, nil, openAIErrorBody("The model `gpt-nonexistent` does not exist or you do not have access to it.", "invalid_request_error", "model_not_found"), false, 0, "The model `gpt-nonexistent` does not exist or you do not have access to it."},
		{"404 from vLLM, bare error object", 404, nil, `{"object":"error","message":"The model ` + "`x`" + ` does not exist.","type":"NotFoundError","param":null,"code":404}`, false, 0, "The model `x` does not exist."},
		{"500 with an error the SDK cannot decode", 500, nil, `{"error":true}`, true, 0, "Internal Server Error"},
		{"413 too large", 413, nil, openAIErrorBody("Request too large.", "invalid_request_error", ""), false, 0, "Request too large."},
		{"422 unprocessable", 422, nil, openAIErrorBody("Unprocessable.", "invalid_request_error", ""), false, 0, "Unprocessable."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, tt.status, tt.header, tt.body)
			})

			got := stream(t.Context(), newOpenAI(srv.URL), ai.Request{Model: "gpt-4o-mini", Prompt: "hi"})
			require.Error(t, got.err)
			se, ok := errors.AsType[*ai.StatusError](got.err)
			require.True(t, ok, "want a *StatusError, got %T: %v", got.err, got.err)
			require.Equal(t, &ai.StatusError{Provider: "openai", Status: tt.status, RetryAfter: tt.retryAfter, Message: tt.message}, se)
			require.Equal(t, tt.retryable, ai.Retryable(got.err))
			require.Equal(t, tt.retryAfter, ai.RetryAfter(got.err))
			require.Equal(t, int32(1), srv.requests.Load(), "the SDK must not retry")
			require.Empty(t, got.deltas)
			require.Zero(t, got.resp)
		})
	}
}

func TestOpenAIRetryAfterDate(t *testing.T) {
	t.Parallel()
	at := time.Now().Add(time.Minute).UTC().Format(http.TimeFormat)
	srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 429, map[string]string{"retry-after": at}, openAIErrorBody("Rate limited.", "requests", "rate_limit_exceeded"))
	})
	got := stream(t.Context(), newOpenAI(srv.URL), ai.Request{Model: "gpt-4o-mini", Prompt: "hi"})
	require.True(t, ai.Retryable(got.err))
	require.InDelta(t, time.Minute.Seconds(), ai.RetryAfter(got.err).Seconds(), 2)
}

func TestOpenAIErrorInStream(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		data      string
		status    int
		message   string
		retryable bool
	}{
		{"server error", openAIErrorBody("The server had an error while processing your request.", "server_error", ""), 500, "The server had an error while processing your request.", true},
		{"rate limited", openAIErrorBody("Rate limit reached.", "tokens", "rate_limit_exceeded"), 429, "Rate limit reached.", true},
		{"overloaded", openAIErrorBody("Overloaded.", "overloaded_error", ""), 503, "Overloaded.", true},
		{"numeric code", `{"error":{"object":"error","message":"Engine loop has died","type":"InternalServerError","param":null,"code":500}}`, 500, "Engine loop has died", true},
		{"error as a string", `{"error":"model runner has unexpectedly stopped"}`, 500, "model runner has unexpectedly stopped", true},
		{"invalid request", openAIErrorBody("This model's maximum context length is 128000 tokens.", "invalid_request_error", "context_length_exceeded"), 400, "This model's maximum context length is 128000 tokens.", false},
		{"numeric client code", `{"error":{"message":"Bad input","type":"BadRequestError","code":400}}`, 400, "Bad input", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				openAIStart(w)
				openAIDelta(w, "Partial ")
				writeEvent(w, "", tt.data)
			})

			got := stream(t.Context(), newOpenAI(srv.URL), ai.Request{Model: "gpt-4o-mini", Prompt: "hi"})
			se, ok := errors.AsType[*ai.StatusError](got.err)
			require.True(t, ok, "want a *StatusError, got %T: %v", got.err, got.err)
			require.Equal(t, &ai.StatusError{Provider: "openai", Status: tt.status, Message: tt.message}, se)
			require.Equal(t, tt.retryable, ai.Retryable(got.err))
			require.Equal(t, []string{"Partial "}, got.deltas, "text before the error was streamed")
			require.Zero(t, got.resp)
			require.Equal(t, int32(1), srv.requests.Load())
		})
	}
}

func TestOpenAIStreamCutShort(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		end  func(t *testing.T, w http.ResponseWriter)
	}{
		{"connection dropped", hangUp},
		{"body ended before [DONE]", func(*testing.T, http.ResponseWriter) {}},
		{"body ended after the usage chunk", func(t *testing.T, w http.ResponseWriter) {
			openAIChunk(w, `[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]`, "null")
			openAIChunk(w, "[]", `{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}`)
		}},
		{"data [DONE] inside content", func(t *testing.T, w http.ResponseWriter) {
			openAIDelta(w, "\ndata: [DONE]\n")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				openAIStart(w)
				openAIDelta(w, "Hello")
				openAIDelta(w, " there")
				tt.end(t, w)
			})

			got := stream(t.Context(), newOpenAI(srv.URL), ai.Request{Model: "gpt-4o-mini", Prompt: "hi"})
			require.ErrorIs(t, got.err, io.ErrUnexpectedEOF)
			require.True(t, ai.Retryable(got.err))
			require.Equal(t, "Hello", got.deltas[0])
			require.Zero(t, got.resp)
			require.Equal(t, int32(1), srv.requests.Load())
		})
	}
}

func TestOpenAITimeout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		handle func(w http.ResponseWriter, r *http.Request)
	}{
		{"no response", func(w http.ResponseWriter, r *http.Request) { waitForClient(r) }},
		{"stalled stream", func(w http.ResponseWriter, r *http.Request) {
			openAIStart(w)
			openAIDelta(w, "Hel")
			waitForClient(r)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newFakeServer(t, tt.handle)
			ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			defer cancel()

			got := stream(ctx, newOpenAI(srv.URL), ai.Request{Model: "gpt-4o-mini", Prompt: "hi"})
			require.ErrorIs(t, got.err, context.DeadlineExceeded)
			require.True(t, ai.Retryable(got.err))
			require.Zero(t, got.resp)
			require.Equal(t, int32(1), srv.requests.Load())
		})
	}
}

func TestOpenAIConnectionRefused(t *testing.T) {
	t.Parallel()
	got := stream(t.Context(), newOpenAI(refusedURL(t)), ai.Request{Model: "gpt-4o-mini", Prompt: "hi"})
	require.ErrorIs(t, got.err, syscall.ECONNREFUSED)
	require.True(t, ai.Retryable(got.err))
	require.Zero(t, got.resp)
}

func TestOpenAICanceled(t *testing.T) {
	t.Parallel()
	t.Run("before the call", func(t *testing.T) {
		t.Parallel()
		srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
			openAIStart(w)
			openAIFinish(w, 1, 1)
		})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()

		got := stream(ctx, newOpenAI(srv.URL), ai.Request{Model: "gpt-4o-mini", Prompt: "hi"})
		require.ErrorIs(t, got.err, context.Canceled)
		require.False(t, ai.Retryable(got.err))
		require.Equal(t, int32(0), srv.requests.Load())
	})
	t.Run("during the stream", func(t *testing.T) {
		t.Parallel()
		srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
			openAIStart(w)
			openAIDelta(w, "first")
			waitForClient(r)
		})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()

		var deltas []string
		_, err := newOpenAI(srv.URL).Stream(ctx, ai.Request{Model: "gpt-4o-mini", Prompt: "hi"}, func(d string) {
			deltas = append(deltas, d)
			cancel()
		})
		require.ErrorIs(t, err, context.Canceled)
		require.False(t, ai.Retryable(err))
		require.Equal(t, []string{"first"}, deltas)
	})
}

func TestOpenAINoAPIKey(t *testing.T) {
	t.Parallel()
	srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 500, nil, openAIErrorBody("should not be called", "server_error", ""))
	})
	p := ai.NewOpenAI(ai.OpenAIConfig{BaseURL: srv.URL + "/v1"})

	got := stream(t.Context(), p, ai.Request{Model: "gpt-4o-mini", Prompt: "hi"})
	require.ErrorIs(t, got.err, ai.ErrNoAPIKey)
	require.ErrorContains(t, got.err, "openai")
	require.False(t, ai.Retryable(got.err))
	require.Equal(t, int32(0), srv.requests.Load())
}

func TestOpenAIKeyNotInErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		handle func(w http.ResponseWriter, r *http.Request)
	}{
		{"error response", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 401, nil, openAIErrorBody("Incorrect API key provided: "+testAPIKey+".", "invalid_request_error", "invalid_api_key"))
		}},
		{"error in stream", func(w http.ResponseWriter, r *http.Request) {
			openAIStart(w)
			writeEvent(w, "", openAIErrorBody("key "+testAPIKey+" revoked", "invalid_request_error", "invalid_api_key"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newFakeServer(t, tt.handle)
			got := stream(t.Context(), newOpenAI(srv.URL), ai.Request{Model: "gpt-4o-mini", Prompt: "hi"})
			require.Error(t, got.err)
			require.NotContains(t, got.err.Error(), testAPIKey)
			require.Contains(t, got.err.Error(), "[redacted]")
		})
	}
}

func TestOpenAIInvalidRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		req  ai.Request
		want string
	}{
		{"no model", ai.Request{Prompt: "hi"}, "openai: a model is required"},
		{"bad option", ai.Request{Model: "gpt-4o-mini", Prompt: "hi", Options: map[string]any{"temperature": 3.0}}, "temperature must be a number from 0 to 2, got 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newFakeServer(t, func(w http.ResponseWriter, r *http.Request) {})
			got := stream(t.Context(), newOpenAI(srv.URL), tt.req)
			require.ErrorContains(t, got.err, tt.want)
			require.False(t, ai.Retryable(got.err))
			require.Equal(t, int32(0), srv.requests.Load())
		})
	}
}

func TestOpenAIValidateStep(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		model   string
		options map[string]any
		want    map[string]string // field → a part of its message
	}{
		{"model only", "gpt-4o-mini", nil, nil},
		{"a compatible server's model", "llama3.2:3b", map[string]any{}, nil},
		{"all options", "gpt-4o-mini", map[string]any{"max_tokens": 128000, "temperature": 2, "system": "Be brief."}, nil},
		{"temperature zero", "gpt-4o-mini", map[string]any{"temperature": 0.0}, nil},
		{"no model", "", nil, map[string]string{"model": "a model is required"}},
		{"max_tokens zero", "m", map[string]any{"max_tokens": 0}, map[string]string{"options": "max_tokens must be an integer from 1 to 128000, got 0"}},
		{"max_tokens too big", "m", map[string]any{"max_tokens": 128001}, map[string]string{"options": "max_tokens must be an integer from 1 to 128000, got 128001"}},
		{"temperature too high", "m", map[string]any{"temperature": 2.5}, map[string]string{"options": "temperature must be a number from 0 to 2, got 2.5"}},
		{"temperature negative", "m", map[string]any{"temperature": -0.1}, map[string]string{"options": "temperature must be a number from 0 to 2, got -0.1"}},
		{"temperature string", "m", map[string]any{"temperature": "hot"}, map[string]string{"options": `temperature must be a number from 0 to 2, got "hot"`}},
		{"system not a string", "m", map[string]any{"system": []any{"a"}}, map[string]string{"options": "system must be a string"}},
		{"unknown option", "m", map[string]any{"top_p": 0.9}, map[string]string{"options": `unknown option "top_p"; the openai provider has max_tokens, temperature and system`}},
		{"model and options", "", map[string]any{"seed": 1}, map[string]string{"model": "a model is required", "options": `unknown option "seed"`}},
	}
	p := newOpenAI("http://127.0.0.1:1")
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

func TestChatProvidersInRegistry(t *testing.T) {
	t.Parallel()
	r := ai.NewRegistry(ai.NewAnthropic(ai.AnthropicConfig{}), ai.NewOpenAI(ai.OpenAIConfig{}), ai.NewSimulated(1))
	require.Equal(t, []string{"anthropic", "openai", "simulated"}, r.Names())
}
