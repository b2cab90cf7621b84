package ai

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"
)

// ErrNoAPIKey means a provider was called without the API key it needs.
var ErrNoAPIKey = errors.New("ai: provider API key is not set")

// StatusError is an error status from a provider's API.
type StatusError struct {
	Provider   string
	Status     int
	RetryAfter time.Duration // how long the provider asked callers to wait, or 0
	Message    string
}

// Error describes the status, for example "anthropic: status 529: overloaded".
func (e *StatusError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("%s: status %d", e.Provider, e.Status)
	}
	return fmt.Sprintf("%s: status %d: %s", e.Provider, e.Status, e.Message)
}

// Retryable reports whether a failed call may succeed if tried again.
func Retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if se, ok := errors.AsType[*StatusError](err); ok {
		return retryableStatus(se.Status)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.ErrUnexpectedEOF)
}

// retryableStatus reports whether a call that got HTTP status may succeed later:
// timeouts, conflicts, rate limits and server errors, but no other client error.
func retryableStatus(status int) bool {
	switch {
	case status == 408, status == 409, status == 429:
		return true
	case status >= 400 && status < 500:
		return false
	case status >= 500 && status < 600:
		return true
	}
	return false
}

// RetryAfter returns the delay a provider asked for (StatusError.RetryAfter), or 0.
func RetryAfter(err error) time.Duration {
	if se, ok := errors.AsType[*StatusError](err); ok && se.RetryAfter > 0 {
		return se.RetryAfter
	}
	return 0
}

// Classes of failed provider calls, as ErrorClass names them.
const (
	ClassRateLimited = "rate_limited" // 429
	ClassOverloaded  = "overloaded"   // 529, 503
	ClassServer      = "server_error" // other 5xx
	ClassTimeout     = "timeout"      // 408, a deadline, a network timeout
	ClassClient      = "client_error" // other 4xx
	ClassConnection  = "connection"   // refused, reset, cut short
	ClassOther       = "other"
)

// ErrorClass sorts a failed call's error into one of the Class constants,
// for the health page and metrics.
func ErrorClass(err error) string {
	if se, ok := errors.AsType[*StatusError](err); ok {
		switch {
		case se.Status == 429:
			return ClassRateLimited
		case se.Status == 529 || se.Status == 503:
			return ClassOverloaded
		case se.Status == 408:
			return ClassTimeout
		case se.Status >= 500:
			return ClassServer
		case se.Status >= 400:
			return ClassClient
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ClassTimeout
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return ClassTimeout
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF) {
		return ClassConnection
	}
	return ClassOther
}
