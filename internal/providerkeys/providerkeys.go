// Package providerkeys keeps each team's own LLM provider API keys, sealed
// with the instance's secret key, never shown again after saving and never
// logged. A team key is used instead of the instance's key for that team.
package providerkeys

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/secrets"
	"github.com/nofxhq/nofx/internal/validation"

	"github.com/jmoiron/sqlx"
)

// Key is a stored key as it may be shown: its provider and last characters.
type Key struct {
	Provider  string    `db:"provider"`
	Hint      string    `db:"hint"`
	CreatedAt time.Time `db:"created_at"`
}

// Service stores and resolves team provider keys.
type Service struct {
	DB  *db.DB
	Box *secrets.Box
	// Providers lists the providers that take keys (not "simulated").
	Providers []string
}

func sealContext(teamID int64, provider string) string {
	return fmt.Sprintf("team:%d:provider:%s", teamID, provider)
}

// List returns the team's keys, without their secrets.
func (s *Service) List(ctx context.Context, actor access.Actor) ([]Key, error) {
	if err := actor.Can(access.TeamRead); err != nil {
		return nil, err
	}
	var keys []Key
	if err := db.Select(ctx, s.DB, &keys, `SELECT provider, hint, created_at FROM provider_keys WHERE team_id = ? ORDER BY provider`, actor.TeamID); err != nil {
		return nil, fmt.Errorf("providerkeys: list: %w", err)
	}
	return keys, nil
}

// Set stores (or replaces) the team's key for provider.
func (s *Service) Set(ctx context.Context, actor access.Actor, provider, key string) error {
	if err := actor.Can(access.TeamUpdate); err != nil {
		return err
	}
	key = strings.TrimSpace(key)
	errs := validation.Errors{}
	if !slices.Contains(s.Providers, provider) {
		errs.Add("provider", "Choose one of "+strings.Join(s.Providers, ", ")+".")
	}
	switch {
	case key == "":
		errs.Add("key", "Paste the API key.")
	case len(key) < 8 || len(key) > 500 || strings.ContainsAny(key, " \t\r\n"):
		errs.Add("key", "That does not look like an API key.")
	}
	if err := errs.Err(); err != nil {
		return err
	}
	sealed, err := s.Box.Seal(key, sealContext(actor.TeamID, provider))
	if err != nil {
		return err
	}
	hint := "…" + key[len(key)-4:]
	var by any
	if actor.UserID != 0 {
		by = actor.UserID
	}
	return db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		_, err := db.Exec(ctx, tx, `INSERT INTO provider_keys (team_id, provider, sealed, hint, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (team_id, provider) DO UPDATE SET sealed = excluded.sealed, hint = excluded.hint,
				created_by = excluded.created_by, created_at = excluded.created_at`,
			actor.TeamID, provider, sealed, hint, by, db.Now())
		if err != nil {
			return fmt.Errorf("providerkeys: set %s: %w", provider, err)
		}
		return audit.Record(ctx, tx, audit.For(actor, "provider_key.set", provider, "key "+hint))
	})
}

// Delete removes the team's key for provider.
func (s *Service) Delete(ctx context.Context, actor access.Actor, provider string) error {
	if err := actor.Can(access.TeamUpdate); err != nil {
		return err
	}
	return db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		if err := db.ExecOne(ctx, tx, `DELETE FROM provider_keys WHERE team_id = ? AND provider = ?`, actor.TeamID, provider); err != nil {
			return fmt.Errorf("providerkeys: delete %s: %w", provider, err)
		}
		return audit.Record(ctx, tx, audit.For(actor, "provider_key.delete", provider, ""))
	})
}

// Saved returns the providers teamID has a key of its own for, without
// opening any.
func (s *Service) Saved(ctx context.Context, teamID int64) ([]string, error) {
	var names []string
	if err := db.Select(ctx, s.DB.Reader(), &names, `SELECT provider FROM provider_keys WHERE team_id = ? ORDER BY provider`, teamID); err != nil {
		return nil, fmt.Errorf("providerkeys: saved of team %d: %w", teamID, err)
	}
	return names, nil
}

// Resolve returns the team's key for provider, or "" when it has none (the
// instance's key applies). It reads through the readers (on SQLite beside
// the single writer): every provider call asks.
func (s *Service) Resolve(ctx context.Context, teamID int64, provider string) (string, error) {
	var sealed string
	err := db.Get(ctx, s.DB.Reader(), &sealed, `SELECT sealed FROM provider_keys WHERE team_id = ? AND provider = ?`, teamID, provider)
	if errors.Is(err, db.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("providerkeys: resolve %s: %w", provider, err)
	}
	key, err := s.Box.Open(sealed, sealContext(teamID, provider))
	if err != nil {
		return "", fmt.Errorf("providerkeys: the team's %s key: %w", provider, err)
	}
	return key, nil
}
