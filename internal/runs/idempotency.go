package runs

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nofxhq/nofx/internal/db"
)

// RequestHash returns the SHA-256, in hex, of a canonical form of request
// (its JSON, object keys sorted): what a run was started from, stored with
// its Idempotency-Key to tell a retry from another request under the same key.
func RequestHash(request any) string {
	b, err := json.Marshal(request)
	if err != nil {
		// Values JSON cannot encode (NaN, say) are refused later; the hash
		// still has to be stable. fmt prints maps with their keys sorted.
		b = fmt.Appendf(nil, "%#v", request)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// createHash is the request hash of a run created from in, when its caller
// gave none: the normalized plan and the inputs, with where they came from.
func createHash(in CreateInput, planJSON, inputsJSON []byte) string {
	if in.RequestHash != "" {
		return in.RequestHash
	}
	return RequestHash(struct {
		Template        string          `json:"template"`
		TemplateVersion int             `json:"template_version"`
		DeploymentID    int64           `json:"deployment_id"`
		Plan            json.RawMessage `json:"plan"`
		Inputs          json.RawMessage `json:"inputs"`
	}{in.Template, in.TemplateVersion, in.DeploymentID, planJSON, inputsJSON})
}

// idempotentRun is the run that first used an Idempotency-Key.
type idempotentRun struct {
	ID        int64          `db:"id"`
	CreatedAt time.Time      `db:"created_at"`
	Hash      sql.NullString `db:"idempotency_hash"`
}

// replayOf returns the id of the team's run that used key within the
// window, 0 when there is none (a key older than the window is freed). The
// run must have been started from the request that hashes to hash, else
// the key is reused: ErrIdempotencyKeyReused. A run stored before hashes
// were kept matches any request.
func replayOf(ctx context.Context, q db.Queryer, teamID int64, key, hash string, now time.Time) (int64, error) {
	var existing idempotentRun
	err := db.Get(ctx, q, &existing, `SELECT id, created_at, idempotency_hash FROM runs WHERE team_id = ? AND idempotency_key = ?`, teamID, key)
	switch {
	case errors.Is(err, db.ErrNotFound):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("runs: idempotency key: %w", err)
	case now.Sub(existing.CreatedAt) >= IdempotencyWindow: // the key is older than the window: free it
		if _, err := db.Exec(ctx, q, `UPDATE runs SET idempotency_key = NULL, idempotency_hash = NULL WHERE id = ?`, existing.ID); err != nil {
			return 0, fmt.Errorf("runs: free idempotency key: %w", err)
		}
		return 0, nil
	case existing.Hash.Valid && existing.Hash.String != hash:
		return 0, fmt.Errorf("%w: the key started run %d", ErrIdempotencyKeyReused, existing.ID)
	}
	return existing.ID, nil
}
