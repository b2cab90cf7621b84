package apikeys

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/validation"
)

// MaxNameLen is the longest key name, in characters.
const MaxNameLen = 100

// MaxLifetime is how far ahead a key's expiry may be set.
const MaxLifetime = 2 * 365 * 24 * time.Hour

// Service manages a team's API keys on behalf of an actor, checking its
// permissions and auditing every change.
type Service struct {
	DB *db.DB
}

// List returns the actor's team's keys, newest first, revoked ones included.
func (s *Service) List(ctx context.Context, actor access.Actor) ([]Key, error) {
	if err := actor.Can(access.APIKeysManage); err != nil {
		return nil, err
	}
	var keys []Key
	err := db.Select(ctx, s.DB, &keys, `SELECT `+keyColumns+` FROM api_keys WHERE team_id = ? ORDER BY id DESC`, actor.TeamID)
	if err != nil {
		return nil, fmt.Errorf("apikeys: list: %w", err)
	}
	return keys, nil
}

// CreateKey makes a key for the actor's team, with a role no more powerful
// than the actor's own, and returns it with its secret, shown only now.
func (s *Service) CreateKey(ctx context.Context, actor access.Actor, name string, role teams.Role, expiresAt *time.Time) (Key, string, error) {
	if err := actor.Can(access.APIKeysManage); err != nil {
		return Key{}, "", err
	}
	name = strings.TrimSpace(name)
	if err := validateKey(actor, name, role, expiresAt, db.Now()); err != nil {
		return Key{}, "", err
	}
	var (
		key    Key
		secret string
	)
	err := db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		creator, err := creatorOf(ctx, tx, actor)
		if err != nil {
			return err
		}
		if key, secret, err = Create(ctx, tx, actor.TeamID, name, role, creator, expiresAt); err != nil {
			return err
		}
		summary := "role " + string(role) + ", no expiry"
		if expiresAt != nil {
			summary = "role " + string(role) + ", expires " + expiresAt.UTC().Format(time.RFC3339)
		}
		return audit.Record(ctx, tx, actorEntry(actor, "api_key.create", name, summary))
	})
	if err != nil {
		return Key{}, "", err
	}
	return key, secret, nil
}

// creatorOf is the user a key made by actor answers to: the acting user, or
// the user who made the acting key. An acting key that answers to nobody
// makes nothing (access.ErrForbidden).
func creatorOf(ctx context.Context, q db.Queryer, actor access.Actor) (int64, error) {
	if actor.APIKeyID == 0 {
		return actor.UserID, nil
	}
	var createdBy sql.NullInt64
	err := db.Get(ctx, q, &createdBy, `SELECT created_by FROM api_keys WHERE id = ? AND team_id = ?`, actor.APIKeyID, actor.TeamID)
	if errors.Is(err, db.ErrNotFound) || (err == nil && !createdBy.Valid) {
		return 0, access.ErrForbidden
	}
	if err != nil {
		return 0, fmt.Errorf("apikeys: creator of key %d: %w", actor.APIKeyID, err)
	}
	return createdBy.Int64, nil
}

// RevokeKey ends the key id of the actor's team at once. Another team's key,
// or one already revoked, is db.ErrNotFound; a key with a role above the
// actor's is access.ErrForbidden.
func (s *Service) RevokeKey(ctx context.Context, actor access.Actor, id int64) error {
	if err := actor.Can(access.APIKeysManage); err != nil {
		return err
	}
	return db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		var target struct {
			Name string     `db:"name"`
			Role teams.Role `db:"role"`
		}
		err := db.Get(ctx, tx, &target, `SELECT name, role FROM api_keys WHERE id = ? AND team_id = ? AND revoked_at IS NULL`, id, actor.TeamID)
		if err != nil {
			return fmt.Errorf("apikeys: revoke %d: %w", id, err)
		}
		if !actor.Role.AtLeast(target.Role) {
			return access.ErrForbidden
		}
		if err := Revoke(ctx, tx, actor.TeamID, id); err != nil {
			return err
		}
		return audit.Record(ctx, tx, actorEntry(actor, "api_key.revoke", target.Name, fmt.Sprintf("key %d", id)))
	})
}

// validateKey checks a new key's fields against the actor creating it.
func validateKey(actor access.Actor, name string, role teams.Role, expiresAt *time.Time, now time.Time) error {
	errs := validation.Errors{}
	switch n := utf8.RuneCountInString(name); {
	case n == 0:
		errs.Add("name", "Name the key, say after where it is used.")
	case n > MaxNameLen:
		errs.Add("name", fmt.Sprintf("Use at most %d characters.", MaxNameLen))
	}
	if _, err := teams.ParseRole(string(role)); err != nil {
		errs.Add("role", "Choose owner, admin, member or viewer.")
	} else if !actor.Role.AtLeast(role) {
		errs.Add("role", "A key cannot have more power than your own role ("+string(actor.Role)+").")
	}
	if expiresAt != nil {
		switch {
		case !expiresAt.After(now):
			errs.Add("expires_at", "Choose a time in the future.")
		case expiresAt.After(now.Add(MaxLifetime)):
			errs.Add("expires_at", "Choose a time at most two years ahead.")
		}
	}
	return errs.Err()
}

// actorEntry starts an audit entry for what actor did in its team.
func actorEntry(a access.Actor, action, target, summary string) audit.Entry {
	e := audit.Entry{TeamID: &a.TeamID, Action: action, Target: target, Summary: summary}
	if a.UserID != 0 {
		e.ActorUserID = &a.UserID
	}
	if a.APIKeyID != 0 {
		e.ActorKeyID = &a.APIKeyID
	}
	return e
}
