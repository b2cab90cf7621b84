package ai

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
)

// AnthropicName is the name of the Anthropic provider in steps and plans.
const AnthropicName = "anthropic"

// DefaultAnthropicMaxTokens is the max_tokens of a call whose step and config
// set none, since the Messages API requires one.
const DefaultAnthropicMaxTokens = 1024

// anthropicLimits are the options an Anthropic step takes. The SDK sends API
// version 2026-10-21, which rejects temperature, top_p and top_k with a 400,
// so temperature is refused before a run starts rather than on every call.
var anthropicLimits = chatLimits{
	provider:           AnthropicName,
	maxTokens:          64000,
	temperatureRefusal: "temperature is not supported: the Anthropic API version NOFX uses (2026-10-21) rejects sampling parameters",
}

// AnthropicConfig configures the Anthropic provider.
type AnthropicConfig struct {
	APIKey     string       // the API key; an empty key makes every call fail with ErrNoAPIKey
	BaseURL    string       // NOFX_ANTHROPIC_BASE_URL; empty means the SDK's default, https://api.anthropic.com
	HTTPClient *http.Client // nil means http.DefaultClient
	MaxTokens  int          // max_tokens of a step that sets none; 0 means DefaultAnthropicMaxTokens
}

// Anthropic calls Claude models through the Messages streaming API with one
// HTTP request per call, since NOFX owns the retries.
type Anthropic struct {
	apiKey    string
	base      string // the API's base URL
	maxTokens int
	messages  anthropic.MessageService
}

// NewAnthropic returns the Anthropic provider for cfg, which is the whole of
// its configuration: it reads no environment variables.
func NewAnthropic(cfg AnthropicConfig) *Anthropic {
	opts := []option.RequestOption{
		option.WithoutEnvironmentDefaults(), // no ANTHROPIC_* variables, profiles or credential files
		option.WithAPIKey(cfg.APIKey),
		option.WithMaxRetries(0),
	}
	if cfg.BaseURL != "" {
		opts = append(opts, option.WithBaseURL(cfg.BaseURL))
	}
	if cfg.HTTPClient != nil {
		opts = append(opts, option.WithHTTPClient(cfg.HTTPClient))
	}
	client := anthropic.NewClient(opts...)
	return &Anthropic{
		apiKey:    cfg.APIKey,
		base:      cmp.Or(cfg.BaseURL, "https://api.anthropic.com"),
		maxTokens: cmp.Or(cfg.MaxTokens, DefaultAnthropicMaxTokens),
		messages:  client.Messages,
	}
}

// Name returns "anthropic".
func (a *Anthropic) Name() string { return AnthropicName }

// baseURL is the API's base URL, part of the key of its circuits.
func (a *Anthropic) baseURL() string { return a.base }

func (a *Anthropic) instanceKey() bool { return a.apiKey != "" }

// ValidateStep checks that a step names a model, any model, and that its
// options are max_tokens and system with values in range.
func (a *Anthropic) ValidateStep(model string, options map[string]any) map[string]string {
	return validateChatStep(model, options, anthropicLimits)
}

// Stream sends req.Prompt as one user message and streams the reply, with
// its errors classified as callError describes.
func (a *Anthropic) Stream(ctx context.Context, req Request, onDelta func(string)) (Response, error) {
	key := cmp.Or(req.APIKey, a.apiKey)
	if key == "" {
		return Response{}, fmt.Errorf("%s: %w", AnthropicName, ErrNoAPIKey)
	}
	opts, err := checkChatRequest(req, anthropicLimits)
	if err != nil {
		return Response{}, err
	}
	if err := ctx.Err(); err != nil {
		return Response{}, fmt.Errorf("%s: %w", AnthropicName, err)
	}

	params := anthropic.MessageNewParams{
		Model:     req.Model,
		MaxTokens: int64(cmp.Or(opts.maxTokens, a.maxTokens)),
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(req.Prompt))},
	}
	if opts.system != "" {
		params.System = []anthropic.TextBlockParam{{Text: opts.system}}
	}
	stream := a.messages.NewStreaming(ctx, params, option.WithAPIKey(key))
	defer stream.Close()

	var text strings.Builder
	var usage Usage
	stopped := false
	for stream.Next() {
		event := stream.Current()
		switch event.Type {
		case "message_start":
			usage.InputTokens = int(event.Message.Usage.InputTokens)
			usage.OutputTokens = int(event.Message.Usage.OutputTokens)
		case "content_block_delta":
			if event.Delta.Type == "text_delta" && event.Delta.Text != "" {
				text.WriteString(event.Delta.Text)
				if onDelta != nil {
					onDelta(event.Delta.Text)
				}
			}
		case "message_delta": // its usage counts are cumulative
			if event.Usage.InputTokens > 0 {
				usage.InputTokens = int(event.Usage.InputTokens)
			}
			usage.OutputTokens = int(event.Usage.OutputTokens)
		case "message_stop":
			stopped = true
		}
	}
	if err := stream.Err(); err != nil {
		return Response{}, a.callError(ctx, key, err)
	}
	if !stopped {
		return Response{}, a.callError(ctx, key, fmt.Errorf("stream ended before message_stop: %w", io.ErrUnexpectedEOF))
	}
	return Response{Text: text.String(), Usage: usage}, nil
}

// callError classifies an error of a call for Retryable: the context's error
// when ctx is done; a *StatusError for an error status, with the API's
// message and retry-after, or for an error event in the stream (see
// anthropicEventStatus); and otherwise err wrapped, so that network errors
// and the io.ErrUnexpectedEOF of a stream that ends before message_stop stay
// recognisable.
func (a *Anthropic) callError(ctx context.Context, key string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s: %w", AnthropicName, ctxErr)
	}
	apiErr, ok := errors.AsType[*anthropic.Error](err)
	if !ok {
		return fmt.Errorf("%s: %w", AnthropicName, err)
	}
	message := redact(apiErr.Message, key)
	if apiErr.StatusCode >= 400 {
		var header http.Header
		if apiErr.Response != nil {
			header = apiErr.Response.Header
		}
		return httpStatusError(AnthropicName, apiErr.StatusCode, header, message)
	}
	// An error event in a stream that began with 200 OK.
	status := anthropicEventStatus(string(apiErr.Type()))
	return &StatusError{Provider: AnthropicName, Status: status, Message: cmp.Or(message, http.StatusText(status))}
}

// anthropicEventStatus maps the type of an error event in a stream to the
// HTTP status the API uses for the same error type, so that Retryable treats
// it alike: overloaded_error is 529, api_error 500, rate_limit_error 429,
// timeout_error 504, and an unknown type 500, because a stream that breaks
// off with an error the client did not cause is a server failure.
func anthropicEventStatus(errorType string) int {
	switch errorType {
	case "invalid_request_error":
		return http.StatusBadRequest
	case "authentication_error":
		return http.StatusUnauthorized
	case "billing_error":
		return http.StatusPaymentRequired
	case "permission_error":
		return http.StatusForbidden
	case "not_found_error":
		return http.StatusNotFound
	case "conflict_error":
		return http.StatusConflict
	case "request_too_large":
		return http.StatusRequestEntityTooLarge
	case "rate_limit_error":
		return http.StatusTooManyRequests
	case "timeout_error":
		return http.StatusGatewayTimeout
	case "overloaded_error":
		return 529
	}
	return http.StatusInternalServerError
}

// The rest of this file is shared with openai.go: the options of chat steps
// and the classification of HTTP errors.

// chatLimits are the options a chat provider takes and their ranges.
type chatLimits struct {
	provider           string
	maxTokens          int     // the largest max_tokens
	maxTemperature     float64 // the largest temperature
	temperatureRefusal string  // when set, temperature is refused with this message
}

// chatOptions are the decoded options of a chat call; zero values are unset.
type chatOptions struct {
	maxTokens   int
	temperature *float64
	system      string
}

// names lists the options of a provider for messages.
func (l chatLimits) names() string {
	if l.temperatureRefusal != "" {
		return "max_tokens and system"
	}
	return "max_tokens, temperature and system"
}

// validateChatStep checks a chat step's model and options for ValidateStep.
func validateChatStep(model string, options map[string]any, limits chatLimits) map[string]string {
	var problems map[string]string
	if model == "" {
		problems = map[string]string{"model": "a model is required; the " + limits.provider + " provider takes the name of any of its models"}
	}
	if _, msg := parseChatOptions(options, limits); msg != "" {
		if problems == nil {
			problems = map[string]string{}
		}
		problems["options"] = msg
	}
	return problems
}

// checkChatRequest decodes the options of req, failing without a retry when
// the request could never succeed.
func checkChatRequest(req Request, limits chatLimits) (chatOptions, error) {
	if req.Model == "" {
		return chatOptions{}, errors.New(limits.provider + ": a model is required")
	}
	opts, msg := parseChatOptions(req.Options, limits)
	if msg != "" {
		return chatOptions{}, errors.New(limits.provider + ": invalid options: " + msg)
	}
	return opts, nil
}

// parseChatOptions decodes the options of a chat step; when some are wrong it
// returns a message that names each of them.
func parseChatOptions(options map[string]any, limits chatLimits) (chatOptions, string) {
	var opts chatOptions
	names := make([]string, 0, len(options))
	for name := range options {
		names = append(names, name)
	}
	sort.Strings(names)

	var problems []string
	for _, name := range names {
		v := options[name]
		f, isNumber := number(v)
		switch {
		case name == "max_tokens":
			if !isNumber || f != math.Trunc(f) || f < 1 || f > float64(limits.maxTokens) {
				problems = append(problems, fmt.Sprintf("max_tokens must be an integer from 1 to %d, got %s", limits.maxTokens, describe(v)))
				continue
			}
			opts.maxTokens = int(f)
		case name == "temperature" && limits.temperatureRefusal != "":
			problems = append(problems, limits.temperatureRefusal)
		case name == "temperature":
			if !isNumber || f < 0 || f > limits.maxTemperature {
				problems = append(problems, fmt.Sprintf("temperature must be a number from 0 to %s, got %s", strconv.FormatFloat(limits.maxTemperature, 'f', -1, 64), describe(v)))
				continue
			}
			opts.temperature = &f
		case name == "system":
			s, ok := v.(string)
			if !ok {
				problems = append(problems, "system must be a string, got "+describe(v))
				continue
			}
			opts.system = s
		default:
			problems = append(problems, fmt.Sprintf("unknown option %q; the %s provider has %s", name, limits.provider, limits.names()))
		}
	}
	return opts, strings.Join(problems, "; ")
}

// maxRetryAfter bounds the delay a provider may ask for, so that a huge
// header value cannot overflow a time.Duration; callers cap it further.
const maxRetryAfter = 24 * time.Hour

// httpStatusError returns the *StatusError for an HTTP error response, with
// the delay its retry-after-ms or retry-after header asks for.
func httpStatusError(provider string, status int, header http.Header, message string) *StatusError {
	return &StatusError{
		Provider:   provider,
		Status:     status,
		RetryAfter: retryAfter(header, time.Now()),
		Message:    cmp.Or(message, http.StatusText(status)),
	}
}

// retryAfter reads how long a response asks callers to wait, from
// retry-after-ms (milliseconds) or else retry-after (seconds or an HTTP
// date), relative to now; it returns 0 when neither header says.
func retryAfter(header http.Header, now time.Time) time.Duration {
	if ms, err := strconv.ParseFloat(header.Get("Retry-After-Ms"), 64); err == nil && ms > 0 {
		return time.Duration(min(ms, float64(maxRetryAfter.Milliseconds())) * float64(time.Millisecond))
	}
	v := header.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if !(s > 0) { // also NaN
			return 0
		}
		return time.Duration(min(s, maxRetryAfter.Seconds()) * float64(time.Second))
	}
	if at, err := http.ParseTime(v); err == nil && at.After(now) {
		return min(at.Sub(now), maxRetryAfter)
	}
	return 0
}

// redact removes the API key from a message a provider sent back, in case
// it quotes the key it was given.
func redact(message, apiKey string) string {
	if apiKey == "" {
		return message
	}
	return strings.ReplaceAll(message, apiKey, "[redacted]")
}
