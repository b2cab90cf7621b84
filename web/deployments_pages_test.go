package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/templates"
)

func TestDeploymentsPage(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.client()
	c.signUp("pages@example.com", password)
	const page = "/templates/summary/deployments"

	res := c.get(page)
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	doc := res.Doc(t)
	require.Equal(t, 1, doc.Find(`[data-testid="not-deployed-production"]`).Length())
	require.Equal(t, 1, doc.Find(`[data-testid="deploy-form"]`).Length())

	res = c.submit(page, page, url.Values{"environment": {"production"}, "version": {"x"}})
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Equal(t, 1, res.Doc(t).Find(`[data-testid="error-version"]`).Length())
	res = c.submit(page, page, url.Values{"environment": {"qa"}, "version": {"1"}})
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Equal(t, 1, res.Doc(t).Find(`[data-testid="error-environment"]`).Length())

	// Deploying shows the webhook secret once, with how to sign.
	res = c.submit(page, page, url.Values{"environment": {"production"}, "version": {"1"}})
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	doc = res.Doc(t)
	secret := strings.TrimSpace(doc.Find(`[data-testid="webhook-secret-value"]`).Text())
	require.True(t, strings.HasPrefix(secret, "whsec_"), secret)
	hookURL := strings.TrimSpace(doc.Find(`[data-testid="webhook-url-production"]`).Text())
	require.True(t, strings.HasPrefix(hookURL, a.URL+"/hooks/"), hookURL)
	example := doc.Find(`#env-production details pre`).Text()
	require.Contains(t, example, "openssl dgst -sha256 -hmac")

	res = c.get(page)
	require.Equal(t, 0, res.Doc(t).Find(`[data-testid="webhook-secret"]`).Length(), "the secret is shown once")
	require.NotContains(t, res.Body, secret)

	// The example on the page signs a delivery that starts a run.
	if _, err := exec.LookPath("openssl"); err == nil {
		if _, err := exec.LookPath("curl"); err == nil {
			script := strings.Replace(example, "whsec_…", secret, 1)
			out, err := exec.Command("bash", "-c", script).CombinedOutput()
			require.NoError(t, err, string(out))
			require.Contains(t, string(out), `"id":`, string(out))
		}
	}
	res = a.deliver(hookURL, secret, time.Now().Unix(), `{"text":"from the test"}`)
	require.Equal(t, http.StatusAccepted, res.StatusCode, res.Body)

	doc = c.get(page).Doc(t)
	require.Equal(t, "active", strings.TrimSpace(doc.Find(`[data-testid="status-production"]`).Text()))
	links := doc.Find(`[data-testid="recent-runs-production"] a[data-testid="recent-run"]`)
	require.GreaterOrEqual(t, links.Length(), 1)
	href, _ := links.First().Attr("href")
	require.Regexp(t, `^/runs/\d+$`, href)
	version, _ := doc.Find(`[data-testid="version-production"]`).Attr("href")
	require.Equal(t, "/templates/summary/versions/1", version)

	// Schedule: inline error, then the next run in the team's time zone.
	res = c.submit(page, page+"/production/schedule", url.Values{"schedule": {"every day"}})
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	doc = res.Doc(t)
	require.Equal(t, 1, doc.Find(`[data-testid="error-schedule"]`).Length())
	value, _ := doc.Find(`#schedule-production`).Attr("value")
	require.Equal(t, "every day", value, "the form keeps what was typed")
	const needsDefault = `Scheduled runs use the inputs' defaults: give "text" a default or make it optional first.`
	res = c.submit(page, page+"/production/schedule", url.Values{"schedule": {"0 9 * * *"}})
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, "version 1's text has no default")
	require.Equal(t, needsDefault, strings.TrimSpace(res.Doc(t).Find(`[data-testid="error-schedule"]`).Text()))
	mine := a.teamOf("pages@example.com")
	_, v1, err := a.App.Templates.Get(context.Background(), ownerOf(t, a, "pages@example.com", mine.ID), "summary")
	require.NoError(t, err)
	spec, err := v1.Spec("summary")
	require.NoError(t, err)
	spec.Inputs[0].Default = "Scheduled text"
	_, _, err = a.App.Templates.Save(context.Background(), ownerOf(t, a, "pages@example.com", mine.ID), "summary", spec, "a default")
	require.NoError(t, err)
	res = c.submit(page, page, url.Values{"environment": {"production"}, "version": {"2"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	res = c.submit(page, page+"/production/schedule", url.Values{"schedule": {"0 9 * * *"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	res = c.submit(page, page, url.Values{"environment": {"production"}, "version": {"1"}})
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, "version 1 would break the schedule")
	require.Contains(t, res.Doc(t).Find(`[data-testid="error-version"]`).Text(), needsDefault)
	require.Contains(t, c.get(page).Doc(t).Find(`[data-testid="next-run-production"]`).Text(), "09:00 UTC")

	res = c.submit("/team", "/team/settings", url.Values{"time_zone": {"Mars/Olympus_Mons"}})
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Equal(t, 1, res.Doc(t).Find(`[data-testid="error-time_zone"]`).Length())
	res = c.submit("/team", "/team/settings", url.Values{"time_zone": {"Asia/Tokyo"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	require.Equal(t, "Asia/Tokyo", strings.TrimSpace(c.get("/team").Doc(t).Find(`[data-testid="team-time-zone"]`).Text()))
	next := c.get(page).Doc(t).Find(`[data-testid="next-run-production"] time`)
	require.Contains(t, next.Text(), "09:00 JST")
	require.Equal(t, "zoned", next.AttrOr("data-local", ""), "a schedule's time stays in its team's zone in the browser too")
	when, err := time.Parse(time.RFC3339, next.AttrOr("datetime", ""))
	require.NoError(t, err)
	require.Equal(t, 0, when.UTC().Minute())
	require.Equal(t, 0, when.UTC().Hour(), "09:00 in Tokyo is midnight UTC")

	// Input map.
	res = c.submit(page, page+"/production/input-map", url.Values{"input_map": {`{"text": ""}`}})
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Equal(t, 1, res.Doc(t).Find(`[data-testid="error-input_map"]`).Length())
	res = c.submit(page, page+"/production/input-map", url.Values{"input_map": {`{"text": "issue.body"}`}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	res = a.deliver(hookURL, secret, time.Now().Unix(), `{"issue":{"body":"mapped"}}`)
	require.Equal(t, http.StatusAccepted, res.StatusCode, res.Body)

	// A new secret replaces the old one and is shown once.
	res = c.submit(page, page+"/production/webhook", url.Values{})
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	rotated := strings.TrimSpace(res.Doc(t).Find(`[data-testid="webhook-secret-value"]`).Text())
	require.True(t, strings.HasPrefix(rotated, "whsec_"))
	require.NotEqual(t, secret, rotated)
	require.Equal(t, http.StatusUnauthorized, a.deliver(hookURL, secret, time.Now().Unix(), `{"issue":{"body":"old"}}`).StatusCode)

	// Pause and resume.
	res = c.submit(page, page+"/production/pause", url.Values{})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	doc = c.get(page).Doc(t)
	require.Equal(t, "paused", strings.TrimSpace(doc.Find(`[data-testid="status-production"]`).Text()))
	require.Equal(t, 1, doc.Find(`[data-testid="resume-production"]`).Length())
	require.Equal(t, "—", strings.TrimSpace(doc.Find(`[data-testid="next-run-production"]`).Text()), "a paused schedule waits")
	require.Equal(t, http.StatusConflict, a.deliver(hookURL, rotated, time.Now().Unix(), `{"issue":{"body":"paused"}}`).StatusCode)
	// A schedule whose version lost its default (set before the rule) does
	// not resume: the page says why at the schedule.
	_, err = a.DB.ExecContext(context.Background(), `UPDATE deployments SET version = 1`)
	require.NoError(t, err)
	res = c.submit(page, page+"/production/resume", url.Values{})
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, res.Body)
	require.Equal(t, needsDefault, strings.TrimSpace(res.Doc(t).Find(`[data-testid="error-schedule"]`).Text()))
	require.Equal(t, "paused", strings.TrimSpace(res.Doc(t).Find(`[data-testid="status-production"]`).Text()))
	_, err = a.DB.ExecContext(context.Background(), `UPDATE deployments SET version = 2`)
	require.NoError(t, err)
	res = c.submit(page, page+"/production/resume", url.Values{})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	require.Equal(t, "active", strings.TrimSpace(c.get(page).Doc(t).Find(`[data-testid="status-production"]`).Text()))

	// A viewer sees the deployments but no forms, and may not change them.
	viewer := a.client()
	viewer.signUp("viewer@example.com", password)
	ctx := context.Background()
	v, err := auth.UserByEmail(ctx, a.DB, "viewer@example.com")
	require.NoError(t, err)
	team := a.teamOf("pages@example.com")
	require.NoError(t, teams.AddMember(ctx, a.DB, team.ID, v.ID, teams.RoleViewer))
	viewer.submit("/runs", "/teams/switch", url.Values{"team_id": {fmt.Sprint(team.ID)}})
	doc = viewer.get(page).Doc(t)
	require.Equal(t, 1, doc.Find(`[data-testid="env-production"]`).Length())
	require.Equal(t, 0, doc.Find(`[data-testid="deploy-form"]`).Length())
	require.Equal(t, 0, doc.Find(`[data-testid="pause-production"]`).Length())
	res = viewer.submit(page, page+"/production/pause", url.Values{})
	require.Equal(t, http.StatusForbidden, res.StatusCode)
}

// TestWebhookExampleFillsThePinnedVersionsInputs checks that the signing
// example's body fills the inputs of the version deployed there, not a
// made-up "text".
func TestWebhookExampleFillsThePinnedVersionsInputs(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	web := a.client()
	web.signUp("hooks@example.com", password)
	c := &apiClient{t: t, app: a, key: a.keyFor("hooks@example.com")}
	res := c.do(http.MethodPost, "/api/v1/templates", briefJSON+"}")
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	v2 := strings.Replace(briefJSON, `{"name": "audience", "type": "text"}`,
		`{"name": "audience", "type": "text"}, {"name": "tone", "type": "choice", "choices": ["plain", "warm"]}`, 1)
	res = c.do(http.MethodPut, "/api/v1/templates/brief", v2+"}")
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	res = c.do(http.MethodPost, "/api/v1/templates/brief/deploy", `{"environment":"production","version":1}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	res = c.do(http.MethodPost, "/api/v1/templates/brief/deploy", `{"environment":"staging","version":2}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	var staged struct {
		WebhookSecret string `json:"webhook_secret"`
	}
	require.NoError(t, json.Unmarshal([]byte(res.Body), &staged))

	doc := web.get("/templates/brief/deployments").Doc(t)
	production := doc.Find(`[data-testid=sign-example-production]`).Text()
	require.Contains(t, production, `BODY='{"audience":"Hello from a webhook","topic":"Hello from a webhook","words":50}'`)
	staging := doc.Find(`[data-testid=sign-example-staging]`).Text()
	require.Contains(t, staging, `"tone":"plain"`, "version 2's choice, its first")
	require.NotContains(t, production, `"text"`)

	// With an input map, the example puts each input where the map reads
	// it, and the example as shown starts a run with those inputs.
	const page = "/templates/brief/deployments"
	res = web.submit(page, page+"/staging/input-map", url.Values{"input_map": {`{"topic": "pull_request.title", "tone": "pull_request.labels.tone"}`}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	doc = web.get(page).Doc(t)
	staging = doc.Find(`[data-testid=sign-example-staging]`).Text()
	_, body, ok := strings.Cut(staging, "BODY='")
	require.True(t, ok, staging)
	body, _, _ = strings.Cut(body, "'")
	require.JSONEq(t, `{"audience":"Hello from a webhook","words":50,"pull_request":{"title":"Hello from a webhook","labels":{"tone":"plain"}}}`, body)
	hookURL := strings.TrimSpace(doc.Find(`[data-testid="webhook-url-staging"]`).Text())
	res = a.deliver(hookURL, staged.WebhookSecret, time.Now().Unix(), body)
	require.Equal(t, http.StatusAccepted, res.StatusCode, res.Body)
	var started struct {
		ID int64 `json:"id"`
	}
	require.NoError(t, json.Unmarshal([]byte(res.Body), &started))
	run, _, err := a.App.Runs.Get(context.Background(), ownerOf(t, a, "hooks@example.com", a.teamOf("hooks@example.com").ID), started.ID)
	require.NoError(t, err)
	require.JSONEq(t, `{"audience":"Hello from a webhook","words":50,"topic":"Hello from a webhook","tone":"plain"}`, run.InputsJSON)
}

// A deployment pinned to a version older than the newest the versions list
// holds still shows its webhook example, built from that version's inputs.
func TestWebhookExampleOfAnOldPinnedVersion(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	web := a.client()
	web.signUp("old-pin@example.com", password)
	c := &apiClient{t: t, app: a, key: a.keyFor("old-pin@example.com")}
	res := c.do(http.MethodPost, "/api/v1/templates", briefJSON+"}")
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	res = c.do(http.MethodPost, "/api/v1/templates/brief/deploy", `{"environment":"production","version":1}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)

	owner := ownerOf(t, a, "old-pin@example.com", a.teamOf("old-pin@example.com").ID)
	_, v1, err := a.App.Templates.Get(context.Background(), owner, "brief")
	require.NoError(t, err)
	spec, err := v1.Spec("brief")
	require.NoError(t, err)
	spec.Inputs = append(spec.Inputs, templates.Input{Name: "tone", Type: templates.InputChoice, Choices: []string{"plain", "warm"}}) // later versions take a tone too
	for i := range templates.MaxListedVersions {
		spec.Description = fmt.Sprintf("edit %d", i)
		_, _, err := a.App.Templates.Save(context.Background(), owner, "brief", spec, "")
		require.NoError(t, err)
	}

	doc := web.get("/templates/brief/deployments").Doc(t)
	example := doc.Find(`[data-testid=sign-example-production]`).Text()
	require.Contains(t, example, `BODY='{"audience":"Hello from a webhook","topic":"Hello from a webhook","words":50}'`)
	require.Equal(t, "/templates/brief/versions/1", doc.Find(`[data-testid="version-production"]`).AttrOr("href", ""))
}
