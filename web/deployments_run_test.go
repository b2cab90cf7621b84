package web_test

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDeploymentRunNow starts a deployment's pinned version by hand from
// its page: the form is generated from the pinned version (not a newer
// one), problems are shown next to their fields, the run is recorded as a
// manual run of the deployment, and a paused deployment starts nothing.
func TestDeploymentRunNow(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.client()
	c.signUp("run-now@example.com", password)
	const page = "/templates/summary/deployments"
	const form = page + "/production/run"

	require.Equal(t, http.StatusNotFound, c.get(form).StatusCode, "nothing is deployed yet")
	res := c.submit(page, page, url.Values{"environment": {"production"}, "version": {"1"}})
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	require.Equal(t, form, res.Doc(t).Find(`[data-testid=run-now-production]`).AttrOr("href", ""))

	// A newer version does not change what the deployment's form starts.
	res = c.submit("/templates/summary/json", "/templates/summary/import", url.Values{
		"json": {`{"slug":"summary","name":"Summary","inputs":[{"name":"topic","type":"text","required":true}],
			"plan":{"steps":[{"name":"s","kind":"text","prompt":"About {{inputs.topic}}"}]}}`},
		"note": {"v2"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)

	res = c.get(form)
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	doc := res.Doc(t)
	require.Contains(t, doc.Find(`[data-testid=run-form-deployment]`).Text(), "version 1, pinned to production")
	require.Equal(t, 1, doc.Find(`#input-text`).Length(), "the pinned version's input")
	require.Equal(t, 0, doc.Find(`#input-topic`).Length(), "not the current version's")

	res = c.submit(form, form, url.Values{"inputs.text": {" "}})
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Equal(t, 1, res.Doc(t).Find(`[data-testid=error-input-text]`).Length())
	require.Equal(t, 0, a.countRuns(), "nothing started")

	res = c.submit(form, form, url.Values{"inputs.text": {"Started by hand."}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	require.True(t, strings.HasPrefix(res.Header.Get("Location"), "/runs/"), res.Header.Get("Location"))
	id, err := strconv.ParseInt(strings.TrimPrefix(res.Header.Get("Location"), "/runs/"), 10, 64)
	require.NoError(t, err)
	origin := a.runOrigin(id)
	require.Equal(t, "manual", origin.TriggeredBy)
	require.NotNil(t, origin.DeploymentID)
	require.Equal(t, 1, origin.TemplateVersion)
	runPage := c.get(res.Header.Get("Location")).Doc(t)
	require.Contains(t, runPage.Find(`[data-testid=run-deployment]`).Text(), "production")

	// Paused: no Run now button, and the form starts nothing.
	res = c.submit(page, page+"/production/pause", url.Values{})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	require.Equal(t, 0, c.get(page).Doc(t).Find(`[data-testid=run-now-production]`).Length())
	res = c.submit(form, form, url.Values{"inputs.text": {"Again."}})
	require.Equal(t, http.StatusConflict, res.StatusCode)
	require.Contains(t, res.Doc(t).Find(`main`).Text(), "paused")
	require.Equal(t, 1, a.countRuns())
}
