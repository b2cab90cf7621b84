// Package audit keeps the append-only record of who changed what: each
// entry is written in the same transaction as the change it describes.
package audit

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/db"
)

// Entry is one audited change.
type Entry struct {
	ID          int64     `db:"id"`
	TeamID      *int64    `db:"team_id"`
	ActorUserID *int64    `db:"actor_user_id"`
	ActorKeyID  *int64    `db:"actor_key_id"`
	Actor       string    `db:"actor"` // the actor's email or key name, kept if they are deleted
	Action      string    `db:"action"`
	Target      string    `db:"target"`
	Summary     string    `db:"summary"`
	IP          string    `db:"ip"`
	UserAgent   string    `db:"user_agent"`
	RequestID   string    `db:"request_id"`
	CreatedAt   time.Time `db:"created_at"`
}

// RequestInfo is where a change came from, carried by the request's context.
type RequestInfo struct {
	IP        string
	UserAgent string
	RequestID string
}

type requestKey struct{}

// WithRequest returns a context whose audit entries record info.
func WithRequest(ctx context.Context, info RequestInfo) context.Context {
	return context.WithValue(ctx, requestKey{}, info)
}

// For starts an entry for what actor did in its team.
func For(a access.Actor, action, target, summary string) Entry {
	e := Entry{Action: action, Target: target, Summary: summary}
	if a.TeamID != 0 {
		e.TeamID = &a.TeamID
	}
	if a.UserID != 0 {
		e.ActorUserID = &a.UserID
	}
	if a.APIKeyID != 0 {
		e.ActorKeyID = &a.APIKeyID
	}
	return e
}

// Record appends e, stamped now, using q (the change's transaction). The
// request's IP, user agent and id come from ctx, and the actor's name from
// its user or key, when e leaves them empty.
func Record(ctx context.Context, q db.Queryer, e Entry) error {
	query, args := Insert(ctx, e)
	if _, err := db.Exec(ctx, q, query, args...); err != nil {
		return fmt.Errorf("audit: record %s: %w", e.Action, err)
	}
	return nil
}

// Insert is the statement that Record runs, for a change that sends it
// with its other writes.
func Insert(ctx context.Context, e Entry) (query string, args []any) {
	if e.CreatedAt.IsZero() {
		e.CreatedAt = db.Now()
	}
	if info, ok := ctx.Value(requestKey{}).(RequestInfo); ok {
		e.IP = cmp.Or(e.IP, info.IP)
		e.UserAgent = cmp.Or(e.UserAgent, info.UserAgent)
		e.RequestID = cmp.Or(e.RequestID, info.RequestID)
	}
	if len(e.UserAgent) > 512 {
		e.UserAgent = e.UserAgent[:512]
	}
	return `INSERT INTO audit_log (team_id, actor_user_id, actor_key_id, actor, action, target, summary,
		ip, user_agent, request_id, created_at)
		VALUES (?, ?, ?, COALESCE(NULLIF(?, ''), (SELECT email FROM users WHERE id = ?), (SELECT name FROM api_keys WHERE id = ?), ''),
			?, ?, ?, ?, ?, ?, ?)`, []any{
			e.TeamID, e.ActorUserID, e.ActorKeyID, e.Actor, e.ActorUserID, e.ActorKeyID,
			e.Action, e.Target, e.Summary, e.IP, e.UserAgent, e.RequestID, e.CreatedAt}
}

// Recent returns the newest entries with action, for the admin pages.
func Recent(ctx context.Context, q db.Queryer, action string, limit int) ([]Entry, error) {
	var out []Entry
	err := db.Select(ctx, q, &out, `SELECT id, team_id, actor_user_id, actor_key_id, actor, action, target, summary, ip,
		user_agent, request_id, created_at FROM audit_log WHERE action = ? ORDER BY id DESC LIMIT ?`, action, limit)
	if err != nil {
		return nil, fmt.Errorf("audit: recent %s: %w", action, err)
	}
	return out, nil
}

// RecentOf returns the latest entries of team teamID about target with one
// of actions, newest first.
func RecentOf(ctx context.Context, q db.Queryer, teamID int64, target string, actions []string, limit int) ([]Entry, error) {
	if len(actions) == 0 {
		return nil, nil
	}
	args := []any{teamID, target}
	marks := ""
	for i, a := range actions {
		if i > 0 {
			marks += ", "
		}
		marks += "?"
		args = append(args, a)
	}
	var out []Entry
	err := db.Select(ctx, q, &out, `SELECT id, team_id, actor_user_id, actor_key_id, actor, action, target, summary, ip,
		user_agent, request_id, created_at FROM audit_log WHERE team_id = ? AND target = ? AND action IN (`+marks+`)
		ORDER BY id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("audit: recent entries of %s: %w", target, err)
	}
	return out, nil
}
