package ai

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
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

// ErrNoCircuit means a circuit was asked for by a key that has none.
var ErrNoCircuit = errors.New("ai: no such circuit")

// ScopeInstance is the credential scope of calls made with the instance's
// own key.
const ScopeInstance = "instance"

// TeamScope is the credential scope of calls made with team teamID's own
// key (and of every simulated call of that team).
func TeamScope(teamID int64) string { return "team:" + strconv.FormatInt(teamID, 10) }

// CircuitKey names one circuit by what actually fails: a provider, the
// credential it is called with (never the secret itself) and its base URL.
type CircuitKey struct {
	Provider string `json:"provider"`
	Scope    string `json:"scope"`              // ScopeInstance, TeamScope(id), or "key:<hash>" for a key of no team
	BaseURL  string `json:"base_url,omitempty"` // empty for providers without one
}

// InstanceCircuit is the key of provider's circuit for the instance's own key.
func InstanceCircuit(provider, baseURL string) CircuitKey {
	return CircuitKey{Provider: provider, Scope: ScopeInstance, BaseURL: baseURL}
}

// TeamCircuit is the key of provider's circuit for team teamID's own key.
func TeamCircuit(provider string, teamID int64, baseURL string) CircuitKey {
	return CircuitKey{Provider: provider, Scope: TeamScope(teamID), BaseURL: baseURL}
}

// TeamID returns the team of a team-scoped key.
func (k CircuitKey) TeamID() (int64, bool) {
	rest, ok := strings.CutPrefix(k.Scope, "team:")
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	return id, err == nil
}

// String describes the circuit for logs and pages, such as
// "anthropic (team:3, https://api.anthropic.com)".
func (k CircuitKey) String() string {
	if k.BaseURL == "" {
		return k.Provider + " (" + k.Scope + ")"
	}
	return k.Provider + " (" + k.Scope + ", " + k.BaseURL + ")"
}

// Encode returns the key as text that ParseCircuitKey reads back, to send
// it to other processes.
func (k CircuitKey) Encode() string {
	b, _ := json.Marshal(k) // three strings cannot fail
	return string(b)
}

// ParseCircuitKey reads a key written by Encode; for plain text, a provider
// name alone (as older processes send), it returns the key with only its
// Provider set and ok false, meaning every circuit of that provider.
func ParseCircuitKey(text string) (key CircuitKey, ok bool) {
	if err := json.Unmarshal([]byte(text), &key); err == nil && key.Provider != "" {
		return key, true
	}
	return CircuitKey{Provider: strings.TrimSpace(text)}, false
}

// compare orders keys by provider, then scope (instance first), then base URL.
func (k CircuitKey) compare(o CircuitKey) int {
	if c := strings.Compare(k.Provider, o.Provider); c != 0 {
		return c
	}
	if (k.Scope == ScopeInstance) != (o.Scope == ScopeInstance) {
		if k.Scope == ScopeInstance {
			return -1
		}
		return 1
	}
	ki, kok := k.TeamID()
	oi, ook := o.TeamID()
	if kok && ook && ki != oi {
		return cmp.Compare(ki, oi)
	}
	return cmp.Or(strings.Compare(k.Scope, o.Scope), strings.Compare(k.BaseURL, o.BaseURL))
}

// keyScope is the credential scope of a call with an explicit key and no
// team: a short hash of the key, which does not reveal it.
func keyScope(apiKey string) string {
	sum := sha256.Sum256([]byte(apiKey))
	return "key:" + hex.EncodeToString(sum[:6])
}

// CircuitConfig holds the thresholds of every provider's circuit; zero fields
// take the defaults of DefaultCircuitConfig.
type CircuitConfig struct {
	FailuresToOpen uint32        // consecutive failures that open a circuit
	OpenFor        time.Duration // how long a circuit stays open before it half-opens
	HalfOpenProbes uint32        // successes that close a half-open circuit, and the calls it lets through at once
	CallTimeout    time.Duration // the longest one provider call may take
	MaxInFlight    int           // calls in flight per credential (CircuitKey) at once; 0 is no limit
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
	Provider  string
	Key       CircuitKey // the circuit that refused
	Until     time.Time  // when a call is worth trying again
	LastError string     // the last failure that counted against the circuit
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

// CircuitState is a snapshot of one circuit for the admin page.
type CircuitState struct {
	Key                 CircuitKey
	Provider            string // Key.Provider
	State               string // CircuitClosed, CircuitOpen or CircuitHalfOpen
	ConsecutiveFailures uint64 // failures since the last success
	TotalFailures       uint64 // since the circuit was created or reset
	TotalSuccesses      uint64 // since the circuit was created or reset
	LastError           string // the last failure that counted against the circuit
	LastErrorAt         time.Time
	LastChange          time.Time // when the state last changed, or the circuit was created or reset
	OpensUntil          time.Time // when open: when it half-opens; zero otherwise
}

// Circuits holds one circuit breaker per CircuitKey (provider, credential
// and base URL), created on first use; it is safe for concurrent use, and
// its hook fields must be set before it is.
type Circuits struct {
	// OnChange, when not nil, is called on every change of a circuit's
	// state, including a Reset, for metrics and logs; it runs while the
	// circuit is locked, so it must be quick and must not call Circuits or
	// a Reliable provider.
	OnChange func(key CircuitKey, from, to string)
	// Observer receives the outcome of every provider call made through Reliable.
	Observer Observer

	cfg CircuitConfig

	mu       sync.Mutex
	circuits map[CircuitKey]*circuit // guarded by mu

	inFlight inFlight
}

// circuit is one key's breaker and the figures the admin page shows.
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
	return &Circuits{cfg: cfg.withDefaults(), circuits: map[CircuitKey]*circuit{}, inFlight: inFlight{max: cfg.MaxInFlight}}
}

// Config returns the thresholds of the circuits, defaults filled in.
func (c *Circuits) Config() CircuitConfig { return c.cfg }

// States returns a snapshot of every circuit, sorted by provider, then
// scope (the instance's first, then teams by id), then base URL.
func (c *Circuits) States() []CircuitState {
	c.mu.Lock()
	keys := make([]CircuitKey, 0, len(c.circuits))
	for key := range c.circuits {
		keys = append(keys, key)
	}
	c.mu.Unlock()
	slices.SortFunc(keys, CircuitKey.compare)

	states := make([]CircuitState, 0, len(keys))
	for _, key := range keys {
		states = append(states, c.State(key))
	}
	return states
}

// State returns a snapshot of key's circuit; a key without one yet is
// reported closed with no calls.
func (c *Circuits) State(key CircuitKey) CircuitState {
	cc, ok := c.lookup(key)
	if !ok {
		return CircuitState{Key: key, Provider: key.Provider, State: CircuitClosed}
	}
	cc.sync()

	cc.mu.Lock()
	defer cc.mu.Unlock()
	return CircuitState{
		Key:                 key,
		Provider:            key.Provider,
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

// ProviderStates returns a snapshot of every circuit of provider, in the
// order of States.
func (c *Circuits) ProviderStates(provider string) []CircuitState {
	var out []CircuitState
	for _, st := range c.States() {
		if st.Provider == provider {
			out = append(out, st)
		}
	}
	return out
}

// Reset closes key's circuit now and clears its counts, keeping its last
// error for the record; it returns ErrNoCircuit for a key without one.
func (c *Circuits) Reset(key CircuitKey) error {
	cc, ok := c.lookup(key)
	if !ok {
		return fmt.Errorf("%w: %s", ErrNoCircuit, key)
	}
	cc.sync()

	cc.mu.Lock()
	from := cc.state
	cc.generation++
	cc.breaker = c.newBreaker(key, cc, cc.generation)
	cc.state = gobreaker.StateClosed
	cc.consecutiveFailures, cc.totalFailures, cc.totalSuccesses = 0, 0, 0
	cc.lastChange = time.Now()
	cc.opensUntil = time.Time{}
	cc.mu.Unlock()

	if from != gobreaker.StateClosed && c.OnChange != nil {
		c.OnChange(key, from.String(), CircuitClosed)
	}
	return nil
}

// ResetProvider resets every circuit of provider and returns how many there
// were.
func (c *Circuits) ResetProvider(provider string) int {
	n := 0
	for _, st := range c.ProviderStates(provider) {
		if c.Reset(st.Key) == nil {
			n++
		}
	}
	return n
}

// allow asks key's circuit to let a call through; it returns a
// *CircuitOpenError when the circuit refuses, and otherwise a function that
// must be called once with the call's error (nil on success).
func (c *Circuits) allow(key CircuitKey) (done func(error), err error) {
	cc := c.circuit(key)
	cc.mu.Lock()
	breaker := cc.breaker
	cc.mu.Unlock()

	finish, err := breaker.Allow()
	if err != nil {
		until := c.refusedUntil(cc, err)
		cc.mu.Lock()
		last := cc.lastError
		cc.mu.Unlock()
		return nil, &CircuitOpenError{Provider: key.Provider, Key: key, Until: until, LastError: last}
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

// lookup returns key's circuit if it has one.
func (c *Circuits) lookup(key CircuitKey) (*circuit, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cc, ok := c.circuits[key]
	return cc, ok
}

// circuit returns key's circuit, creating it closed if it has none.
func (c *Circuits) circuit(key CircuitKey) *circuit {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc, ok := c.circuits[key]; ok {
		return cc
	}
	cc := &circuit{state: gobreaker.StateClosed, lastChange: time.Now()}
	cc.breaker = c.newBreaker(key, cc, cc.generation)
	c.circuits[key] = cc
	return cc
}

// newBreaker returns a closed breaker for key that reports its state
// changes to cc for as long as cc's generation is generation.
func (c *Circuits) newBreaker(key CircuitKey, cc *circuit, generation uint64) *gobreaker.TwoStepCircuitBreaker[Response] {
	return gobreaker.NewTwoStepCircuitBreaker[Response](gobreaker.Settings{
		Name:        key.String(),
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
				c.OnChange(key, from.String(), to.String())
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
