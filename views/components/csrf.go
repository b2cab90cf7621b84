// Package components holds the small templ pieces that pages share: form
// fields, flash messages, empty states.
package components

import "context"

type csrfKey struct{}

// WithCSRF returns a context that carries the request's CSRF token to the
// components that render forms.
func WithCSRF(ctx context.Context, token string) context.Context {
	return context.WithValue(ctx, csrfKey{}, token)
}

// CSRFToken returns the CSRF token carried by ctx.
func CSRFToken(ctx context.Context) string {
	s, _ := ctx.Value(csrfKey{}).(string)
	return s
}
