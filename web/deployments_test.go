package web_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/apikeys"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/deployments"
	"github.com/nofxhq/nofx/internal/logtest"
	"github.com/nofxhq/nofx/internal/teams"
)

// apiDeployed is the answer to POST /api/v1/templates/{slug}/deploy.
type apiDeployed struct {
	Deployment    apiDeployment `json:"deployment"`
	Created       bool          `json:"created"`
	WebhookSecret string        `json:"webhook_secret"`
}

type apiDeployment struct {
	Template    string `json:"template"`
	Environment string `json:"environment"`
	Version     int    `json:"version"`
	Status      string `json:"status"`
	WebhookURL  string `json:"webhook_url"`
	Stats       *struct {
		Runs int `json:"runs"`
	} `json:"stats"`
	RecentRuns []struct {
		ID          int64  `json:"id"`
		TriggeredBy string `json:"triggered_by"`
	} `json:"recent_runs"`
}

// apiFailure is the JSON error shape.
type apiFailure struct {
	Error struct {
		Code    string            `json:"code"`
		Message string            `json:"message"`
		Fields  map[string]string `json:"fields"`
	} `json:"error"`
}

// teamOf returns the personal team of the user with email.
func (a *app) teamOf(email string) teams.Membership {
	a.t.Helper()
	ctx := context.Background()
	u, err := auth.UserByEmail(ctx, a.DB, email)
	require.NoError(a.t, err)
	ms, err := teams.ForUser(ctx, a.DB, u.ID)
	require.NoError(a.t, err)
	return ms[0]
}

// keyClient calls the API with a new key of role in teamID, made by the
// team's owner.
func (a *app) keyClient(teamID int64, role teams.Role) *apiClient {
	a.t.Helper()
	_, secret, err := apikeys.Create(context.Background(), a.DB, teamID, "key "+string(role), role, a.ownerOf(teamID), nil)
	require.NoError(a.t, err)
	return &apiClient{t: a.t, app: a, key: secret}
}

// ownerOf returns the user id of teamID's owner.
func (a *app) ownerOf(teamID int64) int64 {
	a.t.Helper()
	var id int64
	require.NoError(a.t, db.Get(context.Background(), a.DB, &id, `SELECT user_id FROM memberships WHERE team_id = ? AND role = 'owner'`, teamID))
	return id
}

// countRuns counts the runs in the database.
func (a *app) countRuns() int {
	a.t.Helper()
	var n int
	require.NoError(a.t, db.Get(context.Background(), a.DB, &n, `SELECT COUNT(*) FROM runs`))
	return n
}

// runOrigin is how a run came to be, read from the database.
type runOrigin struct {
	TemplateVersion int    `db:"template_version"`
	TriggeredBy     string `db:"triggered_by"`
	DeploymentID    *int64 `db:"deployment_id"`
}

func (a *app) runOrigin(id int64) runOrigin {
	a.t.Helper()
	var o runOrigin
	require.NoError(a.t, db.Get(context.Background(), a.DB, &o, `SELECT template_version, triggered_by, deployment_id FROM runs WHERE id = ?`, id))
	return o
}

// ownerOf is the owner with email acting in teamID, for calling services.
func ownerOf(t *testing.T, a *app, email string, teamID int64) access.Actor {
	t.Helper()
	u, err := auth.UserByEmail(context.Background(), a.DB, email)
	require.NoError(t, err)
	return access.Actor{UserID: u.ID, TeamID: teamID, Role: teams.RoleOwner}
}

// deliver posts body to a webhook URL signed at ts with secret (an empty
// secret sends no signature headers), from a client without cookies.
func (a *app) deliver(url, secret string, ts int64, body string) response {
	a.t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(a.t, err)
	req.Header.Set("Content-Type", "application/json")
	if secret != "" {
		req.Header.Set(deployments.TimestampHeader, strconv.FormatInt(ts, 10))
		req.Header.Set(deployments.SignatureHeader, deployments.Sign(secret, ts, []byte(body)))
	}
	return a.client().do(req)
}

func TestWebhookDeliveries(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	owner := a.newAPIClient("hooks@example.com", teams.RoleOwner)
	res := owner.do(http.MethodPost, "/api/v1/templates/summary/deploy", `{"environment":"production"}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	dep := decode[apiDeployed](t, res)
	require.NotEmpty(t, dep.WebhookSecret)
	url, secret := dep.Deployment.WebhookURL, dep.WebhookSecret
	require.True(t, strings.HasPrefix(url, a.URL+"/hooks/"), url)

	now := time.Now().Unix()
	valid := `{"text":"A webhook's text to summarise","extra":"ignored"}`
	res = a.deliver(url, secret, now, valid)
	require.Equal(t, http.StatusAccepted, res.StatusCode, res.Body)
	accepted := decode[struct {
		ID     int64  `json:"id"`
		Status string `json:"status"`
	}](t, res)
	require.Positive(t, accepted.ID)
	require.NotEmpty(t, accepted.Status)
	origin := a.runOrigin(accepted.ID)
	require.Equal(t, "webhook", origin.TriggeredBy)
	require.NotNil(t, origin.DeploymentID)
	require.Equal(t, 1, origin.TemplateVersion)
	require.Equal(t, 1, a.countRuns())
	var who struct {
		Audit string `db:"audit"`
		Event string `db:"event"`
	}
	require.NoError(t, db.Get(context.Background(), a.DB, &who, `SELECT
		(SELECT actor FROM audit_log WHERE action = 'run.create' AND target = ?) AS audit,
		(SELECT message FROM run_events WHERE run_id = ? AND kind = 'run.created') AS event`,
		fmt.Sprintf("run #%d", accepted.ID), accepted.ID))
	require.Equal(t, "webhook", who.Audit, "the audit log names the trigger when no person or key started the run")
	require.Contains(t, who.Event, "webhook")

	big := `{"text":"` + strings.Repeat("x", deployments.MaxWebhookBody) + `"}`
	for _, tc := range []struct {
		name   string
		url    string
		secret string
		ts     int64
		body   string
		status int
		code   string
		has    string // in the message, or a field name for 422
	}{
		{name: "unknown token", url: a.URL + "/hooks/nope", secret: secret, ts: now, body: valid, status: 404, code: "not_found"},
		{name: "wrong signature", url: url, secret: "whsec_wrong", ts: now, body: valid, status: 401, code: "unauthorized", has: "signature"},
		{name: "no signature", url: url, body: valid, status: 401, code: "unauthorized"},
		{name: "stale timestamp", url: url, secret: secret, ts: now - 600, body: `{"text":"late"}`, status: 401, code: "unauthorized", has: "stale"},
		{name: "timestamp ahead", url: url, secret: secret, ts: now + 600, body: `{"text":"early"}`, status: 401, code: "unauthorized", has: "stale"},
		{name: "replayed request", url: url, secret: secret, ts: now, body: valid, status: 409, code: "conflict", has: "already received"},
		{name: "oversized body", url: url, secret: secret, ts: now, body: big, status: 413, code: "request_too_large"},
		{name: "malformed JSON", url: url, secret: secret, ts: now, body: `{"text":`, status: 400, code: "bad_request"},
		{name: "not an object", url: url, secret: secret, ts: now, body: `["text"]`, status: 400, code: "bad_request"},
		{name: "null", url: url, secret: secret, ts: now, body: `null`, status: 400, code: "bad_request"},
		{name: "data after the object", url: url, secret: secret, ts: now, body: `{"text":"one"} {"text":"two"}`, status: 400, code: "bad_request"},
		{name: "garbage after the object", url: url, secret: secret, ts: now, body: `{"text":"one"} x`, status: 400, code: "bad_request"},
		{name: "invalid inputs", url: url, secret: secret, ts: now, body: `{"title":"no text"}`, status: 422, code: "validation_failed", has: "inputs.text"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := a.deliver(tc.url, tc.secret, tc.ts, tc.body)
			require.Equal(t, tc.status, res.StatusCode, res.Body)
			failure := decode[apiFailure](t, res)
			require.Equal(t, tc.code, failure.Error.Code)
			if tc.status == 422 {
				require.Contains(t, failure.Error.Fields, tc.has)
			} else if tc.has != "" {
				require.Contains(t, failure.Error.Message, tc.has)
			}
			require.Equal(t, 1, a.countRuns(), "a refused delivery starts nothing")
		})
	}

	require.Equal(t, http.StatusOK, owner.do(http.MethodPost, "/api/v1/deployments/summary/production/pause", "").StatusCode)
	res = a.deliver(url, secret, now+1, `{"text":"while paused"}`)
	require.Equal(t, http.StatusConflict, res.StatusCode, res.Body)
	require.Equal(t, "conflict", apiErrorCode(t, res))
	require.Equal(t, 1, a.countRuns(), "a paused deployment starts nothing")
	require.Equal(t, http.StatusOK, owner.do(http.MethodPost, "/api/v1/deployments/summary/production/resume", "").StatusCode)

	// A signed-in browser's cookies do not matter: the signature does.
	browser := a.client()
	browser.signUp("browser@example.com", password)
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"text":"from a browser session"}`))
	require.NoError(t, err)
	ts := time.Now().Unix()
	req.Header.Set(deployments.TimestampHeader, strconv.FormatInt(ts, 10))
	req.Header.Set(deployments.SignatureHeader, deployments.Sign(secret, ts, []byte(`{"text":"from a browser session"}`)))
	res = browser.do(req)
	require.Equal(t, http.StatusAccepted, res.StatusCode, res.Body)
	require.Equal(t, 2, a.countRuns())
}

func TestWebhookInputMapAndRotation(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	owner := a.newAPIClient("map@example.com", teams.RoleOwner)
	dep := decode[apiDeployed](t, owner.do(http.MethodPost, "/api/v1/templates/summary/deploy", `{"environment":"staging","version":1}`))
	team := a.teamOf("map@example.com")
	ctx := context.Background()
	ownerActor := ownerOf(t, a, "map@example.com", team.ID)
	require.NoError(t, a.App.Deployments.SetInputMap(ctx, ownerActor, "summary", "staging", `{"text":"pull_request.title"}`))

	body := `{"action":"opened","pull_request":{"title":"Fix the flaky test"},"text":"not this one"}`
	res := a.deliver(dep.Deployment.WebhookURL, dep.WebhookSecret, time.Now().Unix(), body)
	require.Equal(t, http.StatusAccepted, res.StatusCode, res.Body)
	var inputs string
	require.NoError(t, db.Get(ctx, a.DB, &inputs, `SELECT inputs FROM runs ORDER BY id DESC LIMIT 1`))
	require.Contains(t, inputs, "Fix the flaky test")

	newSecret, err := a.App.Deployments.RotateSecret(ctx, ownerActor, "summary", "staging")
	require.NoError(t, err)
	require.NotEqual(t, dep.WebhookSecret, newSecret)
	res = a.deliver(dep.Deployment.WebhookURL, dep.WebhookSecret, time.Now().Unix(), `{"pull_request":{"title":"old secret"}}`)
	require.Equal(t, http.StatusUnauthorized, res.StatusCode, "the old secret no longer signs")
	res = a.deliver(dep.Deployment.WebhookURL, newSecret, time.Now().Unix(), `{"pull_request":{"title":"new secret"}}`)
	require.Equal(t, http.StatusAccepted, res.StatusCode, res.Body)
	require.Equal(t, 2, a.countRuns())
}

func TestDeploymentAPI(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	owner := a.newAPIClient("deployer@example.com", teams.RoleOwner)
	team := a.teamOf("deployer@example.com")
	viewer := a.keyClient(team.ID, teams.RoleViewer)
	member := a.keyClient(team.ID, teams.RoleMember)
	stranger := a.newAPIClient("stranger@example.com", teams.RoleOwner)

	res := owner.do(http.MethodPost, "/api/v1/templates/summary/deploy", `{"environment":"production","version":1}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	first := decode[apiDeployed](t, res)
	require.True(t, first.Created)
	require.Equal(t, "active", first.Deployment.Status)
	require.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	res = owner.do(http.MethodPost, "/api/v1/templates/summary/deploy", `{"environment":"production","version":1}`)
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	require.Empty(t, decode[apiDeployed](t, res).WebhookSecret, "the secret is shown once")

	trigger := func(c *apiClient, inputs string, header ...string) response {
		return c.do(http.MethodPost, "/api/v1/deployments/summary/production/runs", `{"inputs":`+inputs+`}`, header...)
	}
	res = trigger(member, `{"text":"Pinned"}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	run := decode[apiRun](t, res)
	require.Equal(t, fmt.Sprintf("/api/v1/runs/%d", run.ID), res.Header.Get("Location"))
	require.Equal(t, runOrigin{TemplateVersion: 1, TriggeredBy: "api", DeploymentID: a.runOrigin(run.ID).DeploymentID}, a.runOrigin(run.ID))
	require.Equal(t, "production", run.Deployment, "the run's JSON names its deployment")
	require.Equal(t, "api", run.TriggeredBy)

	// A new version of the template does not change what production runs.
	ctx := context.Background()
	ownerActor := ownerOf(t, a, "deployer@example.com", team.ID)
	_, v, err := a.App.Templates.Get(ctx, ownerActor, "summary")
	require.NoError(t, err)
	spec, err := v.Spec("summary")
	require.NoError(t, err)
	spec.Plan.Goal = "Summary, second version"
	_, changed, err := a.App.Templates.Save(ctx, ownerActor, "summary", spec, "v2")
	require.NoError(t, err)
	require.True(t, changed)
	res = trigger(member, `{"text":"Still pinned"}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	require.Equal(t, 1, a.runOrigin(decode[apiRun](t, res).ID).TemplateVersion)
	require.NotEqual(t, "Summary, second version", decode[apiRun](t, res).Goal)

	res = owner.do(http.MethodPost, "/api/v1/templates/summary/deploy", `{"environment":"production","version":2}`)
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	res = trigger(member, `{"text":"Now version two"}`, "Idempotency-Key", "once")
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	second := decode[apiRun](t, res)
	require.Equal(t, 2, a.runOrigin(second.ID).TemplateVersion)
	res = trigger(member, `{"text":"Now version two"}`, "Idempotency-Key", "once")
	require.Equal(t, "true", res.Header.Get("Idempotent-Replayed"))
	require.Equal(t, second.ID, decode[apiRun](t, res).ID)
	runsBefore := a.countRuns()

	for _, tc := range []struct {
		name   string
		res    response
		status int
		code   string
		field  string
	}{
		{"viewer cannot trigger", trigger(viewer, `{"text":"x"}`), 403, "forbidden", ""},
		{"viewer cannot deploy", viewer.do(http.MethodPost, "/api/v1/templates/summary/deploy", `{"environment":"staging"}`), 403, "forbidden", ""},
		{"member cannot deploy", member.do(http.MethodPost, "/api/v1/templates/summary/deploy", `{"environment":"staging"}`), 403, "forbidden", ""},
		{"member cannot pause", member.do(http.MethodPost, "/api/v1/deployments/summary/production/pause", ``), 403, "forbidden", ""},
		{"another team", trigger(stranger, `{"text":"x"}`), 404, "not_found", ""},
		{"unknown template", stranger.do(http.MethodGet, "/api/v1/templates/nope/deployments", ""), 404, "not_found", ""},
		{"not deployed there", member.do(http.MethodPost, "/api/v1/deployments/summary/staging/runs", `{"inputs":{"text":"x"}}`), 404, "not_found", ""},
		{"unknown environment", owner.do(http.MethodPost, "/api/v1/templates/summary/deploy", `{"environment":"dev"}`), 422, "validation_failed", "environment"},
		{"unknown version", owner.do(http.MethodPost, "/api/v1/templates/summary/deploy", `{"environment":"staging","version":7}`), 422, "validation_failed", "version"},
		{"missing input", trigger(member, `{}`), 422, "validation_failed", "inputs.text"},
		{"unknown input", trigger(member, `{"text":"x","nope":1}`), 422, "validation_failed", "inputs.nope"},
		{"malformed body", member.do(http.MethodPost, "/api/v1/deployments/summary/production/runs", `{"inputs":`), 400, "bad_request", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.status, tc.res.StatusCode, tc.res.Body)
			failure := decode[apiFailure](t, tc.res)
			require.Equal(t, tc.code, failure.Error.Code)
			if tc.field != "" {
				require.Contains(t, failure.Error.Fields, tc.field)
			}
		})
	}
	require.Equal(t, runsBefore, a.countRuns(), "refused requests start nothing")

	res = owner.do(http.MethodPost, "/api/v1/deployments/summary/production/pause", "")
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	res = trigger(member, `{"text":"paused"}`)
	require.Equal(t, http.StatusConflict, res.StatusCode, res.Body)
	require.Contains(t, decode[apiFailure](t, res).Error.Message, "paused")
	res = owner.do(http.MethodPost, "/api/v1/deployments/summary/production/resume", "")
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	require.Equal(t, http.StatusCreated, trigger(member, `{"text":"resumed"}`).StatusCode)

	res = viewer.do(http.MethodGet, "/api/v1/templates/summary/deployments", "")
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	list := decode[struct {
		Deployments []apiDeployment `json:"deployments"`
	}](t, res)
	require.Len(t, list.Deployments, 1)
	require.Equal(t, 2, list.Deployments[0].Version)
	require.Equal(t, 4, list.Deployments[0].Stats.Runs)
	require.Len(t, list.Deployments[0].RecentRuns, 4)
	require.Equal(t, "api", list.Deployments[0].RecentRuns[0].TriggeredBy)
}

func TestWebhookTokenStaysOutOfTheLogs(t *testing.T) {
	t.Parallel()
	var logs logtest.Buffer
	a := newAppLogging(t, dbtest.SQLiteURL(t), slog.New(slog.NewTextHandler(&logs, nil)))
	owner := a.newAPIClient("quiet@example.com", teams.RoleOwner)
	dep := decode[apiDeployed](t, owner.do(http.MethodPost, "/api/v1/templates/summary/deploy", `{"environment":"production"}`))
	url := dep.Deployment.WebhookURL
	token := url[strings.LastIndex(url, "/")+1:]
	require.NotEmpty(t, token)

	res := a.deliver(url, dep.WebhookSecret, time.Now().Unix(), `{"text":"logged without its token"}`)
	require.Equal(t, http.StatusAccepted, res.StatusCode, res.Body)
	res = a.deliver(url, "whsec_wrong", time.Now().Unix(), `{"text":"refused"}`)
	require.Equal(t, http.StatusUnauthorized, res.StatusCode, res.Body)

	// Two request lines and the refusal's warning; a line is written after
	// its response, so wait for them.
	require.Eventually(t, func() bool { return strings.Count(logs.String(), "path=/hooks/:token") >= 3 }, 5*time.Second, 10*time.Millisecond,
		"logs:\n%s", logs.String())
	require.NotContains(t, logs.String(), token)
}

func TestWebhookAndAPIKeepLargeNumbersExact(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	owner := a.newAPIClient("numbers@example.com", teams.RoleOwner)
	dep := decode[apiDeployed](t, owner.do(http.MethodPost, "/api/v1/templates/summary/deploy", `{"environment":"production"}`))
	team := a.teamOf("numbers@example.com")
	ctx := context.Background()
	require.NoError(t, a.App.Deployments.SetInputMap(ctx, ownerOf(t, a, "numbers@example.com", team.ID), "summary", "production", `{"text":"id"}`))
	lastInputs := func() string {
		t.Helper()
		var inputs string
		require.NoError(t, db.Get(ctx, a.DB, &inputs, `SELECT inputs FROM runs ORDER BY id DESC LIMIT 1`))
		return inputs
	}

	// 2^53 + 1 is not a float64: read as one, it would become ...992.
	res := a.deliver(dep.Deployment.WebhookURL, dep.WebhookSecret, time.Now().Unix(), `{"id": 9007199254740993}`)
	require.Equal(t, http.StatusAccepted, res.StatusCode, res.Body)
	require.Contains(t, lastInputs(), `"9007199254740993"`)

	res = owner.do(http.MethodPost, "/api/v1/deployments/summary/production/runs", `{"inputs":{"text": 9007199254740995}}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	require.Contains(t, lastInputs(), `"9007199254740995"`, "the API reads numbers as json.Number too (decodeJSON)")
}

func TestWebhookPausedWhileItsRunIsCreated(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	owner := a.newAPIClient("race@example.com", teams.RoleOwner)
	dep := decode[apiDeployed](t, owner.do(http.MethodPost, "/api/v1/templates/summary/deploy", `{"environment":"production"}`))
	ctx := context.Background()
	// A pause that lands after the delivery was read and checked, inside
	// the transaction that creates its run (SQLite runs the trigger there).
	_, err := a.DB.ExecContext(ctx, `CREATE TRIGGER pause_on_delivery AFTER INSERT ON webhook_deliveries
		BEGIN UPDATE deployments SET paused = 1 WHERE id = NEW.deployment_id; END`)
	require.NoError(t, err)

	res := a.deliver(dep.Deployment.WebhookURL, dep.WebhookSecret, time.Now().Unix(), `{"text":"paused meanwhile"}`)
	require.Equal(t, http.StatusConflict, res.StatusCode, res.Body)
	require.Contains(t, decode[apiFailure](t, res).Error.Message, "paused")
	require.Zero(t, a.countRuns())

	_, err = a.DB.ExecContext(ctx, `DROP TRIGGER pause_on_delivery`)
	require.NoError(t, err)
	res = a.deliver(dep.Deployment.WebhookURL, dep.WebhookSecret, time.Now().Unix(), `{"text":"paused meanwhile"}`)
	require.Equal(t, http.StatusAccepted, res.StatusCode, "the refusal rolled back the pause and the delivery: %s", res.Body)

	// The API checks again in its transaction too; paused, it is refused.
	require.Equal(t, http.StatusOK, owner.do(http.MethodPost, "/api/v1/deployments/summary/production/pause", "").StatusCode)
	res = owner.do(http.MethodPost, "/api/v1/deployments/summary/production/runs", `{"inputs":{"text":"paused"}}`)
	require.Equal(t, http.StatusConflict, res.StatusCode, res.Body)
	require.Equal(t, 1, a.countRuns())
}

func TestDeploymentAPIRefusesSchedulesWithoutDefaults(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	owner := a.newAPIClient("defaults@example.com", teams.RoleOwner)
	team := a.teamOf("defaults@example.com")
	ownerActor := ownerOf(t, a, "defaults@example.com", team.ID)
	ctx := context.Background()
	deploy := func(version int) response {
		return owner.do(http.MethodPost, "/api/v1/templates/summary/deploy", fmt.Sprintf(`{"environment":"production","version":%d}`, version))
	}
	require.Equal(t, http.StatusCreated, deploy(1).StatusCode)
	_, v1, err := a.App.Templates.Get(ctx, ownerActor, "summary")
	require.NoError(t, err)
	spec, err := v1.Spec("summary")
	require.NoError(t, err)
	spec.Inputs[0].Default = "Scheduled text"
	_, _, err = a.App.Templates.Save(ctx, ownerActor, "summary", spec, "a default")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, deploy(2).StatusCode)
	_, err = a.App.Deployments.SetSchedule(ctx, ownerActor, "summary", "production", "0 9 * * *")
	require.NoError(t, err)

	const needsDefault = `Scheduled runs use the inputs' defaults: give "text" a default or make it optional first.`
	res := deploy(1)
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, res.Body)
	require.Contains(t, decode[apiFailure](t, res).Error.Fields["version"], needsDefault)

	require.Equal(t, http.StatusOK, owner.do(http.MethodPost, "/api/v1/deployments/summary/production/pause", "").StatusCode)
	_, err = a.DB.ExecContext(ctx, `UPDATE deployments SET version = 1`) // a schedule set before the rule
	require.NoError(t, err)
	res = owner.do(http.MethodPost, "/api/v1/deployments/summary/production/resume", "")
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, res.Body)
	require.Equal(t, needsDefault, decode[apiFailure](t, res).Error.Fields["schedule"])
}
