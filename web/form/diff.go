package form

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/nofxhq/nofx/internal/validation"
)

// DiffVersions reads the versions to compare from the query (from, to): by
// default the one before current, and current. A value that is not a
// version number is a problem under its name.
func DiffVersions(q url.Values, current int) (from, to int, problems validation.Errors) {
	from, to, problems = max(current-1, 1), current, validation.Errors{}
	for _, p := range []struct {
		name string
		dst  *int
	}{{"from", &from}, {"to", &to}} {
		raw := strings.TrimSpace(q.Get(p.name))
		if raw == "" {
			continue
		}
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 {
			problems.Add(p.name, fmt.Sprintf("%q is not a version number for %s.", raw, p.name))
			continue
		}
		*p.dst = n
	}
	return from, to, problems
}
