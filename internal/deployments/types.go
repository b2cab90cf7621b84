// Package deployments pins template versions to environments and starts
// runs of them three ways: through the API, from a signed inbound webhook,
// and on a cron schedule that runs once per tick across processes.
package deployments

import (
	"database/sql"
	"encoding/json"
	"errors"
	"time"
)

// The environments a template deploys to.
const (
	Production = "production"
	Staging    = "staging"
)

// Environments lists every environment, in the order pages show them.
var Environments = []string{Production, Staging}

// Errors of an inbound webhook delivery, each with its own HTTP status.
var (
	// ErrBodyTooLarge is a webhook body over MaxWebhookBody.
	ErrBodyTooLarge = errors.New("deployments: webhook body too large")
	// ErrBadSignature is a missing, malformed or wrong signature or timestamp.
	ErrBadSignature = errors.New("deployments: webhook signature does not match")
	// ErrStale is a correctly signed delivery whose timestamp is too old or
	// too far ahead.
	ErrStale = errors.New("deployments: webhook timestamp is stale")
	// ErrMalformedBody is a body that is not one JSON object.
	ErrMalformedBody = errors.New("deployments: webhook body is not a JSON object")
)

// Deployment is a template version pinned to an environment, with its
// triggers.
type Deployment struct {
	ID          int64  `db:"id"`
	TeamID      int64  `db:"team_id"`
	TemplateID  int64  `db:"template_id"`
	Template    string `db:"template"` // the template's slug
	Environment string `db:"environment"`
	Version     int    `db:"version"`
	Paused      bool   `db:"paused"`
	// WebhookToken names the deployment in its webhook URL, /hooks/{token}.
	WebhookToken string `db:"webhook_token"`
	// SealedSecret is the webhook secret sealed with the instance's key;
	// it is opened only to check a signature.
	SealedSecret string `db:"webhook_secret"`
	InputMapJSON string `db:"input_map"`
	// Schedule is a five-field cron expression in the team's time zone, or
	// empty; NextRunAt is its next tick in UTC, nil when none is due.
	Schedule         string        `db:"schedule"`
	NextRunAt        *time.Time    `db:"next_run_at"`
	DeployedByUserID sql.NullInt64 `db:"deployed_by_user_id"`
	CreatedAt        time.Time     `db:"created_at"`
	UpdatedAt        time.Time     `db:"updated_at"`
}

// InputMap returns the deployment's webhook input map: input name → dotted
// path into the webhook body. Empty means top-level keys map to inputs of
// the same name.
func (d Deployment) InputMap() map[string]string {
	m := map[string]string{}
	_ = json.Unmarshal([]byte(d.InputMapJSON), &m) // written only by SetInputMap, which checks it
	return m
}

// Deployed is the outcome of Deploy. Secret is the webhook secret in plain
// text, set only when the deployment was just created: it is shown once.
type Deployed struct {
	Deployment Deployment
	Created    bool
	Secret     string
}

// RecentRun is a run of a deployment as its overview lists it.
type RecentRun struct {
	ID           int64      `db:"id"`
	Status       string     `db:"status"`
	TriggeredBy  string     `db:"triggered_by"`
	CostMicros   int64      `db:"cost_micros"`
	ScheduledFor *time.Time `db:"scheduled_for"`
	CreatedAt    time.Time  `db:"created_at"`
	FinishedAt   *time.Time `db:"finished_at"`
}

// Stats sums up a deployment's runs of the last StatsWindow.
type Stats struct {
	Runs          int   `db:"runs"`
	Finished      int   `db:"finished"`
	Succeeded     int   `db:"succeeded"`
	CostMicros    int64 `db:"cost_micros"`
	AvgCostMicros int64 `db:"-"`
	// SuccessRate is Succeeded over Finished, from 0 to 1; nil when no run
	// has finished.
	SuccessRate *float64 `db:"-"`
}

// StatsWindow is how far back Stats looks.
const StatsWindow = 30 * 24 * time.Hour

// Summary is a deployment in the team's index of deployments: with its
// template's name and its last run (LastRunID 0 when it has none).
type Summary struct {
	Deployment
	TemplateName  string     `db:"template_name"`
	LastRunID     int64      `db:"last_run_id"`
	LastRunStatus string     `db:"last_run_status"`
	LastRunAt     *time.Time `db:"last_run_at"`
}

// Overview is a deployment with its recent runs and their stats.
type Overview struct {
	Deployment
	Recent []RecentRun
	Stats  Stats
}
