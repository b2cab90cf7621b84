package instance

import (
	"cmp"
	"context"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/nofxhq/nofx/internal/ai"
	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/live"
	"github.com/nofxhq/nofx/internal/mail"
	"github.com/nofxhq/nofx/internal/pricing"
)

// Service is what site admins do to the whole instance: read its overview,
// reset provider circuits, set model prices and read the mail outbox. The
// routes that call it are for site admins only; each change is audited.
type Service struct {
	DB       *db.DB
	Circuits *ai.Circuits
	// Broker tells the other processes of a circuit reset (each keeps its
	// own circuits).
	Broker live.Broker
}

// Admin is the site admin who acts, as the audit log names them.
type Admin struct {
	UserID int64
	Email  string
}

func (a Admin) entry(action, target, summary string) audit.Entry {
	return audit.Entry{ActorUserID: &a.UserID, Actor: a.Email, Action: action, Target: target, Summary: summary}
}

// Counts are the instance's sizes on the overview.
type Counts struct {
	SchemaVersion  int64
	Users          int
	Teams          int
	ActiveSessions int
}

// Counts reads the schema version and how many users, teams and live
// sessions there are.
func (s *Service) Counts(ctx context.Context) (Counts, error) {
	var n Counts
	var err error
	if n.SchemaVersion, _, err = s.DB.MigrationVersions(ctx); err != nil {
		return Counts{}, err
	}
	if n.Users, err = auth.CountUsers(ctx, s.DB); err != nil {
		return Counts{}, err
	}
	if err := db.Get(ctx, s.DB.Reader(), &n.Teams, `SELECT COUNT(*) FROM teams`); err != nil {
		return Counts{}, fmt.Errorf("instance: count teams: %w", err)
	}
	if err := db.Get(ctx, s.DB.Reader(), &n.ActiveSessions, `SELECT COUNT(*) FROM sessions WHERE expires_at > ?`, db.Now()); err != nil {
		return Counts{}, fmt.Errorf("instance: count sessions: %w", err)
	}
	return n, nil
}

// Activity is the instance's activity of the last ActivityDays.
func (s *Service) Activity(ctx context.Context) (Activity, error) {
	return Read(ctx, s.DB, db.Now())
}

// CircuitReport is the provider circuits of this process, the names of the
// teams whose keys they belong to (by id), and the last resets by hand.
type CircuitReport struct {
	States []ai.CircuitState
	Teams  map[int64]string
	Resets []audit.Entry
}

// CircuitReport reads the circuits and their teams now.
func (s *Service) CircuitReport(ctx context.Context) (CircuitReport, error) {
	out := CircuitReport{States: s.Circuits.States(), Teams: map[int64]string{}}
	var err error
	if out.Resets, err = audit.Recent(ctx, s.DB, "circuit.reset", 20); err != nil {
		return CircuitReport{}, err
	}
	var ids []any
	for _, st := range out.States {
		if id, ok := st.Key.TeamID(); ok {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []struct {
		ID   int64  `db:"id"`
		Name string `db:"name"`
	}
	query := `SELECT id, name FROM teams WHERE id IN (?` + strings.Repeat(", ?", len(ids)-1) + `)`
	if err := db.Select(ctx, s.DB.Reader(), &rows, query, ids...); err != nil {
		return CircuitReport{}, fmt.Errorf("instance: names of teams with circuits: %w", err)
	}
	for _, r := range rows {
		out.Teams[r.ID] = r.Name
	}
	return out, nil
}

// ResetCircuit closes a circuit now, in this process and (through the
// broker) the others, and records who did it. Without a scope, key names
// every circuit of its provider. It returns the circuit's name as the page
// shows it, or ai.ErrNoCircuit.
func (s *Service) ResetCircuit(ctx context.Context, by Admin, key ai.CircuitKey) (string, error) {
	var (
		targets []ai.CircuitState
		message = key.Provider // what the other processes reset: a provider name means all its circuits
		target  = key.Provider
	)
	if key.Scope == "" {
		targets = s.Circuits.ProviderStates(key.Provider)
	} else {
		targets = []ai.CircuitState{s.Circuits.State(key)}
		message, target = key.Encode(), key.String()
	}
	if len(targets) == 0 {
		return "", ai.ErrNoCircuit
	}
	err := db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		summaries := make([]string, 0, len(targets))
		for _, before := range targets {
			if err := s.Circuits.Reset(before.Key); err != nil {
				return err
			}
			summaries = append(summaries, "was "+before.State+", last error: "+cmp.Or(before.LastError, "none"))
		}
		summary := summaries[0]
		if len(targets) > 1 {
			summary = fmt.Sprintf("%d circuits; %s", len(targets), strings.Join(summaries, "; "))
		}
		return audit.Record(ctx, tx, by.entry("circuit.reset", target, summary))
	})
	if err != nil {
		return "", err
	}
	s.Broker.Publish(context.WithoutCancel(ctx), live.Message{RunID: live.SystemTopic, Kind: live.KindCircuitReset, Text: message})
	return target, nil
}

// Prices lists the model prices.
func (s *Service) Prices(ctx context.Context) ([]pricing.Price, error) {
	return pricing.List(ctx, s.DB)
}

// SetPrice adds or changes a model's price (micro-dollars per million
// tokens), and records who did it.
func (s *Service) SetPrice(ctx context.Context, by Admin, provider, model string, input, output int64) error {
	return db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		if err := pricing.Set(ctx, tx, provider, model, input, output, by.UserID); err != nil {
			return err
		}
		return audit.Record(ctx, tx, by.entry("price.set", provider+"/"+model,
			"input "+pricing.FormatDollars(input)+", output "+pricing.FormatDollars(output)+" per million tokens"))
	})
}

// Outbox lists the newest mail kept instead of sent.
func (s *Service) Outbox(ctx context.Context, limit int) ([]mail.Stored, error) {
	return mail.List(ctx, s.DB, limit)
}

// Database names the database the instance runs on: sqlite or postgres.
func (s *Service) Database() string { return string(s.DB.Dialect) }
