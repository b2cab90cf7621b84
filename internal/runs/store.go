package runs

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/db"
)

// runColumns are the columns of a run that runSelect and runStateSelect share.
const runColumns = `r.id, r.team_id, r.status, r.goal, r.template, r.plan, r.inputs,
	r.created_by_user_id, r.created_by_key_id, r.rerun_of, r.idempotency_key, r.steps_total, r.steps_done, r.steps_failed, r.steps_skipped,
	r.input_tokens, r.output_tokens, r.cost_micros, r.error, r.created_at, r.started_at, r.finished_at, r.updated_at,
	r.template_version, r.deployment_id, r.triggered_by, r.scheduled_for, r.replay`

// runSelect reads runs with the names of who started them and their
// deployment's environment, for pages and the API.
const runSelect = `SELECT ` + runColumns + `,
	COALESCE(u.email, k.name, r.triggered_by, '') AS created_by, COALESCE(d.environment, '') AS deployment_environment
	FROM runs r
	LEFT JOIN users u ON u.id = r.created_by_user_id
	LEFT JOIN api_keys k ON k.id = r.created_by_key_id
	LEFT JOIN deployments d ON d.id = r.deployment_id`

// runListSelect reads runs as the runs list shows them: their status,
// progress, totals and times, who started them and from where, without the
// plan, the inputs and the ids behind the names, which only a run's own page
// and API show. scanRunList reads its columns in this order.
const runListSelect = `SELECT r.id, r.status, r.goal, r.template, r.template_version, r.rerun_of,
	r.steps_total, r.steps_done, r.steps_failed, r.steps_skipped, r.input_tokens, r.output_tokens, r.cost_micros, r.error,
	r.created_at, r.started_at, r.finished_at, r.updated_at, r.triggered_by, r.replay,
	COALESCE(u.email, k.name, r.triggered_by, '') AS created_by, COALESCE(d.environment, '') AS deployment_environment
	FROM runs r
	LEFT JOIN users u ON u.id = r.created_by_user_id
	LEFT JOIN api_keys k ON k.id = r.created_by_key_id
	LEFT JOIN deployments d ON d.id = r.deployment_id`

// runStateSelect reads runs alone, for the engine's state transitions: no
// joins to plan on each of the many small transactions.
const runStateSelect = `SELECT ` + runColumns + `, '' AS created_by, '' AS deployment_environment FROM runs r`

const stepColumns = `id, run_id, position, name, kind, status, needs, provider, model, prompt, rendered_prompt,
	options, output, error, attempt, max_attempts, timeout_ms, patience_ms, waiting_circuit, waiting_since, waiting_until, waiting_on, input_tokens, output_tokens, cost_micros, fallback, served_by, own_key, enqueued, job_id,
	lease_token, lease_expires_at, decided_by, decision_comment, started_at, finished_at, updated_at`

// getRun returns the run id of teamID; another team's run is db.ErrNotFound.
func getRun(ctx context.Context, q db.Queryer, teamID, id int64) (Run, error) {
	var r Run
	if err := db.Get(ctx, q, &r, runSelect+` WHERE r.id = ? AND r.team_id = ?`, id, teamID); err != nil {
		return Run{}, fmt.Errorf("runs: get %d: %w", id, err)
	}
	return r, nil
}

func listSteps(ctx context.Context, q db.Queryer, runID int64) ([]Step, error) {
	var steps []Step
	if err := db.Select(ctx, q, &steps, `SELECT `+stepColumns+` FROM steps WHERE run_id = ? ORDER BY position`, runID); err != nil {
		return nil, fmt.Errorf("runs: steps of %d: %w", runID, err)
	}
	return steps, nil
}

func listEvents(ctx context.Context, q db.Queryer, runID, afterID int64) ([]Event, error) {
	var events []Event
	err := db.Select(ctx, q, &events, `SELECT e.id, e.run_id, e.step, e.kind, e.message, e.actor_user_id, e.actor_key_id,
		COALESCE(u.email, k.name, '') AS actor, e.created_at
		FROM run_events e
		LEFT JOIN users u ON u.id = e.actor_user_id
		LEFT JOIN api_keys k ON k.id = e.actor_key_id
		WHERE e.run_id = ? AND e.id > ?
		ORDER BY e.id`, runID, afterID)
	if err != nil {
		return nil, fmt.Errorf("runs: events of %d: %w", runID, err)
	}
	return events, nil
}

// ListFilter narrows and pages the runs list.
type ListFilter struct {
	Status   string
	Template string
	From, To time.Time // created in [From, To); zero means open
	Before   int64     // keyset cursor: runs with a smaller id (and BeforeCost)
	// SortByCost lists the most expensive runs first; the cursor is then
	// (BeforeCost, Before).
	SortByCost bool
	BeforeCost int64
	Limit      int
}

// pageSize is how many runs a page of the filter holds: Limit, from 1 to
// 200, else 50.
func (f ListFilter) pageSize() int {
	if f.Limit <= 0 || f.Limit > 200 {
		return 50
	}
	return f.Limit
}

// Page is one page of runs, with the cursor of the next page (0 at the end).
type Page struct {
	Runs           []Run
	NextBefore     int64
	NextBeforeCost int64 // with SortByCost
}

// listRuns reads one page of teamID's runs in one query, as the list shows
// them (see runListSelect).
func listRuns(ctx context.Context, q db.Queryer, teamID int64, f ListFilter) (Page, error) {
	where := []string{"r.team_id = ?", "NOT r.replay"} // a comparison's replay is no run of the list
	args := []any{teamID}
	if f.Status != "" {
		where = append(where, "r.status = ?")
		args = append(args, f.Status)
	}
	if f.Template != "" {
		where = append(where, "r.template = ?")
		args = append(args, f.Template)
	}
	if !f.From.IsZero() {
		where = append(where, "r.created_at >= ?")
		args = append(args, f.From.UTC())
	}
	if !f.To.IsZero() {
		where = append(where, "r.created_at < ?")
		args = append(args, f.To.UTC())
	}
	order := "r.id DESC"
	switch {
	case f.SortByCost:
		order = "r.cost_micros DESC, r.id DESC"
		if f.Before > 0 {
			where = append(where, "(r.cost_micros < ? OR (r.cost_micros = ? AND r.id < ?))")
			args = append(args, f.BeforeCost, f.BeforeCost, f.Before)
		}
	case f.Before > 0:
		where = append(where, "r.id < ?")
		args = append(args, f.Before)
	}
	limit := f.pageSize()
	args = append(args, limit+1)
	runs, err := scanRunList(ctx, q, runListSelect+` WHERE `+strings.Join(where, " AND ")+` ORDER BY `+order+` LIMIT ?`, limit+1, args...)
	if err != nil {
		return Page{}, fmt.Errorf("runs: list: %w", err)
	}
	for i := range runs {
		runs[i].TeamID = teamID
	}
	p := Page{Runs: runs}
	if len(runs) > limit {
		p.Runs = runs[:limit]
		p.NextBefore = p.Runs[limit-1].ID
		p.NextBeforeCost = p.Runs[limit-1].CostMicros
	}
	return p, nil
}

// scanRunList reads the rows of a runListSelect query into a slice made
// once for n rows, column by column: the list is read more than anything
// else, and scanning by reflection allocated a run per row.
func scanRunList(ctx context.Context, q db.Queryer, query string, n int, args ...any) ([]Run, error) {
	rows, err := q.QueryContext(ctx, q.Rebind(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	runs := make([]Run, 0, n)
	for rows.Next() {
		runs = append(runs, Run{})
		r := &runs[len(runs)-1]
		if err := rows.Scan(&r.ID, &r.Status, &r.Goal, &r.Template, &r.TemplateVersion, &r.RerunOf,
			&r.StepsTotal, &r.StepsDone, &r.StepsFailed, &r.StepsSkipped, &r.InputTokens, &r.OutputTokens, &r.CostMicros, &r.Error,
			&r.CreatedAt, &r.StartedAt, &r.FinishedAt, &r.UpdatedAt, &r.TriggeredBy, &r.Replay,
			&r.CreatedBy, &r.DeploymentEnv); err != nil {
			return nil, err
		}
	}
	return runs, rows.Err()
}

// templatesUsed lists the templates the team's runs came from, for filters.
func templatesUsed(ctx context.Context, q db.Queryer, teamID int64) ([]string, error) {
	var names []string
	err := db.Select(ctx, q, &names, `SELECT DISTINCT template FROM runs WHERE team_id = ? AND template <> '' AND NOT replay ORDER BY template`, teamID)
	if err != nil {
		return nil, fmt.Errorf("runs: templates used: %w", err)
	}
	return names, nil
}

// Totals sums a team's runs over a period.
type Totals struct {
	Runs         int   `db:"runs"`
	Succeeded    int   `db:"succeeded"`
	Failed       int   `db:"failed"`
	InputTokens  int64 `db:"input_tokens"`
	OutputTokens int64 `db:"output_tokens"`
	CostMicros   int64 `db:"cost_micros"`
}

// Totals sums the team's runs created in [from, to).
func (s *Service) Totals(ctx context.Context, actor access.Actor, from, to time.Time) (Totals, error) {
	if err := actor.Can(access.RunsRead); err != nil {
		return Totals{}, err
	}
	var t Totals
	err := db.Get(ctx, s.DB.Reader(), &t, `SELECT COUNT(*) AS runs,
		COALESCE(SUM(CASE WHEN status = 'succeeded' THEN 1 ELSE 0 END), 0) AS succeeded,
		COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS failed,
		COALESCE(SUM(input_tokens), 0) AS input_tokens, COALESCE(SUM(output_tokens), 0) AS output_tokens,
		COALESCE(SUM(cost_micros), 0) AS cost_micros
		FROM runs WHERE team_id = ? AND created_at >= ? AND created_at < ? AND NOT replay`, actor.TeamID, from.UTC(), to.UTC())
	if err != nil {
		return Totals{}, fmt.Errorf("runs: totals: %w", err)
	}
	return t, nil
}
