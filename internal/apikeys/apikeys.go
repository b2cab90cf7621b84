// Package apikeys owns team API keys: shown once, stored as a hash, used as
// Bearer tokens on the JSON API.
package apikeys

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/teams"
)

// Prefix starts every NOFX API key, so that scanners can recognise one.
const Prefix = "nofx_"

// displayLen is how much of a key is kept in clear to tell keys apart.
const displayLen = len(Prefix) + 8

// touchEvery limits how often a key's last use is written.
const touchEvery = time.Minute

// ErrInvalid is an unknown, revoked or expired key, or one whose creator is
// no longer a member of its team.
var ErrInvalid = errors.New("invalid API key")

// Key is a team API key, without its secret.
type Key struct {
	ID     int64  `db:"id" json:"id"`
	TeamID int64  `db:"team_id" json:"team_id"`
	Name   string `db:"name" json:"name"`
	Prefix string `db:"prefix" json:"prefix"`
	// Role is the role the key was given; from Authenticate, the role it
	// acts with: the lower of that and its creator's current role.
	Role teams.Role `db:"role" json:"role"`
	// GrantedRole is the role the key was given, whatever its creator's
	// role now; Authenticate sets it.
	GrantedRole teams.Role `db:"-" json:"-"`
	// CreatedBy is the user the key answers to: it acts with at most their
	// role in the team, and only while they are a member.
	CreatedBy  sql.NullInt64 `db:"created_by" json:"-"`
	CreatedAt  time.Time     `db:"created_at" json:"created_at"`
	ExpiresAt  *time.Time    `db:"expires_at" json:"expires_at"`
	LastUsedAt *time.Time    `db:"last_used_at" json:"last_used_at"`
	RevokedAt  *time.Time    `db:"revoked_at" json:"revoked_at"`
}

// Status says whether the key is active, revoked or expired at now.
func (k Key) Status(now time.Time) string {
	switch {
	case k.RevokedAt != nil:
		return "revoked"
	case k.ExpiresAt != nil && !now.Before(*k.ExpiresAt):
		return "expired"
	}
	return "active"
}

const keyColumns = `id, team_id, name, prefix, role, created_by, created_at, expires_at, last_used_at, revoked_at`

// keyColumnsOfK is keyColumns of the table aliased k.
const keyColumnsOfK = `k.id, k.team_id, k.name, k.prefix, k.role, k.created_by, k.created_at, k.expires_at, k.last_used_at, k.revoked_at`

// Create makes a key for teamID on behalf of the user createdBy, to whom
// it answers, and returns it with its secret, which is never stored and
// cannot be shown again.
func Create(ctx context.Context, q db.Queryer, teamID int64, name string, role teams.Role, createdBy int64, expiresAt *time.Time) (Key, string, error) {
	if createdBy == 0 {
		return Key{}, "", errors.New("apikeys: create: a key needs the user who makes it")
	}
	random, _, err := auth.NewToken()
	if err != nil {
		return Key{}, "", err
	}
	secret := Prefix + random
	k := Key{
		TeamID:    teamID,
		Name:      name,
		Prefix:    secret[:displayLen],
		Role:      role,
		CreatedAt: db.Now(),
		ExpiresAt: expiresAt,
	}
	k.GrantedRole = k.Role
	err = db.Get(ctx, q, &k, `INSERT INTO api_keys (team_id, name, prefix, key_hash, role, created_by, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		RETURNING id, created_by`,
		k.TeamID, k.Name, k.Prefix, auth.HashToken(secret), k.Role, createdBy, k.CreatedAt, k.ExpiresAt)
	if err != nil {
		return Key{}, "", fmt.Errorf("apikeys: create: %w", err)
	}
	return k, secret, nil
}

// Authenticate returns the live key whose secret is given and its team,
// read in one query, with the key's Role the role it acts with (the lower
// of its own and its creator's current role in the team), and records its
// use. An unknown, revoked or expired key, or one
// whose creator is no longer a member of its team, is ErrInvalid. The key
// is read through d's readers, so that requests go on while the writer
// waits (a locked SQLite file).
func Authenticate(ctx context.Context, d *db.DB, secret string) (Key, teams.Team, error) {
	if !strings.HasPrefix(secret, Prefix) {
		return Key{}, teams.Team{}, ErrInvalid
	}
	var row struct {
		Key
		CreatorRole sql.NullString `db:"creator_role"`
		Team        teams.Team     `db:"team"`
	}
	err := db.Get(ctx, d.Reader(), &row, `SELECT `+keyColumnsOfK+`, m.role AS creator_role, `+teams.ColumnsAs("team")+`
		FROM api_keys k JOIN teams t ON t.id = k.team_id
		LEFT JOIN memberships m ON m.team_id = k.team_id AND m.user_id = k.created_by
		WHERE k.key_hash = ?`, auth.HashToken(secret))
	if errors.Is(err, db.ErrNotFound) {
		return Key{}, teams.Team{}, ErrInvalid
	}
	if err != nil {
		return Key{}, teams.Team{}, fmt.Errorf("apikeys: look up: %w", err)
	}
	k := row.Key
	now := db.Now()
	if k.RevokedAt != nil || (k.ExpiresAt != nil && !now.Before(*k.ExpiresAt)) {
		return Key{}, teams.Team{}, ErrInvalid
	}
	creatorRole, err := teams.ParseRole(row.CreatorRole.String)
	if !k.CreatedBy.Valid || !row.CreatorRole.Valid || err != nil {
		return Key{}, teams.Team{}, ErrInvalid // the creator was deleted or left the team
	}
	k.GrantedRole = k.Role
	if !creatorRole.AtLeast(k.Role) {
		k.Role = creatorRole
	}
	if k.LastUsedAt == nil || now.Sub(*k.LastUsedAt) > touchEvery {
		_, err := db.Exec(ctx, d, `UPDATE api_keys SET last_used_at = ? WHERE id = ?`, now, k.ID)
		switch {
		case err == nil:
			k.LastUsedAt = &now
		case db.Unavailable(err):
			// The database reads but cannot write now (a locked SQLite
			// file): the key still works; its last use is noted next time.
		default:
			return Key{}, teams.Team{}, fmt.Errorf("apikeys: touch: %w", err)
		}
	}
	return k, row.Team, nil
}

// Revoke ends the key id of teamID at once.
func Revoke(ctx context.Context, q db.Queryer, teamID, id int64) error {
	err := db.ExecOne(ctx, q, `UPDATE api_keys SET revoked_at = ? WHERE id = ? AND team_id = ? AND revoked_at IS NULL`,
		db.Now(), id, teamID)
	if err != nil {
		return fmt.Errorf("apikeys: revoke %d: %w", id, err)
	}
	return nil
}

// RevokeCreatedBy ends at once every live key that userID made in teamID,
// as when they leave it, and returns those keys.
func RevokeCreatedBy(ctx context.Context, q db.Queryer, teamID, userID int64) ([]Key, error) {
	var keys []Key
	err := db.Select(ctx, q, &keys, `UPDATE api_keys SET revoked_at = ?
		WHERE team_id = ? AND created_by = ? AND revoked_at IS NULL
		RETURNING `+keyColumns, db.Now(), teamID, userID)
	if err != nil {
		return nil, fmt.Errorf("apikeys: revoke the keys of user %d in team %d: %w", userID, teamID, err)
	}
	for i := range keys {
		keys[i].GrantedRole = keys[i].Role
	}
	slices.SortFunc(keys, func(a, b Key) int { return cmp.Compare(a.ID, b.ID) })
	return keys, nil
}
