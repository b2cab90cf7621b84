package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/stretchr/testify/require"
)

// oneDateFormat is how pages write a moment (views/components/time.templ):
// a day, a day and time in UTC, or a time of day in UTC.
var oneDateFormat = regexp.MustCompile(`^(\d{1,2} [A-Z][a-z]{2} \d{4}(, \d{2}:\d{2} UTC)?|\d{2}:\d{2}:\d{2} UTC)$`)

// otherFormats are the ways pages wrote dates before there was one: with a
// weekday, ISO 8601, or month first.
var otherFormats = regexp.MustCompile(`\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun),? \d|\d{4}-\d{2}-\d{2}|\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{1,2},? \d{4}`)

// momentAsText is a day and time in UTC, written as plain text.
var momentAsText = regexp.MustCompile(`\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2} UTC`)

// zonedFormat is a schedule's next run, in its team's zone with its weekday.
var zonedFormat = regexp.MustCompile(`^[A-Z][a-z]{2} \d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2} [A-Z+\-0-9]+$`)

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
	sent := c.submit("/team/invites", "/team/invites", url.Values{"email": {"later@example.com"}, "role": {"member"}})
	require.Equal(t, http.StatusOK, sent.StatusCode, "without SMTP the page shows the link to copy")
	sentDoc := sent.Doc(t)
	checkDates(t, "the invitation sent", sentDoc)
	link := strings.TrimSpace(sentDoc.Find(`[data-testid=invite-link]`).Text())
	_, invitation, ok := strings.Cut(link, a.URL)
	require.True(t, ok, "the invitation's link: %q", link)
	// A comparison and a dead letter, for their pages.
	api := &apiClient{t: t, app: a, key: a.keyFor("dates@example.com")}
	res := api.do(http.MethodPost, fmt.Sprintf("/api/v1/runs/%d/steps/prompt/compare", id), `{"candidates":[{"provider":"simulated","model":"lorem"}]}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	comparison := api.waitComparison(decode[apiComparison](t, res).ID)
	startBrokenRun(t, a, api)
	teamID, _ := teamOf(t, a, "dates@example.com")
	key := tripCircuit(t, a, teamID)
	reset := c.submit("/admin/circuits", "/admin/circuits/simulated/reset", url.Values{"scope": {key.Scope}, "base_url": {""}})
	require.Equal(t, http.StatusSeeOther, reset.StatusCode, "a reset, for the circuits page's list of them")
	// A deployment with a run from its webhook, for the deployments page.
	const deployments = "/templates/summary/deployments"
	doc := c.submit(deployments, deployments, url.Values{"environment": {"production"}, "version": {"1"}}).Doc(t)
	secret := strings.TrimSpace(doc.Find(`[data-testid="webhook-secret-value"]`).Text())
	hookURL := strings.TrimSpace(doc.Find(`[data-testid="webhook-url-production"]`).Text())
	require.Equal(t, http.StatusAccepted, a.deliver(hookURL, secret, time.Now().Unix(), `{"text":"dated"}`).StatusCode)

	seen := 0
	for _, path := range []string{"/runs", "/runs/" + itoa(id), "/team", "/team/members", "/team/api-keys", "/team/invites", "/team/audit", "/templates",
		"/deployments", deployments, "/billing", "/admin", "/admin/teams", "/admin/outbox", "/admin/circuits", "/admin/health",
		"/admin/dead-letters", "/templates/summary/versions", fmt.Sprintf("/comparisons/%d", comparison.ID), invitation} {
		res := c.get(path)
		require.Equal(t, http.StatusOK, res.StatusCode, path)
		seen += checkDates(t, path, res.Doc(t))
	}
	require.Greater(t, seen, 15)
}

// checkDates checks the dates of one page and returns how many <time>s it
// has.
func checkDates(t *testing.T, page string, doc *goquery.Document) int {
	t.Helper()
	// No other format in the text around them, and no moment outside a
	// <time>, where the reader's browser could not show it in their zone.
	body := doc.Find("main").Clone()
	body.Find("time, script, pre").Remove()
	require.NotRegexp(t, otherFormats, body.Text(), "%s writes a date another way", page)
	require.NotRegexp(t, momentAsText, body.Text(), "%s writes a moment outside a <time>", page)
	seen := 0
	doc.Find("time").Each(func(_ int, tm *goquery.Selection) {
		seen++
		require.NotEmpty(t, tm.AttrOr("datetime", ""), "%s: %q has a datetime", page, tm.Text())
		if tm.AttrOr("data-local", "") == "zoned" {
			require.Regexp(t, zonedFormat, tm.Text(), "%s", page)
			return
		}
		require.Regexp(t, oneDateFormat, tm.Text(), "%s", page)
		require.Contains(t, []string{"date", "datetime", "time"}, tm.AttrOr("data-local", ""), "%s: %q is shown in the reader's zone", page, tm.Text())
	})
	return seen
}
