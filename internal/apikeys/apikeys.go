// Package apikeys owns team API keys: shown once, stored as a hash, used as
// Bearer tokens on the JSON API.
package apikeys

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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

// ErrInvalid is an unknown, revoked or expired key.
var ErrInvalid = errors.New("invalid API key")

// Key is a team API key, without its secret.
type Key struct {
	ID         int64         `db:"id" json:"id"`
	TeamID     int64         `db:"team_id" json:"team_id"`
	Name       string        `db:"name" json:"name"`
	Prefix     string        `db:"prefix" json:"prefix"`
	Role       teams.Role    `db:"role" json:"role"`
	CreatedBy  sql.NullInt64 `db:"created_by" json:"-"`
	CreatedAt  time.Time     `db:"created_at" json:"created_at"`
	ExpiresAt  *time.Time    `db:"expires_at" json:"expires_at"`
	LastUsedAt *time.Time    `db:"last_used_at" json:"last_used_at"`
	RevokedAt  *time.Time    `db:"revoked_at" json:"revoked_at"`
}

const keyColumns = `id, team_id, name, prefix, role, created_by, created_at, expires_at, last_used_at, revoked_at`

// Create makes a key for teamID and returns it with its secret, which is
// never stored and cannot be shown again.
func Create(ctx context.Context, q db.Queryer, teamID int64, name string, role teams.Role, createdBy int64, expiresAt *time.Time) (Key, string, error) {
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
		CreatedBy: sql.NullInt64{Int64: createdBy, Valid: createdBy != 0},
		CreatedAt: db.Now(),
		ExpiresAt: expiresAt,
	}
	err = db.Get(ctx, q, &k.ID, `INSERT INTO api_keys (team_id, name, prefix, key_hash, role, created_by, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		k.TeamID, k.Name, k.Prefix, auth.HashToken(secret), k.Role, k.CreatedBy, k.CreatedAt, k.ExpiresAt)
	if err != nil {
		return Key{}, "", fmt.Errorf("apikeys: create: %w", err)
	}
	return k, secret, nil
}

// Authenticate returns the live key whose secret is given, and records its
// use; anything else is ErrInvalid.
func Authenticate(ctx context.Context, q db.Queryer, secret string) (Key, error) {
	if !strings.HasPrefix(secret, Prefix) {
		return Key{}, ErrInvalid
	}
	var k Key
	err := db.Get(ctx, q, &k, `SELECT `+keyColumns+` FROM api_keys WHERE key_hash = ?`, auth.HashToken(secret))
	if errors.Is(err, db.ErrNotFound) {
		return Key{}, ErrInvalid
	}
	if err != nil {
		return Key{}, fmt.Errorf("apikeys: look up: %w", err)
	}
	now := db.Now()
	if k.RevokedAt != nil || (k.ExpiresAt != nil && !now.Before(*k.ExpiresAt)) {
		return Key{}, ErrInvalid
	}
	if k.LastUsedAt == nil || now.Sub(*k.LastUsedAt) > touchEvery {
		if _, err := db.Exec(ctx, q, `UPDATE api_keys SET last_used_at = ? WHERE id = ?`, now, k.ID); err != nil {
			return Key{}, fmt.Errorf("apikeys: touch: %w", err)
		}
		k.LastUsedAt = &now
	}
	return k, nil
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
