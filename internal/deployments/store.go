package deployments

import (
	"context"
	"fmt"
	"time"

	"github.com/nofxhq/nofx/internal/db"
)

const deploymentSelect = `SELECT ` + deploymentColumns + `
	FROM deployments d
	JOIN templates t ON t.id = d.template_id`

// deploymentColumns are a Deployment's columns, of d (deployments) joined
// with t (its template).
const deploymentColumns = `d.id, d.team_id, d.template_id, t.slug AS template, d.environment, d.version, d.paused,
	d.webhook_token, d.webhook_secret, d.input_map, d.schedule, d.next_run_at, d.deployed_by_user_id, d.created_at, d.updated_at`

// forTeam returns every deployment of a team with its template's name and
// its last run, by template name, production first.
func forTeam(ctx context.Context, q db.Queryer, teamID int64) ([]Summary, error) {
	var out []Summary
	err := db.Select(ctx, q, &out, `SELECT `+deploymentColumns+`, t.name AS template_name,
			COALESCE(r.id, 0) AS last_run_id, COALESCE(r.status, '') AS last_run_status, r.created_at AS last_run_at
		FROM deployments d
		JOIN templates t ON t.id = d.template_id
		LEFT JOIN runs r ON r.id = (SELECT MAX(id) FROM runs WHERE deployment_id = d.id)
		WHERE d.team_id = ?
		ORDER BY LOWER(t.name), t.slug, CASE d.environment WHEN 'production' THEN 0 ELSE 1 END, d.environment`, teamID)
	if err != nil {
		return nil, fmt.Errorf("deployments: list for team %d: %w", teamID, err)
	}
	return out, nil
}

// byEnv returns the deployment of teamID's template slug to env.
func byEnv(ctx context.Context, q db.Queryer, teamID int64, slug, env string) (Deployment, error) {
	var d Deployment
	err := db.Get(ctx, q, &d, deploymentSelect+` WHERE d.team_id = ? AND t.slug = ? AND d.environment = ?`, teamID, slug, env)
	if err != nil {
		return Deployment{}, fmt.Errorf("deployments: get %s of %q: %w", env, slug, err)
	}
	return d, nil
}

// byToken returns the deployment whose webhook URL carries token.
func byToken(ctx context.Context, q db.Queryer, token string) (Deployment, error) {
	var d Deployment
	if err := db.Get(ctx, q, &d, deploymentSelect+` WHERE d.webhook_token = ?`, token); err != nil {
		return Deployment{}, fmt.Errorf("deployments: get by webhook token: %w", err)
	}
	return d, nil
}

// forTemplate lists a template's deployments, production first.
func forTemplate(ctx context.Context, q db.Queryer, templateID int64) ([]Deployment, error) {
	var out []Deployment
	err := db.Select(ctx, q, &out, deploymentSelect+` WHERE d.template_id = ?
		ORDER BY CASE d.environment WHEN 'production' THEN 0 ELSE 1 END`, templateID)
	if err != nil {
		return nil, fmt.Errorf("deployments: list for template %d: %w", templateID, err)
	}
	return out, nil
}

// insert writes a new deployment and returns its id.
func insert(ctx context.Context, q db.Queryer, d Deployment) (int64, error) {
	var id int64
	err := db.Get(ctx, q, &id, `INSERT INTO deployments (team_id, template_id, environment, version, paused, webhook_token,
		webhook_secret, input_map, schedule, deployed_by_user_id, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		d.TeamID, d.TemplateID, d.Environment, d.Version, false, d.WebhookToken,
		d.SealedSecret, "{}", "", d.DeployedByUserID, d.CreatedAt, d.UpdatedAt)
	if err != nil {
		return 0, fmt.Errorf("deployments: create %s: %w", d.Environment, err)
	}
	return id, nil
}

// due is a deployment whose schedule has a tick at or before now, with its
// team's time zone.
type due struct {
	Deployment
	TimeZone string `db:"time_zone"`
}

// dueAt lists up to limit scheduled, active deployments with a tick at or
// before now, the most overdue first.
func dueAt(ctx context.Context, q db.Queryer, now time.Time, limit int) ([]due, error) {
	var out []due
	err := db.Select(ctx, q, &out, `SELECT d.id, d.team_id, d.template_id, t.slug AS template, d.environment, d.version,
		d.paused, d.webhook_token, d.webhook_secret, d.input_map, d.schedule, d.next_run_at, d.deployed_by_user_id,
		d.created_at, d.updated_at, tm.time_zone
		FROM deployments d
		JOIN templates t ON t.id = d.template_id
		JOIN teams tm ON tm.id = d.team_id
		WHERE d.next_run_at IS NOT NULL AND d.next_run_at <= ? AND d.schedule <> '' AND NOT d.paused
		ORDER BY d.next_run_at, d.id
		LIMIT ?`, now.UTC(), limit)
	if err != nil {
		return nil, fmt.Errorf("deployments: due schedules: %w", err)
	}
	return out, nil
}

// claimTick moves a deployment's next tick from tick to next (nil: no more
// ticks), only if no one else has moved it: false means another process
// took the tick.
func claimTick(ctx context.Context, q db.Queryer, id int64, tick time.Time, next *time.Time) (bool, error) {
	var to any
	if next != nil {
		to = next.UTC()
	}
	res, err := db.Exec(ctx, q, `UPDATE deployments SET next_run_at = ? WHERE id = ? AND next_run_at = ?`, to, id, tick.UTC())
	if err != nil {
		return false, fmt.Errorf("deployments: claim tick of %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("deployments: claim tick of %d: %w", id, err)
	}
	return n == 1, nil
}

// recentRuns returns a deployment's newest runs.
func recentRuns(ctx context.Context, q db.Queryer, deploymentID int64, limit int) ([]RecentRun, error) {
	var out []RecentRun
	err := db.Select(ctx, q, &out, `SELECT id, status, triggered_by, cost_micros, scheduled_for, created_at, finished_at
		FROM runs WHERE deployment_id = ? ORDER BY id DESC LIMIT ?`, deploymentID, limit)
	if err != nil {
		return nil, fmt.Errorf("deployments: recent runs of %d: %w", deploymentID, err)
	}
	return out, nil
}

// statsSince sums up a deployment's runs created since: how many, how many
// finished and succeeded, and their cost. The average cost is over every
// run of the window; the success rate over the finished ones.
func statsSince(ctx context.Context, q db.Queryer, deploymentID int64, since time.Time) (Stats, error) {
	var s Stats
	err := db.Get(ctx, q, &s, `SELECT COUNT(*) AS runs,
		COALESCE(SUM(CASE WHEN status IN ('succeeded', 'failed', 'cancelled') THEN 1 ELSE 0 END), 0) AS finished,
		COALESCE(SUM(CASE WHEN status = 'succeeded' THEN 1 ELSE 0 END), 0) AS succeeded,
		COALESCE(SUM(cost_micros), 0) AS cost_micros
		FROM runs WHERE deployment_id = ? AND created_at >= ?`, deploymentID, since.UTC())
	if err != nil {
		return Stats{}, fmt.Errorf("deployments: stats of %d: %w", deploymentID, err)
	}
	if s.Runs > 0 {
		s.AvgCostMicros = s.CostMicros / int64(s.Runs)
	}
	if s.Finished > 0 {
		rate := float64(s.Succeeded) / float64(s.Finished)
		s.SuccessRate = &rate
	}
	return s, nil
}

// recordDelivery remembers a webhook delivery by its signature; a second
// delivery with the same signature is a unique violation.
func recordDelivery(ctx context.Context, q db.Queryer, deploymentID int64, signature string, at time.Time) error {
	_, err := db.Exec(ctx, q, `INSERT INTO webhook_deliveries (deployment_id, signature, received_at) VALUES (?, ?, ?)`,
		deploymentID, signature, at.UTC())
	return err
}

// pruneDeliveries forgets deliveries received before cutoff: their
// timestamps are stale by then, so a replay is refused anyway.
func pruneDeliveries(ctx context.Context, q db.Queryer, cutoff time.Time) (int64, error) {
	res, err := db.Exec(ctx, q, `DELETE FROM webhook_deliveries WHERE received_at < ?`, cutoff.UTC())
	if err != nil {
		return 0, fmt.Errorf("deployments: prune webhook deliveries: %w", err)
	}
	return res.RowsAffected()
}
