// Package instance answers what the whole instance did lately, across
// teams, for site admins.
package instance

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/nofxhq/nofx/internal/db"
)

// ActivityDays is how far back the overview looks.
const ActivityDays = 30

// Day is one day's runs across the instance.
type Day struct {
	Date       time.Time
	Key        string `db:"day"`
	Runs       int64  `db:"runs"`
	Failed     int64  `db:"failed"`
	CostMicros int64  `db:"cost_micros"`
}

// TeamActivity is one team's last ActivityDays.
type TeamActivity struct {
	TeamID     int64  `db:"team_id"`
	Name       string `db:"name"`
	Slug       string `db:"slug"`
	Runs       int64  `db:"runs"`
	CostMicros int64  `db:"cost_micros"`
}

// TemplateDuration is one template's median run duration.
type TemplateDuration struct {
	TeamID   int64
	TeamName string
	Template string
	Runs     int
	Median   time.Duration
}

// Activity is the overview's figures.
type Activity struct {
	Days      []Day
	Busiest   []TeamActivity
	Slowest   []TemplateDuration
	Runs      int64
	Failed    int64
	CostTotal int64
}

// maxDurations bounds the finished runs read for the slowest templates.
const maxDurations = 50_000

// Read returns the instance's activity of the last ActivityDays up to now.
func Read(ctx context.Context, d *db.DB, now time.Time) (Activity, error) {
	q := d.Reader()
	today := now.UTC().Truncate(24 * time.Hour)
	from := today.AddDate(0, 0, -(ActivityDays - 1))
	day := `substr(created_at, 1, 10)`
	if d.Dialect == db.Postgres {
		day = `to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')`
	}
	var rows []Day
	err := db.Select(ctx, q, &rows, `SELECT `+day+` AS day, COUNT(*) AS runs,
		COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS failed, COALESCE(SUM(cost_micros), 0) AS cost_micros
		FROM runs WHERE created_at >= ? AND NOT replay GROUP BY 1`, from)
	if err != nil {
		return Activity{}, fmt.Errorf("instance: runs by day: %w", err)
	}
	byKey := map[string]Day{}
	for _, r := range rows {
		byKey[r.Key] = r
	}
	var a Activity
	for i := range ActivityDays {
		date := from.AddDate(0, 0, i)
		r := byKey[date.Format("2006-01-02")]
		r.Date = date
		a.Days = append(a.Days, r)
		a.Runs, a.Failed, a.CostTotal = a.Runs+r.Runs, a.Failed+r.Failed, a.CostTotal+r.CostMicros
	}
	err = db.Select(ctx, q, &a.Busiest, `SELECT r.team_id, t.name, t.slug, COUNT(*) AS runs, COALESCE(SUM(r.cost_micros), 0) AS cost_micros
		FROM runs r JOIN teams t ON t.id = r.team_id WHERE r.created_at >= ? AND NOT r.replay
		GROUP BY r.team_id, t.name, t.slug ORDER BY runs DESC, cost_micros DESC, r.team_id LIMIT 5`, from)
	if err != nil {
		return Activity{}, fmt.Errorf("instance: busiest teams: %w", err)
	}
	if a.Slowest, err = slowest(ctx, q, from); err != nil {
		return Activity{}, err
	}
	return a, nil
}

// slowest returns the five templates whose finished runs took longest, by
// median, since from.
func slowest(ctx context.Context, q db.Queryer, from time.Time) ([]TemplateDuration, error) {
	var runs []struct {
		TeamID     int64     `db:"team_id"`
		TeamName   string    `db:"name"`
		Template   string    `db:"template"`
		StartedAt  time.Time `db:"started_at"`
		FinishedAt time.Time `db:"finished_at"`
	}
	err := db.Select(ctx, q, &runs, `SELECT r.team_id, t.name, r.template, r.started_at, r.finished_at
		FROM runs r JOIN teams t ON t.id = r.team_id
		WHERE r.created_at >= ? AND NOT r.replay AND r.template <> '' AND r.started_at IS NOT NULL AND r.finished_at IS NOT NULL
		ORDER BY r.id DESC LIMIT ?`, from, maxDurations)
	if err != nil {
		return nil, fmt.Errorf("instance: run durations: %w", err)
	}
	type key struct {
		team     int64
		template string
	}
	durations := map[key][]time.Duration{}
	names := map[int64]string{}
	for _, r := range runs {
		k := key{r.TeamID, r.Template}
		durations[k] = append(durations[k], r.FinishedAt.Sub(r.StartedAt))
		names[r.TeamID] = r.TeamName
	}
	var out []TemplateDuration
	for k, ds := range durations {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		median := ds[len(ds)/2]
		if len(ds)%2 == 0 {
			median = (ds[len(ds)/2-1] + ds[len(ds)/2]) / 2
		}
		out = append(out, TemplateDuration{TeamID: k.team, TeamName: names[k.team], Template: k.template, Runs: len(ds), Median: median})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Median != out[j].Median {
			return out[i].Median > out[j].Median
		}
		return out[i].Template < out[j].Template
	})
	if len(out) > 5 {
		out = out[:5]
	}
	return out, nil
}
