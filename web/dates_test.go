package web_test

import (
	"net/http"
	"net/url"
	"regexp"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/stretchr/testify/require"
)

// oneDateFormat is how pages write a moment (views/components/time.templ):
// a day, a day and time in UTC, or a time of day in UTC.
var oneDateFormat = regexp.MustCompile(`^(\d{1,2} [A-Z][a-z]{2} \d{4}(, \d{2}:\d{2} UTC)?|\d{2}:\d{2}:\d{2} UTC)$`)

// TestPagesWriteDatesOneWay checks every <time> on the pages that show
// dates: one format, and marked for the browser to show in the reader's
// time zone.
func TestPagesWriteDatesOneWay(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.client()
	c.signUp("dates@example.com", password)
	id := c.startRun(url.Values{"prompt": {"what day is it"}, "provider": {"simulated"}, "model": {"echo"}})
	c.waitRunPage(id, "succeeded")
	c.createKeyOnPage("dated", "viewer")
	c.submit("/team/invites", "/team/invites", url.Values{"email": {"later@example.com"}, "role": {"member"}})

	seen := 0
	for _, path := range []string{"/runs", "/runs/" + itoa(id), "/team", "/team/members", "/team/api-keys", "/team/invites", "/team/audit", "/templates"} {
		res := c.get(path)
		require.Equal(t, http.StatusOK, res.StatusCode, path)
		res.Doc(t).Find("time").Each(func(_ int, tm *goquery.Selection) {
			seen++
			require.Regexp(t, oneDateFormat, tm.Text(), "%s", path)
			require.NotEmpty(t, tm.AttrOr("datetime", ""), "%s: %q has a datetime", path, tm.Text())
			require.Contains(t, []string{"date", "datetime", "time"}, tm.AttrOr("data-local", ""), "%s: %q is shown in the reader's zone", path, tm.Text())
		})
	}
	require.Greater(t, seen, 10)
}
