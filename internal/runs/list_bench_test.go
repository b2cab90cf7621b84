package runs_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/teams"
)

// seedRuns writes n finished runs for a team in bulk, spread over a month,
// with a status and template mix, as a busy team would have.
func seedRuns(b *testing.B, d *db.DB, teamID int64, n int) {
	b.Helper()
	ctx := context.Background()
	start := time.Now().UTC().Add(-30 * 24 * time.Hour)
	const batch = 500
	for done := 0; done < n; done += batch {
		q := `INSERT INTO runs (team_id, status, goal, template, plan, inputs, steps_total, steps_done, created_at, started_at, finished_at, updated_at) VALUES `
		var args []any
		for i := done; i < min(done+batch, n); i++ {
			if i > done {
				q += ", "
			}
			q += "(?, ?, ?, ?, '{}', '{}', 3, 3, ?, ?, ?, ?)"
			at := start.Add(time.Duration(i) * (30 * 24 * time.Hour / time.Duration(n)))
			status := []string{"succeeded", "succeeded", "succeeded", "failed", "cancelled"}[i%5]
			template := []string{"", "summary", "review-chain", "fan-out"}[i%4]
			args = append(args, teamID, status, fmt.Sprintf("run %d", i), template, at, at, at.Add(time.Second), at)
		}
		if _, err := db.Exec(ctx, d, q, args...); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkListRuns measures the runs list of a team with 100,000 runs:
// the first page, a page deep in the keyset, and filtered pages.
func BenchmarkListRuns(b *testing.B) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		b.Run(dialect, func(b *testing.B) {
			var d *db.DB
			if dialect == "sqlite" {
				d = dbtest.SQLite(b)
			} else {
				d = dbtest.Postgres(b)
			}
			ctx := context.Background()
			team, err := teams.Create(ctx, d, "Busy", "busy", false)
			if err != nil {
				b.Fatal(err)
			}
			const n = 100_000
			seedRuns(b, d, team.ID, n)
			if d.Dialect == db.Postgres {
				if _, err := d.Exec(`ANALYZE runs`); err != nil {
					b.Fatal(err)
				}
			}
			svc := &runs.Service{DB: d}
			actor := access.Actor{TeamID: team.ID, Role: teams.RoleViewer}
			var deep int64
			if err := db.Get(ctx, d, &deep, `SELECT MIN(id) + 1000 FROM runs`); err != nil {
				b.Fatal(err)
			}
			for _, c := range []struct {
				name string
				f    runs.ListFilter
			}{
				{"first page", runs.ListFilter{}},
				{"deep page", runs.ListFilter{Before: deep}},
				{"status", runs.ListFilter{Status: "failed"}},
				{"template", runs.ListFilter{Template: "fan-out", Before: deep + 50_000}},
				{"date range", runs.ListFilter{From: time.Now().Add(-10 * 24 * time.Hour), To: time.Now().Add(-9 * 24 * time.Hour)}},
			} {
				b.Run(c.name, func(b *testing.B) {
					for b.Loop() {
						page, err := svc.List(ctx, actor, c.f)
						if err != nil {
							b.Fatal(err)
						}
						if len(page.Runs) == 0 {
							b.Fatal("empty page")
						}
					}
				})
			}
		})
	}
}
