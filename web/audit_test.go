package web_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/teams"
)

// auditSetup is a signed-in user whose team has a few audit entries, and
// another team with entries of its own.
type auditSetup struct {
	app    *app
	c      *client
	team   teams.Membership
	other  int64
	jan    time.Time
	march  time.Time
	extras int // bulk entries written by writeBulk
}

func setupAudit(t *testing.T) *auditSetup {
	t.Helper()
	a := newApp(t)
	c := a.client()
	c.signUp("auditor@example.com", password)
	ctx := context.Background()
	user, err := auth.UserByEmail(ctx, a.DB, "auditor@example.com")
	require.NoError(t, err)
	ms, err := teams.ForUser(ctx, a.DB, user.ID)
	require.NoError(t, err)
	require.NotEmpty(t, ms)
	other, err := teams.Create(ctx, a.DB, "Other", "other-team", false)
	require.NoError(t, err)

	s := &auditSetup{app: a, c: c, team: ms[0], other: other.ID,
		jan: time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC), march: time.Date(2026, 3, 10, 9, 30, 0, 0, time.UTC)}
	mine := &s.team.ID
	for _, e := range []audit.Entry{
		{TeamID: mine, Actor: "auditor@example.com", Action: "test.run.created", Target: "run #1", Summary: "started", IP: "10.0.0.1", CreatedAt: s.jan},
		{TeamID: mine, Actor: "bob@example.com", Action: "test.run.cancelled", Target: "run #1", Summary: "cancelled", CreatedAt: s.jan},
		{TeamID: mine, Actor: "ci key", Action: "test.key.set", Target: "anthropic", Summary: "saved", CreatedAt: s.march},
		{TeamID: mine, Actor: "@evil", Action: "test.inject", Target: `=HYPERLINK("http://x","y")`, Summary: "-2+3", IP: "+1", CreatedAt: s.march},
		{TeamID: &other.ID, Actor: "stranger@example.com", Action: "test.run.created", Target: "secret run", CreatedAt: s.march},
	} {
		require.NoError(t, audit.Record(ctx, a.DB, e))
	}
	return s
}

// writeBulk adds n entries to the team in one transaction.
func (s *auditSetup) writeBulk(t *testing.T, n int) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, db.WithTx(ctx, s.app.DB, func(tx *sqlx.Tx) error {
		for i := range n {
			if err := audit.Record(ctx, tx, audit.Entry{TeamID: &s.team.ID, Actor: "bulk@example.com", Action: "test.bulk",
				Target: fmt.Sprintf("item %d", i), CreatedAt: s.jan}); err != nil {
				return err
			}
		}
		return nil
	}))
	s.extras += n
}

// teamEntries counts the team's entries in the database, whoever wrote them.
func (s *auditSetup) teamEntries(t *testing.T) int {
	t.Helper()
	var n int
	require.NoError(t, db.Get(context.Background(), s.app.DB, &n, `SELECT COUNT(*) FROM audit_log WHERE team_id = ?`, s.team.ID))
	return n
}

// targets lists the targets of the audit table's rows.
func targets(t *testing.T, res response) []string {
	t.Helper()
	var out []string
	res.Doc(t).Find(`[data-testid=audit-table] [data-testid=audit-target]`).Each(func(_ int, cell *goquery.Selection) {
		out = append(out, strings.TrimSpace(cell.Text()))
	})
	return out
}

func TestAuditPageShowsOnlyTheTeam(t *testing.T) {
	t.Parallel()
	s := setupAudit(t)
	res := s.c.get("/team/audit")
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	doc := res.Doc(t)
	require.Equal(t, s.teamEntries(t), doc.Find(`[data-testid=audit-table] tbody tr`).Length())
	require.NotContains(t, res.Body, "secret run")
	require.NotContains(t, res.Body, "stranger@example.com")
	require.Contains(t, targets(t, res), "anthropic")
	require.Equal(t, 1, doc.Find(`select[name=action] option[value="test.key.set"]`).Length(), "the action select lists the team's actions")
	require.Equal(t, "/team/audit.csv", doc.Find(`[data-testid=export-csv]`).AttrOr("href", ""))
}

func TestAuditPageFilters(t *testing.T) {
	t.Parallel()
	s := setupAudit(t)
	for _, tc := range []struct {
		name  string
		query url.Values
		want  []string
	}{
		{"actor substring, any case", url.Values{"actor": {"BOB@"}}, []string{"run #1"}},
		{"action exact", url.Values{"action": {"test.key.set"}}, []string{"anthropic"}},
		{"action prefix", url.Values{"action": {"test.run."}}, []string{"run #1", "run #1"}},
		{"target substring", url.Values{"target": {"ANTHRO"}}, []string{"anthropic"}},
		{"dates", url.Values{"action": {"test."}, "from": {"2026-03-01"}, "to": {"2026-03-10"}}, []string{`=HYPERLINK("http://x","y")`, "anthropic"}},
		{"until a day includes it", url.Values{"action": {"test."}, "to": {"2026-01-15"}}, []string{"run #1", "run #1"}},
		{"another team's target", url.Values{"target": {"secret"}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := s.c.get("/team/audit?" + tc.query.Encode())
			require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
			require.Equal(t, tc.want, targets(t, res))
			if tc.want == nil {
				require.Equal(t, 1, res.Doc(t).Find(`[data-testid=no-matches]`).Length())
			}
		})
	}
}

func TestAuditPageBadDatesAre422(t *testing.T) {
	t.Parallel()
	s := setupAudit(t)
	res := s.c.get("/team/audit?from=yesterday&to=2026-13-40&actor=bob")
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	doc := res.Doc(t)
	require.NotEmpty(t, strings.TrimSpace(doc.Find(`[data-testid=error-from]`).Text()))
	require.NotEmpty(t, strings.TrimSpace(doc.Find(`[data-testid=error-to]`).Text()))
	require.Equal(t, "bob", doc.Find(`input[name=actor]`).AttrOr("value", ""), "what was typed comes back")
	require.Zero(t, doc.Find(`[data-testid=audit-table]`).Length())

	require.Equal(t, http.StatusUnprocessableEntity, s.c.get("/team/audit.csv?from=yesterday").StatusCode)
}

func TestAuditPagePagesKeepFilters(t *testing.T) {
	t.Parallel()
	s := setupAudit(t)
	s.writeBulk(t, 60)

	seen := map[string]bool{}
	next, pages := "/team/audit?action=test.bulk", 0
	for next != "" {
		res := s.c.get(next)
		require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
		for _, target := range targets(t, res) {
			require.False(t, seen[target], "%s twice", target)
			seen[target] = true
		}
		pages++
		next = res.Doc(t).Find(`[data-testid=next-page]`).AttrOr("href", "")
		if next != "" {
			require.Contains(t, next, "action=test.bulk", "the next page keeps the filters")
			require.Contains(t, next, "before=")
		}
	}
	require.Equal(t, 2, pages)
	require.Len(t, seen, 60)
}

func TestAuditCSVExportsEveryMatchingRow(t *testing.T) {
	t.Parallel()
	s := setupAudit(t)
	s.writeBulk(t, 1100) // more than two pages of 500

	res := s.c.get("/team/audit.csv")
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	require.Equal(t, "text/csv; charset=utf-8", res.Header.Get("Content-Type"))
	require.Regexp(t, regexp.MustCompile(`^attachment; filename="audit-`+regexp.QuoteMeta(s.team.Slug)+`-\d{4}-\d{2}-\d{2}\.csv"$`),
		res.Header.Get("Content-Disposition"))
	require.Contains(t, res.Header.Get("Content-Disposition"), time.Now().UTC().Format("2006-01-02"))

	rows, err := csv.NewReader(strings.NewReader(res.Body)).ReadAll()
	require.NoError(t, err)
	require.Equal(t, []string{"time", "actor", "action", "target", "summary", "ip", "user_agent", "request_id"}, rows[0])
	require.Len(t, rows, 1+s.teamEntries(t), "every row of the team, not one page")

	ids := map[string]bool{}
	for _, r := range rows[1:] {
		require.NotEqual(t, "stranger@example.com", r[1], "another team's rows are not exported")
		if r[2] == "test.bulk" {
			ids[r[3]] = true
		}
		if r[2] == "test.inject" {
			require.Equal(t, "'@evil", r[1])
			require.Equal(t, `'=HYPERLINK("http://x","y")`, r[3])
			require.Equal(t, "'-2+3", r[4])
			require.Equal(t, "'+1", r[5])
		}
	}
	require.Len(t, ids, 1100, "each bulk row once")

	filtered, err := csv.NewReader(strings.NewReader(s.c.get("/team/audit.csv?action=test.run.&from=2026-01-01").Body)).ReadAll()
	require.NoError(t, err)
	require.Len(t, filtered, 3, "the header and the two matching rows")
	require.Equal(t, "2026-01-15T12:00:00Z", filtered[1][0])
}

func TestAuditNeedsASession(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.client()
	for _, path := range []string{"/team/audit", "/team/audit.csv"} {
		res := c.get(path)
		require.Equal(t, http.StatusSeeOther, res.StatusCode, path)
		require.Equal(t, "/login?next="+url.QueryEscape(path), res.Header.Get("Location"))
	}
}
