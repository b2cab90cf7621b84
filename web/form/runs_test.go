package form

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/validation"
)

func TestRunsFilter(t *testing.T) {
	f, err := RunsFilter(url.Values{"status": {"failed"}, "sort": {"cost"}, "from": {"2026-01-30"}, "to": {"2026-01-31"},
		"before": {"42"}, "before_cost": {"7"}, "limit": {"20"}, "template": {"summary"}})
	require.NoError(t, err)
	require.Equal(t, "failed", f.Status)
	require.True(t, f.SortByCost)
	require.Equal(t, time.Date(2026, 1, 30, 0, 0, 0, 0, time.UTC), f.From)
	require.Equal(t, time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), f.To, "to includes its whole day")
	require.Equal(t, int64(42), f.Before)
	require.Equal(t, int64(7), f.BeforeCost)
	require.Equal(t, 20, f.Limit)
	require.Equal(t, "summary", f.Template)

	_, err = RunsFilter(url.Values{"status": {"bogus"}, "sort": {"oldest"}, "from": {"31/01/2026"}, "before": {"-1"}, "limit": {"500"},
		"template": {"t" + strings.Repeat("x", 63)}})
	var errs validation.Errors
	require.ErrorAs(t, err, &errs)
	for _, field := range []string{"status", "sort", "from", "before", "limit", "template"} {
		require.Contains(t, errs, field)
	}
}

func TestDiffVersions(t *testing.T) {
	from, to, problems := DiffVersions(url.Values{}, 5)
	require.Equal(t, []int{4, 5}, []int{from, to}, "the one before current, and current")
	require.Empty(t, problems)
	from, to, _ = DiffVersions(url.Values{}, 1)
	require.Equal(t, []int{1, 1}, []int{from, to})
	from, to, problems = DiffVersions(url.Values{"from": {" 2 "}, "to": {"x"}}, 5)
	require.Equal(t, []int{2, 5}, []int{from, to})
	require.Contains(t, problems["to"], `"x" is not a version number`)
	_, _, problems = DiffVersions(url.Values{"from": {"0"}}, 5)
	require.Contains(t, problems, "from")
}
