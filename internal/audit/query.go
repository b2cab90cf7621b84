package audit

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/teams"
)

// DefaultLimit is the page size when a Filter gives none; MaxLimit caps it.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// Filter narrows a team's audit log.
type Filter struct {
	Actor  string    // case-insensitive substring of the actor's email or key name
	Action string    // exact action, or a prefix when it ends with "." ("run." matches run.created)
	Target string    // case-insensitive substring of the target
	From   time.Time // created at or after; zero means open
	To     time.Time // created before; zero means open
	Before int64     // keyset cursor: entries with a smaller id
	Limit  int       // page size; 0 means DefaultLimit, capped at MaxLimit
}

const entrySelect = `SELECT id, team_id, actor_user_id, actor_key_id, actor, action, target, summary, ip,
	user_agent, request_id, created_at FROM audit_log`

// List returns one page of teamID's entries matching f, newest first, and
// the cursor of the next (older) page, 0 on the last page.
func List(ctx context.Context, q db.Queryer, teamID int64, f Filter) (entries []Entry, nextBefore int64, err error) {
	where := []string{"team_id = ?"}
	args := []any{teamID}
	if f.Actor != "" {
		where = append(where, `lower(actor) LIKE lower(?) ESCAPE '\'`)
		args = append(args, "%"+escapeLike(f.Actor)+"%")
	}
	if f.Target != "" {
		where = append(where, `lower(target) LIKE lower(?) ESCAPE '\'`)
		args = append(args, "%"+escapeLike(f.Target)+"%")
	}
	switch {
	case f.Action == "":
	case strings.HasSuffix(f.Action, "."):
		where = append(where, "substr(action, 1, ?) = ?")
		args = append(args, utf8.RuneCountInString(f.Action), f.Action)
	default:
		where = append(where, "action = ?")
		args = append(args, f.Action)
	}
	if !f.From.IsZero() {
		where = append(where, "created_at >= ?")
		args = append(args, f.From.UTC())
	}
	if !f.To.IsZero() {
		where = append(where, "created_at < ?")
		args = append(args, f.To.UTC())
	}
	if f.Before > 0 {
		where = append(where, "id < ?")
		args = append(args, f.Before)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	args = append(args, limit+1)
	err = db.Select(ctx, q, &entries, entrySelect+` WHERE `+strings.Join(where, " AND ")+` ORDER BY id DESC LIMIT ?`, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("audit: list: %w", err)
	}
	if len(entries) > limit {
		entries = entries[:limit]
		nextBefore = entries[limit-1].ID
	}
	return entries, nextBefore, nil
}

// ListFor is List for the actor's team, allowed to roles with audit read.
// Where each change came from (IP and user agent) is left empty unless
// ShowsOrigin allows the actor to see it.
func ListFor(ctx context.Context, q db.Queryer, a access.Actor, f Filter) ([]Entry, int64, error) {
	if err := a.Can(access.AuditRead); err != nil {
		return nil, 0, err
	}
	entries, next, err := List(ctx, q, a.TeamID, f)
	if err != nil {
		return nil, 0, err
	}
	if !ShowsOrigin(a) {
		for i := range entries {
			entries[i].IP, entries[i].UserAgent = "", ""
		}
	}
	return entries, next, nil
}

// ShowsOrigin reports whether the actor may see the IPs and user agents of
// their team's audit log: admins and owners only.
func ShowsOrigin(a access.Actor) bool {
	return a.Role.AtLeast(teams.RoleAdmin)
}

// Actions returns the distinct actions in teamID's log, sorted, for a filter.
func Actions(ctx context.Context, q db.Queryer, teamID int64) ([]string, error) {
	var out []string
	if err := db.Select(ctx, q, &out, `SELECT DISTINCT action FROM audit_log WHERE team_id = ? ORDER BY action`, teamID); err != nil {
		return nil, fmt.Errorf("audit: actions: %w", err)
	}
	return out, nil
}

// escapeLike makes s match itself literally in a LIKE pattern with ESCAPE '\'.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
