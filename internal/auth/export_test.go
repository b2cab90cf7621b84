package auth

import "context"

// Do runs fn in one of h's slots, as Hash and Check run theirs.
func (h *Hasher) Do(ctx context.Context, fn func()) error { return h.do(ctx, fn) }

// Waiting returns how many calls are waiting for one of h's slots.
func (h *Hasher) Waiting() int { return int(h.ready().waiting.Load()) }
