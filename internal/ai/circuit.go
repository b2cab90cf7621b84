package ai

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"
)

// Circuit states as CircuitState.State and OnChange report them.
const (
	CircuitClosed   = "closed"
	CircuitOpen     = "open"
	CircuitHalfOpen = "half-open"
)

// ErrCircuitOpen means a call was refused because its provider's circuit is open.
var ErrCircuitOpen = errors.New("ai: circuit open")

// ErrNoCircuit means a circuit was asked for by a provider name that has none.
var ErrNoCircuit = errors.New("ai: no circuit for that provider")

// CircuitConfig holds the thresholds of every provider's circuit; zero fields
// take the defaults of DefaultCircuitConfig.
type CircuitConfig struct {
	FailuresToOpen uint32        // consecutive failures that open a circuit
	OpenFor        time.Duration // how long a circuit stays open before it half-opens
	HalfOpenProbes uint32        // successes that close a half-open circuit, and the calls it lets through at once
	CallTimeout    time.Duration // the longest one provider call may take
}

// DefaultCircuitConfig returns the default thresholds: open after 5
// consecutive failures, half-open after 60s, close after 2 successful probes,
// and give each call 120s.
func DefaultCircuitConfig() CircuitConfig {
	return CircuitConfig{
		FailuresToOpen: 5,
		OpenFor:        60 * time.Second,
		HalfOpenProbes: 2,
		CallTimeout:    120 * time.Second,
	}
}

// withDefaults returns cfg with its zero fields set to the defaults.
func (cfg CircuitConfig) withDefaults() CircuitConfig {
	def := DefaultCircuitConfig()
	if cfg.FailuresToOpen == 0 {
		cfg.FailuresToOpen = def.FailuresToOpen
	}
	if cfg.OpenFor <= 0 {
		cfg.OpenFor = def.OpenFor
	}
	if cfg.HalfOpenProbes == 0 {
		cfg.HalfOpenProbes = def.HalfOpenProbes
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = def.CallTimeout
	}
	return cfg
}

// CircuitOpenError is the error of a call refused by an open circuit; it
// matches ErrCircuitOpen with errors.Is.
type CircuitOpenError struct {
	Provider string
	Until    time.Time // when a call is worth trying again
}

// Error says which circuit refused the call and until when.
func (e *CircuitOpenError) Error() string {
	return fmt.Sprintf("%s: circuit open until %s", e.Provider, e.Until.Format(time.RFC3339))
}

// Unwrap returns ErrCircuitOpen.
func (e *CircuitOpenError) Unwrap() error { return ErrCircuitOpen }

// IsCircuitOpen reports whether err is a call refused by an open circuit, and
// until when the caller should wait before trying again.
func IsCircuitOpen(err error) (until time.Time, ok bool) {
	if e, ok := errors.AsType[*CircuitOpenError](err); ok {
		return e.Until, true
	}
	return time.Time{}, false
}

// CircuitState is a snapshot of one provider's circuit for the admin page.
type CircuitState struct {
	Provider            string
	State               string // CircuitClosed, CircuitOpen or CircuitHalfOpen
	ConsecutiveFailures uint64 // failures since the last success
	TotalFailures       uint64 // since the circuit was created or reset
	TotalSuccesses      uint64 // since the circuit was created or reset
	LastError           string // the last failure that counted against the circuit
	LastErrorAt         time.Time
	LastChange          time.Time // when the state last changed, or the circuit was created or reset
	OpensUntil          time.Time // when open: when it half-opens; zero otherwise
}

// Circuits holds one circuit breaker per provider, created on first use; it
// is safe for concurrent use, and its hook fields must be set before it is.
type Circuits struct {
	// OnChange, when not nil, is called on every change of a circuit's
	// state, including a Reset, for metrics and logs; it runs while the
	// circuit is locked, so it must be quick and must not call Circuits or
	// a Reliable provider.
	OnChange func(provider string, from, to string)
	// Observer receives the outcome of every provider call made through Reliable.
	Observer Observer

	cfg CircuitConfig

	mu       sync.Mutex
	circuits map[string]*circuit // by provider name; guarded by mu
}

// circuit is one provider's breaker and the figures the admin page shows.
// Lock order: the breaker's own lock, then mu; never call the breaker while
// holding mu.
type circuit struct {
	mu                  sync.Mutex
	breaker             *gobreaker.TwoStepCircuitBreaker[Response]
	generation          uint64 // counts Resets; a replaced breaker's state changes are ignored
	state               gobreaker.State
	consecutiveFailures uint64
	totalFailures       uint64
	totalSuccesses      uint64
	lastError           string
	lastErrorAt         time.Time
	lastChange          time.Time
	opensUntil          time.Time
}

// errPanicked marks a call whose provider panicked; it does not count for or
// against the circuit.
var errPanicked = errors.New("provider panicked")

// verdict is what a call's result means for its provider's health.
type verdict int

const (
	verdictSuccess  verdict = iota // the provider answered, even if with a client error
	verdictFailure                 // the provider looks unhealthy
	verdictExcluded                // says nothing about the provider
)

// judge classifies a call's error for the circuit: retryable errors (5xx,
// 429, 408, timeouts, connection errors) are failures; cancelled calls,
// calls without an API key and panics say nothing about the provider and do
// not count; any other error, a 4xx client error for instance, shows the
// provider answering.
func judge(err error) verdict {
	switch {
	case err == nil:
		return verdictSuccess
	case errors.Is(err, context.Canceled), errors.Is(err, ErrNoAPIKey),
		errors.Is(err, ErrCircuitOpen), errors.Is(err, errPanicked):
		return verdictExcluded
	case Retryable(err):
		return verdictFailure
	}
	return verdictSuccess
}

// NewCircuits returns an empty set of circuits with the thresholds of cfg,
// whose zero fields take the defaults.
func NewCircuits(cfg CircuitConfig) *Circuits {
	return &Circuits{cfg: cfg.withDefaults(), circuits: map[string]*circuit{}}
}

// Config returns the thresholds of the circuits, defaults filled in.
func (c *Circuits) Config() CircuitConfig { return c.cfg }

// States returns a snapshot of every circuit, sorted by provider.
func (c *Circuits) States() []CircuitState {
	c.mu.Lock()
	names := make([]string, 0, len(c.circuits))
	for name := range c.circuits {
		names = append(names, name)
	}
	c.mu.Unlock()
	sort.Strings(names)

	states := make([]CircuitState, 0, len(names))
	for _, name := range names {
		states = append(states, c.State(name))
	}
	return states
}

// State returns a snapshot of provider's circuit; a provider without one yet
// is reported closed with no calls.
func (c *Circuits) State(provider string) CircuitState {
	cc, ok := c.lookup(provider)
	if !ok {
		return CircuitState{Provider: provider, State: CircuitClosed}
	}
	cc.sync()

	cc.mu.Lock()
	defer cc.mu.Unlock()
	return CircuitState{
		Provider:            provider,
		State:               cc.state.String(),
		ConsecutiveFailures: cc.consecutiveFailures,
		TotalFailures:       cc.totalFailures,
		TotalSuccesses:      cc.totalSuccesses,
		LastError:           cc.lastError,
		LastErrorAt:         cc.lastErrorAt,
		LastChange:          cc.lastChange,
		OpensUntil:          cc.opensUntil,
	}
}

// Reset closes provider's circuit now and clears its counts, keeping its last
// error for the record; it returns ErrNoCircuit for a provider without one.
func (c *Circuits) Reset(provider string) error {
	cc, ok := c.lookup(provider)
	if !ok {
		return fmt.Errorf("%w: %q", ErrNoCircuit, provider)
	}
	cc.sync()

	cc.mu.Lock()
	from := cc.state
	cc.generation++
	cc.breaker = c.newBreaker(provider, cc, cc.generation)
	cc.state = gobreaker.StateClosed
	cc.consecutiveFailures, cc.totalFailures, cc.totalSuccesses = 0, 0, 0
	cc.lastChange = time.Now()
	cc.opensUntil = time.Time{}
	cc.mu.Unlock()

	if from != gobreaker.StateClosed && c.OnChange != nil {
		c.OnChange(provider, from.String(), CircuitClosed)
	}
	return nil
}

// allow asks provider's circuit to let a call through; it returns a
// *CircuitOpenError when the circuit refuses, and otherwise a function that
// must be called once with the call's error (nil on success).
func (c *Circuits) allow(provider string) (done func(error), err error) {
	cc := c.circuit(provider)
	cc.mu.Lock()
	breaker := cc.breaker
	cc.mu.Unlock()

	finish, err := breaker.Allow()
	if err != nil {
		return nil, &CircuitOpenError{Provider: provider, Until: c.refusedUntil(cc, err)}
	}
	return func(err error) {
		finish(err)
		cc.record(err)
	}, nil
}

// refusedUntil is when a call refused with err is worth trying again: when
// the circuit half-opens, or while its probes are in flight a tenth of
// OpenFor from now, by when they have usually settled.
func (c *Circuits) refusedUntil(cc *circuit, err error) time.Time {
	cc.mu.Lock()
	until := cc.opensUntil
	cc.mu.Unlock()
	if errors.Is(err, gobreaker.ErrOpenState) && !until.IsZero() {
		return until
	}
	return time.Now().Add(c.cfg.OpenFor / 10)
}

// lookup returns provider's circuit if it has one.
func (c *Circuits) lookup(provider string) (*circuit, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cc, ok := c.circuits[provider]
	return cc, ok
}

// circuit returns provider's circuit, creating it closed if it has none.
func (c *Circuits) circuit(provider string) *circuit {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc, ok := c.circuits[provider]; ok {
		return cc
	}
	cc := &circuit{state: gobreaker.StateClosed, lastChange: time.Now()}
	cc.breaker = c.newBreaker(provider, cc, cc.generation)
	c.circuits[provider] = cc
	return cc
}

// newBreaker returns a closed breaker for provider that reports its state
// changes to cc for as long as cc's generation is generation.
func (c *Circuits) newBreaker(provider string, cc *circuit, generation uint64) *gobreaker.TwoStepCircuitBreaker[Response] {
	return gobreaker.NewTwoStepCircuitBreaker[Response](gobreaker.Settings{
		Name:        provider,
		MaxRequests: c.cfg.HalfOpenProbes,
		Timeout:     c.cfg.OpenFor,
		ReadyToTrip: func(counts gobreaker.Counts) bool {
			return counts.ConsecutiveFailures >= c.cfg.FailuresToOpen
		},
		IsSuccessful: func(err error) bool { return judge(err) != verdictFailure },
		IsExcluded:   func(err error) bool { return judge(err) == verdictExcluded },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			now := time.Now()
			cc.mu.Lock()
			if cc.generation != generation {
				cc.mu.Unlock()
				return
			}
			cc.state = to
			cc.lastChange = now
			cc.opensUntil = time.Time{}
			if to == gobreaker.StateOpen {
				cc.opensUntil = now.Add(c.cfg.OpenFor)
			}
			cc.mu.Unlock()
			if c.OnChange != nil {
				c.OnChange(provider, from.String(), to.String())
			}
		},
	})
}

// sync lets the breaker notice that its open interval is over, so that a
// snapshot shows it half-open.
func (cc *circuit) sync() {
	cc.mu.Lock()
	breaker := cc.breaker
	cc.mu.Unlock()
	breaker.State()
}

// record counts a finished call's result in the admin figures.
func (cc *circuit) record(err error) {
	v := judge(err)
	if v == verdictExcluded {
		return
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if v == verdictSuccess {
		cc.totalSuccesses++
		cc.consecutiveFailures = 0
		return
	}
	cc.totalFailures++
	cc.consecutiveFailures++
	cc.lastError = err.Error()
	cc.lastErrorAt = time.Now()
}
