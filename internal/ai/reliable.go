package ai

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/avast/retry-go/v4"
)

// Outcomes of a provider call as Observer.OnCall reports them.
const (
	OutcomeSuccess        = "success"
	OutcomeError          = "error"           // failed, and trying again would not help
	OutcomeRetryableError = "retryable_error" // failed, and may succeed if tried again
	OutcomeCircuitOpen    = "circuit_open"    // refused by the provider's open circuit
	OutcomeCanceled       = "canceled"        // the caller cancelled or its deadline passed
)

// Observer receives the figures of provider calls made through Reliable, for
// metrics; either func may be nil.
type Observer struct {
	// OnCall is called after every attempt with its outcome (one of the
	// Outcome constants) and how long it took.
	OnCall func(provider, outcome string, duration time.Duration)
	// OnTokens is called after every successful attempt with its token usage.
	OnTokens func(provider string, in, out int)
	// OnError is called after every failed attempt (not cancelled by the
	// caller) with its class (one of the Class constants).
	OnError func(provider, class string)
}

// RetryPolicy says how often and how patiently Reliable retries a call; zero
// fields take the defaults of DefaultRetryPolicy.
type RetryPolicy struct {
	Attempts      uint          // attempts in all, the first included
	Base          time.Duration // the backoff ceiling before the first retry; it doubles with each retry
	Max           time.Duration // the highest backoff ceiling
	MaxRetryAfter time.Duration // the longest retry-after a provider is obeyed for
}

// DefaultRetryPolicy returns the default policy: 3 attempts, backoff from
// 500ms doubling up to 20s, and retry-after obeyed up to 60s.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{
		Attempts:      3,
		Base:          500 * time.Millisecond,
		Max:           20 * time.Second,
		MaxRetryAfter: 60 * time.Second,
	}
}

// withDefaults returns p with its zero fields set to the defaults.
func (p RetryPolicy) withDefaults() RetryPolicy {
	def := DefaultRetryPolicy()
	if p.Attempts == 0 {
		p.Attempts = def.Attempts
	}
	if p.Base <= 0 {
		p.Base = def.Base
	}
	if p.Max <= 0 {
		p.Max = def.Max
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = def.MaxRetryAfter
	}
	return p
}

// Delay returns how long to wait before retry n (from 1) after err: the
// provider's retry-after when it sent one, capped at MaxRetryAfter, and
// otherwise a random duration up to Base·2ⁿ⁻¹, capped at Max (full jitter).
func (p RetryPolicy) Delay(n uint, err error) time.Duration {
	p = p.withDefaults()
	if after := RetryAfter(err); after > 0 {
		return min(after, p.MaxRetryAfter)
	}
	ceiling := p.Base
	for i := uint(1); i < n && ceiling < p.Max; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, p.Max)
	return rand.N(ceiling + 1)
}

// Reliable is a provider that calls another through its circuit, with a
// timeout per call and retries on retryable errors.
//
// A call that has already streamed text to onDelta is never retried: a
// retry would stream the text again, so its error is returned as it is and
// the caller decides (the engine fails or retries the whole step).
type Reliable struct {
	inner    Provider
	circuits *Circuits
	policy   RetryPolicy
}

// NewReliable returns p made reliable by its circuits in circuits and by
// policy, whose zero fields take the defaults; it creates p's circuit for the
// instance's key so that it is listed from the start (except for providers
// circuited per team), and panics on a nil p or circuits.
func NewReliable(p Provider, circuits *Circuits, policy RetryPolicy) Provider {
	if p == nil || circuits == nil {
		panic("ai: NewReliable needs a provider and circuits")
	}
	r := &Reliable{inner: p, circuits: circuits, policy: policy.withDefaults()}
	if _, perTeam := p.(teamCircuited); !perTeam {
		circuits.circuit(r.CircuitKey(Request{}))
	}
	return r
}

// teamCircuited is a provider whose circuit is per team whatever key it is
// called with: the simulated one, whose failures come from a team's own step
// options.
type teamCircuited interface{ circuitPerTeam() }

// baseURLed is a provider that calls an API at a base URL.
type baseURLed interface{ baseURL() string }

// keyed is a provider that calls with an API key: the instance's, when it
// has one, unless the request brings a team's.
type keyed interface{ instanceKey() bool }

// NeedsKey reports whether p, itself or wrapped in a Reliable, can be
// called only with a team's key: it needs a key and the instance has none.
func NeedsKey(p Provider) bool {
	if r, ok := p.(*Reliable); ok {
		p = r.Unwrap()
	}
	k, ok := p.(keyed)
	return ok && !k.instanceKey()
}

// CircuitKey returns the circuit a request goes through: the provider, the
// credential (the team's own key, a simulated call's team, or the
// instance's key) and the provider's base URL.
func (r *Reliable) CircuitKey(req Request) CircuitKey {
	key := CircuitKey{Provider: r.inner.Name(), Scope: ScopeInstance}
	if b, ok := r.inner.(baseURLed); ok {
		key.BaseURL = b.baseURL()
	}
	_, perTeam := r.inner.(teamCircuited)
	switch {
	case (perTeam || req.APIKey != "") && req.TeamID != 0:
		key.Scope = TeamScope(req.TeamID)
	case req.APIKey != "":
		key.Scope = keyScope(req.APIKey)
	}
	return key
}

// Name returns the wrapped provider's name.
func (r *Reliable) Name() string { return r.inner.Name() }

// ValidateStep returns the wrapped provider's verdict on a step.
func (r *Reliable) ValidateStep(model string, options map[string]any) map[string]string {
	return r.inner.ValidateStep(model, options)
}

// Unwrap returns the wrapped provider, for callers that need more than the
// Provider interface.
func (r *Reliable) Unwrap() Provider { return r.inner }

// Stream calls the wrapped provider until it succeeds, fails with an error
// that is not worth retrying, has streamed text, or has used all its
// attempts, and returns the last error. A call refused by the open circuit
// fails at once with a *CircuitOpenError, and a cancelled ctx stops the
// retries at once: once ctx is done, the error always matches ctx.Err()
// with errors.Is, and still wraps the provider's last error if there was one.
func (r *Reliable) Stream(ctx context.Context, req Request, onDelta func(string)) (Response, error) {
	streamed := false
	attempt := func() (Response, error) {
		return r.attempt(ctx, req, onDelta, &streamed)
	}
	retryIf := func(err error) bool {
		return !streamed && ctx.Err() == nil &&
			!errors.Is(err, ErrCircuitOpen) && !errors.Is(err, ErrNoAPIKey) &&
			Retryable(err)
	}
	resp, err := retry.DoWithData(attempt,
		retry.Context(ctx),
		retry.Attempts(r.policy.Attempts),
		retry.DelayType(func(n uint, err error, _ *retry.Config) time.Duration { return r.policy.Delay(n, err) }),
		retry.RetryIf(retryIf),
		retry.LastErrorOnly(true),
	)
	if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		err = fmt.Errorf("%w: %w", ctx.Err(), err) // the caller gave up, whatever the provider said last
	}
	return resp, err
}

// attempt makes one call, once a slot of its credential is free, through
// the circuit with the per-call timeout, and
// sets *streamed when it passes text to onDelta.
func (r *Reliable) attempt(ctx context.Context, req Request, onDelta func(string), streamed *bool) (resp Response, err error) {
	name := r.inner.Name()
	key := r.CircuitKey(req)
	release, err := r.circuits.inFlight.acquire(ctx, key)
	if err != nil {
		return Response{}, err
	}
	defer release()
	start := time.Now()
	done, err := r.circuits.allow(key)
	if err != nil {
		r.observe(name, OutcomeCircuitOpen, time.Since(start))
		return Response{}, err
	}
	defer func() {
		if v := recover(); v != nil {
			done(fmt.Errorf("%s: %w: %v", name, errPanicked, v)) // frees a half-open probe
			panic(v)
		}
	}()

	timeout := r.circuits.cfg.CallTimeout
	callCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var deltas func(string)
	if onDelta != nil {
		deltas = func(text string) {
			if text != "" {
				*streamed = true
			}
			onDelta(text)
		}
	}
	resp, err = r.inner.Stream(callCtx, req, deltas)

	callerGone := err != nil && ctx.Err() != nil &&
		(errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
	if err != nil && !callerGone && errors.Is(callCtx.Err(), context.DeadlineExceeded) && !errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%w (after the %s call timeout: %w)", err, timeout, context.DeadlineExceeded)
	}

	switch {
	case err == nil:
		done(nil)
		r.observe(name, OutcomeSuccess, time.Since(start))
		if f := r.circuits.Observer.OnTokens; f != nil {
			f(name, resp.Usage.InputTokens, resp.Usage.OutputTokens)
		}
		return resp, nil
	case callerGone || errors.Is(err, context.Canceled):
		done(context.Canceled) // the caller's choice says nothing about the provider
		r.observe(name, OutcomeCanceled, time.Since(start))
	case Retryable(err):
		done(err)
		r.observe(name, OutcomeRetryableError, time.Since(start))
		r.observeError(name, err)
	default:
		done(err)
		r.observe(name, OutcomeError, time.Since(start))
		r.observeError(name, err)
	}
	return Response{}, err
}

// observeError reports a failed attempt's class to the observer.
func (r *Reliable) observeError(provider string, err error) {
	if f := r.circuits.Observer.OnError; f != nil {
		f(provider, ErrorClass(err))
	}
}

// observe reports an attempt to the observer, if there is one.
func (r *Reliable) observe(provider, outcome string, d time.Duration) {
	if f := r.circuits.Observer.OnCall; f != nil {
		f(provider, outcome, d)
	}
}
