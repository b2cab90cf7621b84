package pages

import (
	"encoding/csv"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/validation"
	auditview "github.com/nofxhq/nofx/views/audit"
	"github.com/nofxhq/nofx/web/httpx"
)

// AuditPage shows one page of the team's audit log, filtered; bad filters
// come back next to their fields (422).
func (s *Pages) AuditPage(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	d := auditview.Data{Team: *httpx.Who(c).Team, Filter: auditFilterTyped(c), Origin: audit.ShowsOrigin(a)}
	f, err := auditFilter(c)
	status := http.StatusOK
	var verrs validation.Errors
	switch {
	case errors.As(err, &verrs):
		d.Errors, status = verrs, http.StatusUnprocessableEntity
	case err != nil:
		return err
	default:
		var next int64
		if d.Entries, next, err = s.audit.List(ctx, a, f); err != nil {
			return err
		}
		if next > 0 {
			d.NextURL = d.Filter.URL("/team/audit", next)
		}
	}
	if d.Actions, err = s.audit.Actions(ctx, a); err != nil {
		return err
	}
	return s.Render(c, status, Page{Title: "Audit log", Nav: "team", Content: auditview.Page(d)})
}

// AuditCSV streams every entry of the team's audit log that matches the
// filters, as a CSV download, in pages so that memory stays flat. The
// columns are the same for every reader; the ip and user_agent cells are
// empty unless audit.ShowsOrigin allows the reader to see them.
func (s *Pages) AuditCSV(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	f, err := auditFilter(c)
	if err != nil {
		return err
	}
	f.Limit = audit.MaxLimit
	ctx := c.Request().Context()
	// Read the first page before sending headers, so that a refusal or a
	// database error still gets a proper error page.
	entries, next, err := s.audit.List(ctx, a, f)
	if err != nil {
		return err
	}

	name := "audit-" + httpx.Who(c).Team.Slug + "-" + time.Now().UTC().Format("2006-01-02") + ".csv"
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	h.Set(echo.HeaderContentDisposition, `attachment; filename="`+name+`"`)
	h.Set("Cache-Control", "no-store")
	c.Response().WriteHeader(http.StatusOK)

	w := csv.NewWriter(c.Response())
	if err := w.Write([]string{"time", "actor", "action", "target", "summary", "ip", "user_agent", "request_id"}); err != nil {
		return err
	}
	for {
		for _, e := range entries {
			row := []string{e.CreatedAt.UTC().Format(time.RFC3339), e.Actor, e.Action, e.Target, e.Summary, e.IP, e.UserAgent, e.RequestID}
			for i := range row {
				row[i] = csvSafe(row[i])
			}
			if err := w.Write(row); err != nil {
				return err
			}
		}
		w.Flush()
		if err := w.Error(); err != nil {
			return err
		}
		if next == 0 {
			return nil
		}
		f.Before = next
		if entries, next, err = s.audit.List(ctx, a, f); err != nil {
			// Headers are gone: the download ends short, and the error is logged.
			return err
		}
	}
}

// csvSafe keeps a spreadsheet from reading a cell as a formula: a cell
// that starts with = + - @ (or a tab or carriage return) gets a leading
// single quote.
func csvSafe(cell string) string {
	if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
		return "'" + cell
	}
	return cell
}

// auditFilterTyped is the filters as typed, to show them back in the form.
func auditFilterTyped(c echo.Context) auditview.Filter {
	q := c.QueryParams()
	return auditview.Filter{
		Actor: strings.TrimSpace(q.Get("actor")), Action: strings.TrimSpace(q.Get("action")),
		Target: strings.TrimSpace(q.Get("target")), From: q.Get("from"), To: q.Get("to"), Before: q.Get("before"),
	}
}

// auditFilter reads the audit log's filters from the query string; "to"
// includes its whole day.
func auditFilter(c echo.Context) (audit.Filter, error) {
	typed := auditFilterTyped(c)
	f := audit.Filter{Actor: typed.Actor, Action: typed.Action, Target: typed.Target}
	errs := validation.Errors{}
	for _, p := range []struct {
		name, value string
		dst         *time.Time
		add         time.Duration
	}{{"from", typed.From, &f.From, 0}, {"to", typed.To, &f.To, 24 * time.Hour}} {
		if p.value == "" {
			continue
		}
		t, err := time.Parse("2006-01-02", p.value)
		if err != nil {
			errs.Add(p.name, "Use a date like 2026-01-31.")
			continue
		}
		*p.dst = t.Add(p.add)
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.To.After(f.From) {
		errs.Add("to", "Use a date on or after the start date.")
	}
	if typed.Before != "" {
		n, err := strconv.ParseInt(typed.Before, 10, 64)
		if err != nil || n < 1 {
			errs.Add("before", "Use the cursor of the previous page.")
		}
		f.Before = n
	}
	return f, errs.Err()
}
