package runs

import (
	"net/url"
	"strconv"
)

// URL is the runs list with these filters, from the run before the id
// before (0: from the newest run); sorted by cost, the cursor also holds
// that run's cost.
func (f Filter) URL(before, beforeCost int64) string {
	v := url.Values{}
	for _, p := range []struct{ key, value string }{
		{"status", f.Status}, {"template", f.Template}, {"from", f.From}, {"to", f.To}, {"sort", f.Sort}, {"limit", f.Limit},
	} {
		if p.value != "" {
			v.Set(p.key, p.value)
		}
	}
	if before > 0 {
		v.Set("before", strconv.FormatInt(before, 10))
		if f.Sort == "cost" {
			v.Set("before_cost", strconv.FormatInt(beforeCost, 10))
		}
	}
	if len(v) == 0 {
		return "/runs"
	}
	return "/runs?" + v.Encode()
}

// firstPageURL is the list with the same filters, from the newest run.
func (d ListData) firstPageURL() string { return d.Filter.URL(0, 0) }
