package ai

import (
	"fmt"
	"sort"
)

// Registry holds the providers of an instance by name; it is read-only after
// NewRegistry and safe for concurrent use.
type Registry struct {
	providers map[string]Provider
	names     []string
}

// NewRegistry returns a registry of providers; it panics on a nil provider or
// on two providers with the same name, which are wiring mistakes.
func NewRegistry(providers ...Provider) *Registry {
	r := &Registry{providers: make(map[string]Provider, len(providers))}
	for _, p := range providers {
		if p == nil {
			panic("ai: nil provider")
		}
		name := p.Name()
		if _, dup := r.providers[name]; dup {
			panic(fmt.Sprintf("ai: provider %q registered twice", name))
		}
		r.providers[name] = p
		r.names = append(r.names, name)
	}
	sort.Strings(r.names)
	return r
}

// Get returns the provider called name.
func (r *Registry) Get(name string) (Provider, bool) {
	p, ok := r.providers[name]
	return p, ok
}

// Names returns the names of the providers, sorted.
func (r *Registry) Names() []string {
	return append([]string(nil), r.names...)
}
