package metrics

import (
	"sort"
	"sync"
	"time"
)

// Recent keeps, in this process, the last hour of what the health page
// shows and Prometheus counters cannot answer by themselves: provider calls,
// their errors by class and their latencies, and rate-limit refusals by
// tier, in one-minute buckets.
type Recent struct {
	mu      sync.Mutex
	now     func() time.Time
	minutes [60]minute
}

// latencyBounds are the upper bounds of the latency buckets percentiles are
// read from.
var latencyBounds = []time.Duration{
	50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute,
}

type minute struct {
	at      int64 // Unix minute
	calls   map[string]int64
	errors  map[string]map[string]int64 // provider → class → count
	latency map[string][]int64          // provider → count per latency bucket (one more for over the last bound)
	refused map[string]int64            // tier → count
}

// bucket returns this minute's bucket, emptied if it held an older minute.
func (r *Recent) bucket() *minute {
	now := time.Now
	if r.now != nil {
		now = r.now
	}
	at := now().Unix() / 60
	m := &r.minutes[at%60]
	if m.at != at {
		*m = minute{at: at, calls: map[string]int64{}, errors: map[string]map[string]int64{}, latency: map[string][]int64{}, refused: map[string]int64{}}
	}
	return m
}

// Call records a provider call that took d.
func (r *Recent) Call(provider string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.bucket()
	m.calls[provider]++
	h := m.latency[provider]
	if h == nil {
		h = make([]int64, len(latencyBounds)+1)
		m.latency[provider] = h
	}
	i := sort.Search(len(latencyBounds), func(i int) bool { return d <= latencyBounds[i] })
	h[i]++
}

// Error records a failed provider call of class.
func (r *Recent) Error(provider, class string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.bucket()
	if m.errors[provider] == nil {
		m.errors[provider] = map[string]int64{}
	}
	m.errors[provider][class]++
}

// Refused records a request refused by the rate limit of tier.
func (r *Recent) Refused(tier string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bucket().refused[tier]++
}

// ProviderHour is one provider's last hour.
type ProviderHour struct {
	Provider      string
	Calls         int64
	Errors        map[string]int64 // by class
	P50, P95, P99 time.Duration    // upper bounds of the buckets they fall in; 0 without calls
}

// ErrorCount is the provider's errors of every class.
func (p ProviderHour) ErrorCount() int64 {
	var n int64
	for _, c := range p.Errors {
		n += c
	}
	return n
}

// live calls fn for each bucket of the last hour.
func (r *Recent) live(fn func(m *minute)) {
	now := time.Now
	if r.now != nil {
		now = r.now
	}
	at := now().Unix() / 60
	for i := range r.minutes {
		if m := &r.minutes[i]; m.at > at-60 && m.at <= at && m.calls != nil {
			fn(m)
		}
	}
}

// Providers returns each provider's last hour, by name.
func (r *Recent) Providers() []ProviderHour {
	r.mu.Lock()
	defer r.mu.Unlock()
	byName := map[string]*ProviderHour{}
	hist := map[string][]int64{}
	get := func(name string) *ProviderHour {
		p := byName[name]
		if p == nil {
			p = &ProviderHour{Provider: name, Errors: map[string]int64{}}
			byName[name] = p
			hist[name] = make([]int64, len(latencyBounds)+1)
		}
		return p
	}
	r.live(func(m *minute) {
		for name, n := range m.calls {
			get(name).Calls += n
		}
		for name, classes := range m.errors {
			p := get(name)
			for class, n := range classes {
				p.Errors[class] += n
			}
		}
		for name, h := range m.latency {
			get(name)
			for i, n := range h {
				hist[name][i] += n
			}
		}
	})
	out := make([]ProviderHour, 0, len(byName))
	for name, p := range byName {
		p.P50, p.P95, p.P99 = percentile(hist[name], 0.50), percentile(hist[name], 0.95), percentile(hist[name], 0.99)
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Provider < out[j].Provider })
	return out
}

// percentile reads the q-quantile of a bucketed histogram as the upper
// bound of its bucket (the last bucket counts as twice the last bound).
func percentile(h []int64, q float64) time.Duration {
	var total int64
	for _, n := range h {
		total += n
	}
	if total == 0 {
		return 0
	}
	want := int64(float64(total)*q + 0.999999)
	var seen int64
	for i, n := range h {
		seen += n
		if seen >= want {
			if i < len(latencyBounds) {
				return latencyBounds[i]
			}
			return 2 * latencyBounds[len(latencyBounds)-1]
		}
	}
	return 2 * latencyBounds[len(latencyBounds)-1]
}

// RefusedByTier returns the requests each rate-limit tier refused in the
// last hour.
func (r *Recent) RefusedByTier() map[string]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int64{}
	r.live(func(m *minute) {
		for tier, n := range m.refused {
			out[tier] += n
		}
	})
	return out
}
