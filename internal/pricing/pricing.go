// Package pricing keeps the per-model token prices that turn a step's token
// counts into a cost. Site admins edit them.
package pricing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/validation"
)

// Price is what one model costs, in micro-dollars per million tokens.
type Price struct {
	Provider      string    `db:"provider"`
	Model         string    `db:"model"`
	InputPerMTok  int64     `db:"input_per_mtok"`
	OutputPerMTok int64     `db:"output_per_mtok"`
	UpdatedAt     time.Time `db:"updated_at"`
}

// Cost returns the cost in micro-dollars of a call with these token counts,
// rounded to the nearest micro-dollar.
func (p Price) Cost(inputTokens, outputTokens int64) int64 {
	total := inputTokens*p.InputPerMTok + outputTokens*p.OutputPerMTok
	return (total + 500_000) / 1_000_000
}

// List returns every price, by provider and model.
func List(ctx context.Context, q db.Queryer) ([]Price, error) {
	var prices []Price
	if err := db.Select(ctx, q, &prices, `SELECT provider, model, input_per_mtok, output_per_mtok, updated_at
		FROM model_prices ORDER BY provider, model`); err != nil {
		return nil, fmt.Errorf("pricing: list: %w", err)
	}
	return prices, nil
}

// Lookup returns the price of a model; an unpriced model costs nothing and
// ok is false.
func Lookup(ctx context.Context, q db.Queryer, provider, model string) (Price, bool, error) {
	var p Price
	err := db.Get(ctx, q, &p, `SELECT provider, model, input_per_mtok, output_per_mtok, updated_at
		FROM model_prices WHERE provider = ? AND model = ?`, provider, model)
	if errors.Is(err, db.ErrNotFound) {
		return Price{Provider: provider, Model: model}, false, nil
	}
	if err != nil {
		return Price{}, false, fmt.Errorf("pricing: lookup %s/%s: %w", provider, model, err)
	}
	return p, true, nil
}

// maxPerMTok caps a price at $10,000 per million tokens, to catch typos.
const maxPerMTok = 10_000_000_000

// ParseDollars reads a price such as "3", "0.15" or "$2.50" (dollars per
// million tokens) as micro-dollars.
func ParseDollars(s string) (int64, error) {
	return ParseMoney(s, maxPerMTok)
}

// ParseMoney reads dollars such as "3", "0.15" or "$2.50" as micro-dollars,
// refusing more than max.
func ParseMoney(s string, max int64) (int64, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "$")
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" && frac == "" {
		return 0, errors.New("enter a price")
	}
	if len(frac) > 6 {
		return 0, errors.New("use at most 6 decimals")
	}
	var micros int64
	for _, r := range whole + (frac + "000000")[:6] {
		if r < '0' || r > '9' {
			return 0, errors.New("use a number such as 3 or 0.15")
		}
		micros = micros*10 + int64(r-'0')
		if micros > max {
			return 0, errors.New("that amount is too high")
		}
	}
	return micros, nil
}

// FormatDollars writes micro-dollars as dollars, with as many decimals as
// needed (at least two).
func FormatDollars(micros int64) string {
	s := fmt.Sprintf("%d.%06d", micros/1_000_000, micros%1_000_000)
	s = strings.TrimRight(s, "0")
	if i := strings.IndexByte(s, '.'); len(s)-i < 3 {
		s += strings.Repeat("0", 3-(len(s)-i))
	}
	return "$" + s
}

// Set creates or changes the price of a model.
func Set(ctx context.Context, q db.Queryer, provider, model string, inputPerMTok, outputPerMTok int64, userID int64) error {
	errs := validation.Errors{}
	if provider = strings.TrimSpace(provider); provider == "" {
		errs.Add("provider", "Enter a provider.")
	}
	if model = strings.TrimSpace(model); model == "" || len(model) > 200 {
		errs.Add("model", "Enter a model name of at most 200 characters.")
	}
	if err := errs.Err(); err != nil {
		return err
	}
	var by any
	if userID != 0 {
		by = userID
	}
	_, err := db.Exec(ctx, q, `INSERT INTO model_prices (provider, model, input_per_mtok, output_per_mtok, updated_by, updated_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (provider, model) DO UPDATE SET input_per_mtok = excluded.input_per_mtok,
			output_per_mtok = excluded.output_per_mtok, updated_by = excluded.updated_by, updated_at = excluded.updated_at`,
		provider, model, inputPerMTok, outputPerMTok, by, db.Now())
	if err != nil {
		return fmt.Errorf("pricing: set %s/%s: %w", provider, model, err)
	}
	changes.Add(1) // every Cache reads prices again (before the caller's commit, at worst early)
	return nil
}
