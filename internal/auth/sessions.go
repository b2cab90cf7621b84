package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/nofxhq/nofx/internal/db"
)

// SessionTTL is how long a session lasts without being used.
const SessionTTL = 30 * 24 * time.Hour

// sessionTouchEvery limits how often a session's last use is written.
const sessionTouchEvery = time.Minute

// Session is a signed-in browser. Only a hash of its token is stored.
type Session struct {
	TokenHash  string        `db:"token_hash"`
	UserID     int64         `db:"user_id"`
	TeamID     sql.NullInt64 `db:"team_id"`
	IP         string        `db:"ip"`
	UserAgent  string        `db:"user_agent"`
	CreatedAt  time.Time     `db:"created_at"`
	LastSeenAt time.Time     `db:"last_seen_at"`
	ExpiresAt  time.Time     `db:"expires_at"`
}

// NewToken returns a random token for a cookie or a key, and its hash.
func NewToken() (token, hash string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("auth: token: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token), nil
}

// HashToken is how tokens are stored: a hex SHA-256.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func createSession(ctx context.Context, q db.Queryer, userID int64, teamID sql.NullInt64, ip, userAgent string) (string, error) {
	token, hash, err := NewToken()
	if err != nil {
		return "", err
	}
	now := db.Now()
	_, err = db.Exec(ctx, q, `INSERT INTO sessions (token_hash, user_id, team_id, ip, user_agent, created_at, last_seen_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		hash, userID, teamID, truncate(ip, 64), truncate(userAgent, 512), now, now, now.Add(SessionTTL))
	if err != nil {
		return "", fmt.Errorf("auth: create session: %w", err)
	}
	return token, nil
}

// sessionByToken returns the live session for token; an unknown or expired
// token is db.ErrNotFound.
func sessionByToken(ctx context.Context, q db.Queryer, token string) (Session, error) {
	var s Session
	err := db.Get(ctx, q, &s, `SELECT token_hash, user_id, team_id, ip, user_agent, created_at, last_seen_at, expires_at
		FROM sessions WHERE token_hash = ? AND expires_at > ?`, HashToken(token), db.Now())
	if err != nil {
		return Session{}, fmt.Errorf("auth: session: %w", err)
	}
	return s, nil
}

func deleteSession(ctx context.Context, q db.Queryer, token string) error {
	if _, err := db.Exec(ctx, q, `DELETE FROM sessions WHERE token_hash = ?`, HashToken(token)); err != nil {
		return fmt.Errorf("auth: delete session: %w", err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
