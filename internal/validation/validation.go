// Package validation carries field-by-field problems with user input from
// the services to the forms and the JSON API.
package validation

import (
	"sort"
	"strings"
)

// Errors maps a field name to a sentence that says what is wrong with it.
type Errors map[string]string

// Add records a problem with field, keeping the first one reported.
func (e Errors) Add(field, message string) {
	if _, ok := e[field]; !ok {
		e[field] = message
	}
}

// Err returns e as an error, or nil when nothing was added.
func (e Errors) Err() error {
	if len(e) == 0 {
		return nil
	}
	return e
}

// Error lists every problem, sorted by field.
func (e Errors) Error() string {
	fields := make([]string, 0, len(e))
	for f := range e {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	parts := make([]string, 0, len(e))
	for _, f := range fields {
		parts = append(parts, f+": "+e[f])
	}
	return "invalid input: " + strings.Join(parts, "; ")
}
