package deployments

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/billing"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/templates"
)

// Inbound webhooks: the headers a delivery carries, and its limits.
const (
	// TimestampHeader carries the time the delivery was signed, in Unix seconds.
	TimestampHeader = "X-NOFX-Timestamp"
	// SignatureHeader carries "sha256=" and the hex HMAC-SHA256, keyed
	// with the webhook secret, of the timestamp, a dot and the body.
	SignatureHeader = "X-NOFX-Signature"
	// MaxWebhookBody is the largest webhook body accepted, in bytes.
	MaxWebhookBody = 64 << 10
	// WebhookTolerance is how far a delivery's timestamp may be from now.
	WebhookTolerance = 5 * time.Minute
	// deliveryMemory is how long a delivery's signature is kept to refuse a
	// replay: past the tolerance, a replay is stale anyway.
	deliveryMemory = 2 * WebhookTolerance
)

// Sign returns the X-NOFX-Signature value of body sent at unix time ts.
func Sign(secret string, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(ts, 10)))
	mac.Write([]byte("."))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// VerifySignature checks a delivery's timestamp and signature headers
// against body and secret: ErrBadSignature when they are missing, malformed
// or wrong, ErrStale when they are right but the timestamp is more than
// WebhookTolerance away from now.
func VerifySignature(secret, timestamp, signature string, body []byte, now time.Time) error {
	ts, err := strconv.ParseInt(strings.TrimSpace(timestamp), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s must be Unix seconds", ErrBadSignature, TimestampHeader)
	}
	hexSum, ok := strings.CutPrefix(strings.TrimSpace(signature), "sha256=")
	got, err := hex.DecodeString(hexSum)
	if !ok || err != nil || len(got) != sha256.Size {
		return fmt.Errorf("%w: %s must be sha256= and 64 hex digits", ErrBadSignature, SignatureHeader)
	}
	want, _ := hex.DecodeString(strings.TrimPrefix(Sign(secret, ts, body), "sha256="))
	if !hmac.Equal(got, want) {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(ts, 0)); d > WebhookTolerance || d < -WebhookTolerance {
		return fmt.Errorf("%w: signed at %s, %s from now", ErrStale, time.Unix(ts, 0).UTC().Format(time.RFC3339), d.Round(time.Second))
	}
	return nil
}

// systemActor is who starts the runs of webhooks and schedules: the team,
// with a role that may start runs, and no user or key.
func systemActor(teamID int64) access.Actor {
	return access.Actor{TeamID: teamID, Role: teams.RoleMember}
}

func pausedError(d Deployment) error {
	return &runs.ConflictError{Message: fmt.Sprintf("The %s deployment of %s is paused; resume it to run it.", d.Environment, d.Template)}
}

// pinned returns the version the deployment runs.
func pinned(ctx context.Context, q db.Queryer, d Deployment) (templates.Version, error) {
	_, v, err := templates.LoadVersion(ctx, q, d.TeamID, d.Template, d.Version)
	if err != nil {
		return templates.Version{}, fmt.Errorf("deployments: pinned version %d of %q: %w", d.Version, d.Template, err)
	}
	return v, nil
}

// runInput checks values against the deployment's pinned version v and
// returns the run to create.
func runInput(d Deployment, v templates.Version, values map[string]any, trigger string) (runs.CreateInput, error) {
	in, err := v.RunInput(d.Template, values)
	if err != nil {
		return runs.CreateInput{}, err
	}
	in.DeploymentID, in.TriggeredBy = d.ID, trigger
	return in, nil
}

// Trigger starts a run of the deployment of slug to env, on its pinned
// version, with values for its inputs. A paused deployment is a conflict,
// checked again in the transaction that creates the run.
func (s *Service) Trigger(ctx context.Context, actor access.Actor, slug, env string, values map[string]any, idempotencyKey string) (runs.Run, bool, error) {
	return s.start(ctx, actor, slug, env, values, idempotencyKey, runs.TriggerAPI)
}

// RunNow is Trigger for a person on the deployment's page: the run is
// recorded as started by hand.
func (s *Service) RunNow(ctx context.Context, actor access.Actor, slug, env string, values map[string]any, idempotencyKey string) (runs.Run, bool, error) {
	return s.start(ctx, actor, slug, env, values, idempotencyKey, runs.TriggerManual)
}

// Pinned returns the deployment of slug to env with its pinned version, for
// the form that starts a run on it.
func (s *Service) Pinned(ctx context.Context, actor access.Actor, slug, env string) (Deployment, templates.Version, error) {
	if err := actor.Can(access.RunsCreate); err != nil {
		return Deployment{}, templates.Version{}, err
	}
	d, err := byEnv(ctx, s.DB, actor.TeamID, slug, env)
	if err != nil {
		return Deployment{}, templates.Version{}, err
	}
	v, err := pinned(ctx, s.DB, d)
	return d, v, err
}

// start starts a run of the deployment on its pinned version, recorded as
// started by trigger.
func (s *Service) start(ctx context.Context, actor access.Actor, slug, env string, values map[string]any, idempotencyKey, trigger string) (runs.Run, bool, error) {
	if err := actor.Can(access.RunsCreate); err != nil {
		return runs.Run{}, false, err
	}
	d, err := byEnv(ctx, s.DB, actor.TeamID, slug, env)
	if err != nil {
		return runs.Run{}, false, err
	}
	if d.Paused {
		return runs.Run{}, false, pausedError(d)
	}
	v, err := pinned(ctx, s.DB, d)
	if err != nil {
		return runs.Run{}, false, err
	}
	in, err := runInput(d, v, values, trigger)
	if err != nil {
		return runs.Run{}, false, err
	}
	in.IdempotencyKey = idempotencyKey
	in.RequestHash = triggerRequestHash(d, values)
	in.Within = func(ctx context.Context, tx *sqlx.Tx) error {
		return s.checkActive(ctx, tx, d)
	}
	return s.Runs.Create(ctx, actor, in)
}

// triggerRequestHash is the request hash of starting deployment d with
// values as sent: the same request replays its run under its
// Idempotency-Key, even once another version is deployed, and other values
// are another request.
func triggerRequestHash(d Deployment, values map[string]any) string {
	if values == nil {
		values = map[string]any{}
	}
	return runs.RequestHash(map[string]any{"deployment": d.Template + "/" + d.Environment, "inputs": values})
}

// checkActive refuses, in the transaction that creates a run, a deployment
// paused since it was read: on PostgreSQL the row stays shared-locked, so
// a Pause waits for the run, or the run sees the pause.
func (s *Service) checkActive(ctx context.Context, tx *sqlx.Tx, d Deployment) error {
	query := `SELECT paused FROM deployments WHERE id = ?`
	if s.DB.Dialect == db.Postgres {
		query += ` FOR SHARE`
	}
	var paused bool
	if err := db.Get(ctx, tx, &paused, query, d.ID); err != nil {
		return fmt.Errorf("deployments: check %d is active: %w", d.ID, err)
	}
	if paused {
		return pausedError(d)
	}
	return nil
}

// Receive handles a delivery to the webhook URL /hooks/{token}: it checks,
// in order, that the token is known (db.ErrNotFound), the body is at most
// MaxWebhookBody (ErrBodyTooLarge), the signature is right
// (ErrBadSignature) and fresh (ErrStale), the body is a JSON object
// (ErrMalformedBody), the deployment is not paused and the mapped inputs
// are valid; then it starts a run, refusing a delivery already seen or a
// deployment paused meanwhile (conflicts, checked in the run's
// transaction). Nothing is written for a refused delivery.
func (s *Service) Receive(ctx context.Context, token, timestamp, signature string, body io.Reader) (runs.Run, error) {
	d, err := byToken(ctx, s.DB, token)
	if err != nil {
		return runs.Run{}, err
	}
	raw, err := io.ReadAll(io.LimitReader(body, MaxWebhookBody+1))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge) || len(raw) > MaxWebhookBody:
		return runs.Run{}, ErrBodyTooLarge
	case err != nil:
		return runs.Run{}, fmt.Errorf("deployments: read webhook body: %w", err)
	}
	secret, err := s.Box.Open(d.SealedSecret, sealContext(d.WebhookToken))
	if err != nil {
		return runs.Run{}, fmt.Errorf("deployments: open webhook secret of %d: %w", d.ID, err)
	}
	now := s.now()
	if err := VerifySignature(secret, timestamp, signature, raw, now); err != nil {
		return runs.Run{}, err
	}
	payload, err := decodeObject(raw)
	if err != nil {
		return runs.Run{}, err
	}
	if d.Paused {
		return runs.Run{}, pausedError(d)
	}
	v, err := pinned(ctx, s.DB, d)
	if err != nil {
		return runs.Run{}, err
	}
	spec, err := v.Spec(d.Template)
	if err != nil {
		return runs.Run{}, fmt.Errorf("deployments: decode version %d of %q: %w", d.Version, d.Template, err)
	}
	values := MapInputs(payload, d.InputMap(), spec.Inputs)
	in, err := runInput(d, v, values, runs.TriggerWebhook)
	if err != nil {
		return runs.Run{}, err
	}
	// One delivery, one key: the signature's hex in lower case, however it
	// was sent, so that a replay in upper case is still a replay.
	sig := strings.ToLower(strings.TrimSpace(signature))
	in.Within = func(ctx context.Context, tx *sqlx.Tx) error {
		err := recordDelivery(ctx, tx, d.ID, sig, now)
		if db.IsUniqueViolation(err) {
			return &runs.ConflictError{Message: "This delivery was already received (same signature); sign each delivery with a new timestamp."}
		}
		if err != nil {
			return fmt.Errorf("deployments: record webhook delivery: %w", err)
		}
		return s.checkActive(ctx, tx, d)
	}
	run, _, err := s.Runs.Create(ctx, systemActor(d.TeamID), in)
	var overPlan *billing.LimitError
	if errors.As(err, &overPlan) {
		return runs.Run{}, s.refused(ctx, d, "deployment.webhook_refused", "webhook delivery refused: "+overPlan.Error(), err)
	}
	if err != nil {
		return runs.Run{}, err
	}
	if _, err := db.Exec(ctx, s.DB, `UPDATE webhook_deliveries SET run_id = ? WHERE deployment_id = ? AND signature = ?`, run.ID, d.ID, sig); err != nil {
		s.log().Warn("deployments: link webhook delivery to its run", "run_id", run.ID, "error", err)
	}
	return run, nil
}

// refused records, in the audit log where the deployment's page shows it,
// that a run of d could not start, and returns cause.
func (s *Service) refused(ctx context.Context, d Deployment, action, summary string, cause error) error {
	e := audit.For(access.Actor{TeamID: d.TeamID}, action, target(d.Template, d.Environment), summary)
	e.Actor = "webhook"
	if err := audit.Record(ctx, s.DB, e); err != nil {
		return errors.Join(cause, err)
	}
	return cause
}

// RefusalActions are the audited refusals that a deployment's page lists.
var RefusalActions = []string{"deployment.schedule_failed", "deployment.webhook_refused"}

// Refusals returns the latest runs of the deployment of slug to env that
// could not start (a schedule's tick, a webhook delivery), newest first.
func (s *Service) Refusals(ctx context.Context, actor access.Actor, slug, env string) ([]audit.Entry, error) {
	if err := actor.Can(access.TemplatesRead); err != nil {
		return nil, err
	}
	return audit.RecentOf(ctx, s.DB.Reader(), actor.TeamID, target(slug, env), RefusalActions, 5)
}

// decodeObject reads a webhook body: one JSON object and nothing after it
// (ErrMalformedBody), its numbers kept as written (json.Number), so that an
// id such as 9007199254740993 mapped to a text input stays exact.
func decodeObject(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var payload map[string]any
	if err := dec.Decode(&payload); err != nil || payload == nil {
		return nil, ErrMalformedBody
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, ErrMalformedBody
	}
	return payload, nil
}

// MapInputs picks the values of inputs out of a webhook body: by the dotted
// path inputMap gives an input, else by the top-level key of its name.
// Missing values are left out, for the inputs' checks to report.
func MapInputs(payload map[string]any, inputMap map[string]string, inputs []templates.Input) map[string]any {
	values := map[string]any{}
	for _, in := range inputs {
		path, ok := inputMap[in.Name]
		if !ok {
			path = in.Name
		}
		if v, ok := lookup(payload, path, ok); ok {
			values[in.Name] = v
		}
	}
	return values
}

// lookup finds the value at path in payload: a dotted path when dotted is
// true, else a single top-level key.
func lookup(payload map[string]any, path string, dotted bool) (any, bool) {
	if !dotted {
		v, ok := payload[path]
		return v, ok
	}
	var cur any = payload
	for _, key := range strings.Split(path, ".") {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[key]; !ok {
			return nil, false
		}
	}
	return cur, true
}
