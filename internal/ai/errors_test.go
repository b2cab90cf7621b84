package ai_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/ai"
)

// timeoutError is a net.Error that may or may not be a timeout.
type timeoutError struct{ timeout bool }

func (e timeoutError) Error() string   { return "net error" }
func (e timeoutError) Timeout() bool   { return e.timeout }
func (e timeoutError) Temporary() bool { return false }

func status(code int) error {
	return &ai.StatusError{Provider: "test", Status: code, Message: "boom"}
}

func TestRetryable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"408 request timeout", status(408), true},
		{"409 conflict", status(409), true},
		{"429 rate limited", status(429), true},
		{"500 internal error", status(500), true},
		{"502 bad gateway", status(502), true},
		{"503 unavailable", status(503), true},
		{"504 gateway timeout", status(504), true},
		{"529 overloaded", status(529), true},
		{"other 5xx", status(599), true},
		{"400 bad request", status(400), false},
		{"401 unauthorized", status(401), false},
		{"403 forbidden", status(403), false},
		{"404 not found", status(404), false},
		{"413 too large", status(413), false},
		{"422 unprocessable", status(422), false},
		{"other 4xx", status(418), false},
		{"not an error status", status(200), false},
		{"wrapped 503", fmt.Errorf("call: %w", status(503)), true},
		{"wrapped 401", fmt.Errorf("call: %w", status(401)), false},
		{"context canceled", context.Canceled, false},
		{"wrapped context canceled", fmt.Errorf("stream: %w", context.Canceled), false},
		{"context deadline exceeded", context.DeadlineExceeded, true},
		{"wrapped deadline exceeded", fmt.Errorf("stream: %w", context.DeadlineExceeded), true},
		{"net timeout", timeoutError{timeout: true}, true},
		{"net error, not a timeout", timeoutError{timeout: false}, false},
		{"url error with timeout", &url.Error{Op: "Post", URL: "https://api.example", Err: timeoutError{timeout: true}}, true},
		{"os deadline exceeded", os.ErrDeadlineExceeded, true},
		{"dns timeout", &net.DNSError{Err: "timeout", Name: "api.example", IsTimeout: true}, true},
		{"dns not found", &net.DNSError{Err: "no such host", Name: "api.example", IsNotFound: true}, false},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, true},
		{"connection reset", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, true},
		{"bare ECONNRESET", syscall.ECONNRESET, true},
		{"unexpected EOF", io.ErrUnexpectedEOF, true},
		{"wrapped unexpected EOF", fmt.Errorf("read stream: %w", io.ErrUnexpectedEOF), true},
		{"plain EOF", io.EOF, false},
		{"no API key", ai.ErrNoAPIKey, false},
		{"wrapped no API key", fmt.Errorf("anthropic: %w", ai.ErrNoAPIKey), false},
		{"anything else", errors.New("something odd"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, ai.Retryable(tt.err))
		})
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want time.Duration
	}{
		{"nil", nil, 0},
		{"status without delay", status(503), 0},
		{"status with delay", &ai.StatusError{Provider: "test", Status: 429, RetryAfter: 3 * time.Second}, 3 * time.Second},
		{"wrapped status with delay", fmt.Errorf("call: %w", &ai.StatusError{Status: 529, RetryAfter: time.Second}), time.Second},
		{"negative delay", &ai.StatusError{Status: 429, RetryAfter: -time.Second}, 0},
		{"other error", io.ErrUnexpectedEOF, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, ai.RetryAfter(tt.err))
		})
	}
}

func TestStatusErrorMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  *ai.StatusError
		want string
	}{
		{"with message", &ai.StatusError{Provider: "anthropic", Status: 529, Message: "overloaded"}, "anthropic: status 529: overloaded"},
		{"without message", &ai.StatusError{Provider: "openai", Status: 502}, "openai: status 502"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.EqualError(t, tt.err, tt.want)
		})
	}
}
