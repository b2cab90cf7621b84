package form

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/templates"
	"github.com/nofxhq/nofx/internal/validation"
)

// RunsFilter reads the runs list filters of a query string, as the Runs
// page and GET /api/v1/runs both take them.
func RunsFilter(q url.Values) (runs.ListFilter, error) {
	f := runs.ListFilter{Status: q.Get("status"), Template: q.Get("template")}
	errs := validation.Errors{}
	switch q.Get("sort") {
	case "", "newest":
	case "cost":
		f.SortByCost = true
	default:
		errs.Add("sort", "Use newest or cost.")
	}
	if f.Template != "" && !templates.ValidSlug(f.Template) {
		errs.Add("template", "Use a template's slug: a-z, 0-9 and -, at most 63 characters.")
	}
	if f.Status != "" && !slices.Contains(runs.RunStatuses, f.Status) {
		errs.Add("status", "Use one of "+strings.Join(runs.RunStatuses, ", ")+".")
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
		add  time.Duration
	}{{"from", &f.From, 0}, {"to", &f.To, 24 * time.Hour}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse("2006-01-02", v)
			if err != nil {
				errs.Add(p.name, "Use a date like 2026-01-31.")
				continue
			}
			*p.dst = t.Add(p.add) // "to" includes its whole day
		}
	}
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"before", &f.Before}, {"before_cost", &f.BeforeCost}} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				errs.Add(p.name, "Use the cursor of the previous page.")
				continue
			}
			*p.dst = n
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			errs.Add("limit", "Use a number from 1 to 200.")
		}
		f.Limit = n
	}
	return f, errs.Err()
}
