// Package audit keeps the append-only record of who changed what: each
// entry is written in the same transaction as the change it describes.
package audit

import (
	"context"
	"fmt"
	"time"

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

// Record appends e, stamped now, using q (the change's transaction).
func Record(ctx context.Context, q db.Queryer, e Entry) error {
	if e.CreatedAt.IsZero() {
		e.CreatedAt = db.Now()
	}
	_, err := db.Exec(ctx, q, `INSERT INTO audit_log (team_id, actor_user_id, actor_key_id, actor, action, target, summary,
		ip, user_agent, request_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.TeamID, e.ActorUserID, e.ActorKeyID, e.Actor, e.Action, e.Target, e.Summary, e.IP, e.UserAgent, e.RequestID, e.CreatedAt)
	if err != nil {
		return fmt.Errorf("audit: record %s: %w", e.Action, err)
	}
	return nil
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
