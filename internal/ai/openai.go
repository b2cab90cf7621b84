package ai

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/ssestream"
)

// OpenAIName is the name of the OpenAI provider in steps and plans.
const OpenAIName = "openai"

// openAILimits are the options an OpenAI step takes.
var openAILimits = chatLimits{
	provider:       OpenAIName,
	maxTokens:      128000,
	maxTemperature: 2,
}

// maxErrorBody bounds how much of an error response is read for its message.
const maxErrorBody = 64 << 10

// OpenAIConfig configures the OpenAI provider.
type OpenAIConfig struct {
	APIKey     string       // the API key; an empty key makes every call fail with ErrNoAPIKey
	BaseURL    string       // NOFX_OPENAI_BASE_URL, e.g. an Ollama, vLLM or gateway URL ending in /v1; empty means https://api.openai.com/v1
	HTTPClient *http.Client // nil means http.DefaultClient
	MaxTokens  int          // max_completion_tokens of a step that sets none; 0 leaves it to the server
}

// OpenAI calls models through the Chat Completions streaming API of OpenAI or
// of any compatible server with one HTTP request per call, since NOFX owns
// the retries.
type OpenAI struct {
	apiKey      string
	base        string // the API's base URL
	maxTokens   int
	completions openai.ChatCompletionService
}

// NewOpenAI returns the OpenAI provider for cfg, which is the whole of its
// configuration: it reads no environment variables.
func NewOpenAI(cfg OpenAIConfig) *OpenAI {
	// The service is built without openai.NewClient, which would also read
	// OPENAI_BASE_URL, OPENAI_ORG_ID and other OPENAI_* variables.
	opts := []option.RequestOption{
		option.WithEnvironmentProduction(),
		option.WithAPIKey(cfg.APIKey),
		option.WithMaxRetries(0),
	}
	if cfg.BaseURL != "" {
		opts = append(opts, option.WithBaseURL(cfg.BaseURL))
	}
	if cfg.HTTPClient != nil {
		opts = append(opts, option.WithHTTPClient(cfg.HTTPClient))
	}
	return &OpenAI{
		apiKey:      cfg.APIKey,
		base:        cmp.Or(cfg.BaseURL, "https://api.openai.com/v1"),
		maxTokens:   cfg.MaxTokens,
		completions: openai.NewChatCompletionService(opts...),
	}
}

// Name returns "openai".
func (o *OpenAI) Name() string { return OpenAIName }

// baseURL is the API's base URL, part of the key of its circuits.
func (o *OpenAI) baseURL() string { return o.base }

func (o *OpenAI) instanceKey() bool { return o.apiKey != "" }

// ValidateStep checks that a step names a model, any model, and that its
// options are max_tokens, temperature and system with values in range.
func (o *OpenAI) ValidateStep(model string, options map[string]any) map[string]string {
	return validateChatStep(model, options, openAILimits)
}

// Stream sends the system option and req.Prompt as chat messages and streams
// the reply, with its errors classified as callError describes.
func (o *OpenAI) Stream(ctx context.Context, req Request, onDelta func(string)) (Response, error) {
	key := cmp.Or(req.APIKey, o.apiKey)
	if key == "" {
		return Response{}, fmt.Errorf("%s: %w", OpenAIName, ErrNoAPIKey)
	}
	opts, err := checkChatRequest(req, openAILimits)
	if err != nil {
		return Response{}, err
	}
	if err := ctx.Err(); err != nil {
		return Response{}, fmt.Errorf("%s: %w", OpenAIName, err)
	}

	var messages []openai.ChatCompletionMessageParamUnion
	if opts.system != "" {
		messages = append(messages, openai.SystemMessage(opts.system))
	}
	messages = append(messages, openai.UserMessage(req.Prompt))
	params := openai.ChatCompletionNewParams{
		Model:         req.Model,
		Messages:      messages,
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	}
	// max_tokens is deprecated in the API and refused by reasoning models.
	if maxTokens := cmp.Or(opts.maxTokens, o.maxTokens); maxTokens > 0 {
		params.MaxCompletionTokens = openai.Int(int64(maxTokens))
	}
	if opts.temperature != nil {
		params.Temperature = openai.Float(*opts.temperature)
	}

	var res *http.Response
	done := false
	stream := o.completions.NewStreaming(ctx, params,
		option.WithAPIKey(key),
		option.WithResponseInto(&res),
		option.WithMiddleware(watchDone(&done)),
	)
	defer stream.Close()

	var text strings.Builder
	var usage Usage
	for stream.Next() {
		chunk := stream.Current()
		for _, choice := range chunk.Choices {
			if choice.Index != 0 || choice.Delta.Content == "" {
				continue
			}
			text.WriteString(choice.Delta.Content)
			if onDelta != nil {
				onDelta(choice.Delta.Content)
			}
		}
		if chunk.Usage.PromptTokens > 0 || chunk.Usage.CompletionTokens > 0 {
			usage = Usage{InputTokens: int(chunk.Usage.PromptTokens), OutputTokens: int(chunk.Usage.CompletionTokens)}
		}
	}
	if err := stream.Err(); err != nil {
		return Response{}, o.callError(ctx, key, res, err)
	}
	if !done {
		return Response{}, o.callError(ctx, key, res, fmt.Errorf("stream ended before [DONE]: %w", io.ErrUnexpectedEOF))
	}
	return Response{Text: text.String(), Usage: usage}, nil
}

// callError classifies an error of a call for Retryable: the context's error
// when ctx is done; a *StatusError for an error status, with the server's
// message and retry-after, or for an error in the stream (see
// openAIEventStatus); and otherwise err wrapped, so that network errors and
// the io.ErrUnexpectedEOF of a stream that ends before [DONE] stay
// recognisable. res is the HTTP response, if one arrived.
func (o *OpenAI) callError(ctx context.Context, key string, res *http.Response, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s: %w", OpenAIName, ctxErr)
	}
	if apiErr, ok := errors.AsType[*openai.Error](err); ok {
		message := apiErr.Message
		var header http.Header
		if apiErr.Response != nil {
			header = apiErr.Response.Header
			if message == "" { // not under "error": the SDK left the body to read again
				message = errorBodyMessage(apiErr.Response)
			}
		}
		return httpStatusError(OpenAIName, apiErr.StatusCode, header, redact(message, key))
	}
	if streamErr, ok := errors.AsType[*ssestream.StreamError](err); ok {
		body, _ := parseOpenAIError(streamErr.Event.Data)
		status := openAIEventStatus(body)
		return &StatusError{Provider: OpenAIName, Status: status, Message: cmp.Or(redact(body.Message, key), http.StatusText(status))}
	}
	if res != nil && res.StatusCode >= 400 {
		// The SDK failed to decode the error body into its error type.
		return httpStatusError(OpenAIName, res.StatusCode, res.Header, redact(errorBodyMessage(res), key))
	}
	return fmt.Errorf("%s: %w", OpenAIName, err)
}

// errorBodyMessage reads the message of an error response whose body the SDK
// has buffered, or returns "" when it has none.
func errorBodyMessage(res *http.Response) string {
	if res.Body == nil {
		return ""
	}
	data, err := io.ReadAll(io.LimitReader(res.Body, maxErrorBody))
	if err != nil {
		return ""
	}
	body, _ := parseOpenAIError(data)
	return body.Message
}

// openAIError is the error object of an OpenAI-compatible server. OpenAI
// wraps it as {"error":{...}} and its code is a string such as
// "rate_limit_exceeded"; some servers send the bare object, a plain string
// as the error, or the HTTP status as the code.
type openAIError struct {
	Message string `json:"message"`
	Type    string `json:"type"`
	Code    any    `json:"code"`
}

// parseOpenAIError decodes the error object of an error body or an error
// event in a stream, reporting whether it found one.
func parseOpenAIError(data []byte) (openAIError, bool) {
	var wrapper struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(data, &wrapper) != nil {
		return openAIError{}, false
	}
	var e openAIError
	if len(wrapper.Error) == 0 || bytes.Equal(wrapper.Error, []byte("null")) {
		err := json.Unmarshal(data, &e)
		return e, err == nil && e.Message != ""
	}
	if json.Unmarshal(wrapper.Error, &e) == nil {
		return e, true
	}
	var message string
	if json.Unmarshal(wrapper.Error, &message) == nil {
		return openAIError{Message: message}, true
	}
	return openAIError{}, false
}

// openAIEventStatus maps an error in a stream that began with 200 OK to an
// HTTP status, so that Retryable treats it like the same error sent as a
// response: a numeric code that is an error status is used as it is, then
// the code or type names it (rate limits 429, invalid requests 400,
// authentication 401, permissions 403, unknown models 404, overload 503), and
// anything else is 500, because a stream that breaks off with an error the
// client did not cause is a server failure.
func openAIEventStatus(e openAIError) int {
	if code, ok := e.Code.(float64); ok && code >= 400 && code <= 599 && code == math.Trunc(code) {
		return int(code)
	}
	code, _ := e.Code.(string)
	for _, name := range []string{code, e.Type} {
		switch strings.ToLower(name) {
		case "rate_limit_exceeded", "rate_limit_error":
			return http.StatusTooManyRequests
		case "invalid_request_error", "context_length_exceeded":
			return http.StatusBadRequest
		case "invalid_api_key", "authentication_error":
			return http.StatusUnauthorized
		case "permission_error":
			return http.StatusForbidden
		case "model_not_found", "not_found_error":
			return http.StatusNotFound
		case "overloaded", "overloaded_error", "service_unavailable":
			return http.StatusServiceUnavailable
		}
	}
	return http.StatusInternalServerError
}

// watchDone returns a middleware that sets *done once the response body has
// carried the "data: [DONE]" line that ends a chat completion stream; the
// SDK ends its stream alike at [DONE] and at the end of the body, so this is
// how a stream cut short is told from a finished one.
func watchDone(done *bool) option.Middleware {
	return func(req *http.Request, next option.MiddlewareNext) (*http.Response, error) {
		res, err := next(req)
		if err == nil && res != nil && res.Body != nil {
			res.Body = &doneWatcher{ReadCloser: res.Body, done: done}
		}
		return res, err
	}
}

// doneWatcher is a response body that looks at the start of each line read
// through it for "data: [DONE]".
type doneWatcher struct {
	io.ReadCloser
	line []byte // the first bytes of the current line
	done *bool
}

// doneLineLen is how much of a line doneWatcher keeps: enough for "data: [DONE]".
const doneLineLen = 16

// Read reads from the body and notes a [DONE] line among the bytes read.
func (w *doneWatcher) Read(p []byte) (int, error) {
	n, err := w.ReadCloser.Read(p)
	for _, b := range p[:n] {
		if b != '\n' && b != '\r' {
			if len(w.line) < doneLineLen {
				w.line = append(w.line, b)
			}
			continue
		}
		if value, ok := bytes.CutPrefix(w.line, []byte("data:")); ok &&
			bytes.HasPrefix(bytes.TrimPrefix(value, []byte(" ")), []byte("[DONE]")) {
			*w.done = true
		}
		w.line = w.line[:0]
	}
	return n, err
}
