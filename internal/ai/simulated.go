package ai

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
	"unicode"
)

// SimulatedName is the name of the simulated provider in steps and plans.
const SimulatedName = "simulated"

// simulatedModels are the models of the simulated provider: "echo" answers
// with the prompt itself, "lorem" with fifty pseudo-Latin words derived from
// the prompt.
var simulatedModels = []string{"echo", "lorem"}

// Simulated is a provider that needs no network, for demos, tests and
// benchmarks; its options add latency and failures so that retries and
// circuit breakers can be exercised.
type Simulated struct {
	mu  sync.Mutex
	rng *rand.Rand // decides failures; guarded by mu
}

// NewSimulated returns a simulated provider whose failures follow seed.
func NewSimulated(seed int64) *Simulated {
	return &Simulated{rng: rand.New(rand.NewPCG(uint64(seed), 0x6e6f6678))}
}

// Name returns "simulated".
func (s *Simulated) Name() string { return SimulatedName }

// circuitPerTeam makes the simulated provider's circuits per team: its
// failures are what a team's own steps ask for.
func (s *Simulated) circuitPerTeam() {}

// Models returns the names of the simulated models, "echo" and "lorem".
func (s *Simulated) Models() []string {
	return append([]string(nil), simulatedModels...)
}

// ValidateStep checks that model is a simulated model and that options are
// latency_ms, fail_rate and fail_status with values in range.
func (s *Simulated) ValidateStep(model string, options map[string]any) map[string]string {
	var problems map[string]string
	if !isSimulatedModel(model) {
		problems = map[string]string{"model": modelProblem(model)}
	}
	if _, msg := parseSimOptions(options); msg != "" {
		if problems == nil {
			problems = map[string]string{}
		}
		problems["options"] = msg
	}
	return problems
}

// Stream answers req after the latency its options ask for, spread evenly
// over word-sized chunks, or fails with a *StatusError as often as fail_rate says.
func (s *Simulated) Stream(ctx context.Context, req Request, onDelta func(string)) (Response, error) {
	if !isSimulatedModel(req.Model) {
		return Response{}, errors.New("simulated: " + modelProblem(req.Model))
	}
	opts, msg := parseSimOptions(req.Options)
	if msg != "" {
		return Response{}, errors.New("simulated: invalid options: " + msg)
	}
	if err := ctx.Err(); err != nil {
		return Response{}, err
	}
	p := pacer{ctx: ctx, total: opts.latency}
	if opts.latency > 0 {
		p.start = time.Now()
		defer p.stop()
	}

	if s.fails(opts.failRate) {
		if err := p.waitFraction(1, 1); err != nil {
			return Response{}, err
		}
		se := &StatusError{Provider: SimulatedName, Status: opts.failStatus, Message: "simulated failure"}
		if se.Status == 429 || se.Status == 529 {
			se.RetryAfter = time.Second
		}
		return Response{}, se
	}

	text := req.Prompt
	if req.Model == "lorem" {
		text = lorem(req.Prompt)
	}
	n := countChunks(text)
	i := 0
	for chunk := range chunks(text) {
		i++
		if err := p.waitFraction(i, n); err != nil {
			return Response{}, err
		}
		if onDelta != nil {
			onDelta(chunk)
		}
	}
	if n == 0 { // nothing to stream: the call still takes its latency
		if err := p.waitFraction(1, 1); err != nil {
			return Response{}, err
		}
	}
	return Response{
		Text:  text,
		Usage: Usage{InputTokens: countChunks(req.Prompt), OutputTokens: n},
	}, nil
}

// fails draws whether this call fails; it takes the lock only when it may.
func (s *Simulated) fails(rate float64) bool {
	if rate <= 0 {
		return false
	}
	if rate >= 1 {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rng.Float64() < rate
}

func isSimulatedModel(model string) bool {
	for _, m := range simulatedModels {
		if m == model {
			return true
		}
	}
	return false
}

func modelProblem(model string) string {
	known := strings.Join(simulatedModels, ", ")
	if model == "" {
		return "a model is required; the simulated provider has " + known
	}
	return fmt.Sprintf("unknown model %q; the simulated provider has %s", model, known)
}

// pacer spreads a call's total latency over its steps, waiting until each
// step's share of the latency has passed since start and giving up when ctx ends.
type pacer struct {
	ctx   context.Context
	start time.Time
	total time.Duration
	timer *time.Timer
}

// waitFraction waits until i/n of the total latency has passed since start;
// with no latency it only checks the context.
func (p *pacer) waitFraction(i, n int) error {
	if p.total <= 0 {
		return p.ctx.Err()
	}
	offset := time.Duration(float64(p.total) * float64(i) / float64(n))
	d := time.Until(p.start.Add(offset))
	if d <= 0 {
		return p.ctx.Err()
	}
	if p.timer == nil {
		p.timer = time.NewTimer(d)
	} else {
		p.timer.Reset(d)
	}
	select {
	case <-p.ctx.Done():
		return p.ctx.Err()
	case <-p.timer.C:
		return nil
	}
}

func (p *pacer) stop() {
	if p.timer != nil {
		p.timer.Stop()
	}
}

// chunks splits text into word-sized pieces that keep every byte: each piece
// is a word with the whitespace after it, and whitespace before the first
// word belongs to the first piece.
func chunks(text string) iter.Seq[string] {
	return func(yield func(string) bool) {
		start := 0
		word, gap := false, false // the current piece has a word; whitespace after it
		for i, r := range text {
			if unicode.IsSpace(r) {
				gap = word
				continue
			}
			if gap {
				if !yield(text[start:i]) {
					return
				}
				start, gap = i, false
			}
			word = true
		}
		if start < len(text) {
			yield(text[start:])
		}
	}
}

// countChunks returns how many pieces chunks yields for text: the number of
// words, and at least 1 when text is not empty.
func countChunks(text string) int {
	n := 0
	for range chunks(text) {
		n++
	}
	return n
}
