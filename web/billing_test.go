package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/apikeys"
	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/billing"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/pricing"
	"github.com/nofxhq/nofx/internal/teams"
)

// setPlanLimits changes plan id as a site admin would.
func (a *app) setPlanLimits(id string, c billing.PlanChange) {
	a.t.Helper()
	_, err := a.App.Billing.UpdatePlan(context.Background(), audit.Entry{Actor: "test"}, id, c)
	require.NoError(a.t, err)
}

func ptr[T any](v T) *T { return &v }

// keyFor makes an owner's API key for email's first team.
func (a *app) keyFor(email string) string {
	a.t.Helper()
	ctx := context.Background()
	user, err := auth.UserByEmail(ctx, a.DB, email)
	require.NoError(a.t, err)
	ms, err := teams.ForUser(ctx, a.DB, user.ID)
	require.NoError(a.t, err)
	_, secret, err := apikeys.Create(ctx, a.DB, ms[0].ID, "test", teams.RoleOwner, user.ID, nil)
	require.NoError(a.t, err)
	return secret
}

const promptRun = `{"prompt":"hello","provider":"simulated","model":"echo"}`

type billingResponse struct {
	Plan struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"plan"`
	Period struct {
		Start string `json:"start"`
		End   string `json:"end"`
	} `json:"period"`
	Limits struct {
		RunsPerMonth int64 `json:"runs_per_month"`
		Concurrency  int   `json:"concurrency"`
	} `json:"limits"`
	Usage struct {
		Runs    int64 `json:"runs"`
		Members int64 `json:"members"`
	} `json:"usage"`
	Warnings []struct {
		Metric    string `json:"metric"`
		Threshold int64  `json:"threshold"`
		Message   string `json:"message"`
	} `json:"warnings"`
	Billing string `json:"billing"`
}

// A team at its runs limit is refused with 402 plan_limit and nothing is
// written; the billing API shows the plan, the period, the usage and the
// warnings; the owner's move to a bigger plan lets runs start again.
func TestRunsLimitAnswers402AndBillingAPIShowsUsage(t *testing.T) {
	onBothDatabases(t, func(t *testing.T, a *app) {
		a.setPlanLimits("free", billing.PlanChange{Runs: ptr(int64(5))})
		c := a.newAPIClient("owner@example.com", teams.RoleOwner)
		for range 5 {
			res := c.do(http.MethodPost, "/api/v1/runs", promptRun)
			require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
		}
		// The run is counted as its transaction ends: a refused one leaves
		// no run, step, job, event or audit entry behind.
		const written = `SELECT (SELECT COUNT(*) FROM runs) + (SELECT COUNT(*) FROM steps) + (SELECT COUNT(*) FROM river_job)
			+ (SELECT COUNT(*) FROM run_events) + (SELECT COUNT(*) FROM audit_log)`
		require.Eventually(t, func() bool { // the five finish, so that their steps write nothing more meanwhile
			var open int
			require.NoError(t, db.Get(context.Background(), a.DB, &open, `SELECT COUNT(*) FROM runs WHERE finished_at IS NULL`))
			return open == 0
		}, 30*time.Second, 10*time.Millisecond)
		var before int
		require.NoError(t, db.Get(context.Background(), a.DB, &before, written))

		res := c.do(http.MethodPost, "/api/v1/runs", promptRun)
		require.Equal(t, http.StatusPaymentRequired, res.StatusCode, res.Body)
		body := decode[struct {
			Error struct {
				Code    string            `json:"code"`
				Message string            `json:"message"`
				Fields  map[string]string `json:"fields"`
			} `json:"error"`
		}](t, res)
		require.Equal(t, "plan_limit", body.Error.Code)
		require.Equal(t, "The Free plan includes 5 runs a month and this team has started 5 this period. Upgrade the plan to start more runs.", body.Error.Message)
		require.Equal(t, map[string]string{"limit": "runs", "plan": "free", "used": "5", "quota": "5"}, body.Error.Fields)
		var after int
		require.NoError(t, db.Get(context.Background(), a.DB, &after, written))
		require.Equal(t, before, after, "a refused run writes nothing")

		b := decode[billingResponse](t, c.do(http.MethodGet, "/api/v1/billing", ""))
		require.Equal(t, "free", b.Plan.ID)
		require.Equal(t, int64(5), b.Limits.RunsPerMonth)
		require.Equal(t, int64(5), b.Usage.Runs)
		require.Equal(t, int64(1), b.Usage.Members)
		require.Equal(t, "local", b.Billing)
		require.NotEmpty(t, b.Period.Start)
		require.Len(t, b.Warnings, 1, "the highest warning of the runs limit")
		require.Equal(t, int64(100), b.Warnings[0].Threshold)
		require.Contains(t, b.Warnings[0].Message, "5 of 5 runs")

		// A member may read billing; only the owner changes the plan.
		owner := a.client()
		require.Equal(t, http.StatusSeeOther, owner.logIn("owner@example.com", password).StatusCode)
		res = owner.submit("/billing", "/billing/plan", url.Values{"plan": {"starter"}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
		res = c.do(http.MethodPost, "/api/v1/runs", promptRun)
		require.Equal(t, http.StatusCreated, res.StatusCode, "the Starter plan has room: %s", res.Body)
		var entries int
		require.NoError(t, db.Get(context.Background(), a.DB, &entries, `SELECT COUNT(*) FROM audit_log WHERE action = 'billing.plan_changed'`))
		require.Equal(t, 1, entries)
	})
}

// The billing page shows a bar per limit with its figures in words, the
// charts by day, and the plans; only the owner sees the buttons that
// change the plan, and a member's attempt is refused.
func TestBillingPageBarsChartsAndPlanChange(t *testing.T) {
	a := newApp(t)
	a.setPlanLimits("free", billing.PlanChange{Runs: ptr(int64(10))})
	owner := a.client()
	owner.signUp("owner@example.com", password)
	api := &apiClient{t: t, app: a, key: a.keyFor("owner@example.com")}
	for range 9 {
		require.Equal(t, http.StatusCreated, api.do(http.MethodPost, "/api/v1/runs", promptRun).StatusCode)
	}
	res := owner.get("/billing")
	require.Equal(t, http.StatusOK, res.StatusCode)
	doc := res.Doc(t)
	require.Equal(t, "Free", doc.Find(`[data-testid="plan"]`).Text())
	runsMeter := doc.Find(`[data-testid="meter-runs"]`)
	require.True(t, runsMeter.HasClass("meter-warn"), "amber from 80 %%")
	text := strings.Join(strings.Fields(runsMeter.Find(`[data-testid="meter-runs-text"]`).Text()), " ")
	require.Contains(t, text, "9 of 10 used · resets on")
	require.Contains(t, text, "(nearly at the limit)", "the state is said in words, not by colour alone")
	value, _ := runsMeter.Find(`[role="meter"]`).Attr("aria-valuenow")
	require.Equal(t, "90", value)
	require.Equal(t, 1, doc.Find(`[data-testid="runs-chart"] svg`).Length())
	require.Positive(t, doc.Find(`[data-testid="runs-chart"] rect.chart-bar[height="120"]`).Length(), "today's bar is the tallest")
	require.Equal(t, 1, doc.Find(`[data-testid="plan-card-free"] .badge`).Length(), "the current plan is marked")
	require.Equal(t, 1, doc.Find(`[data-testid="choose-pro"]`).Length())
	require.Zero(t, doc.Find(`[data-testid="choose-enterprise"]`).Length(), "a contract plan is not chosen here")
	banner := strings.Join(strings.Fields(doc.Find(`[data-testid="usage-banner"]`).Text()), " ")
	require.Contains(t, banner, "This team has used 90% of the Free plan's runs limit this period (9 of 10 runs).")

	// A member sees the page without the buttons, and cannot post the form.
	ctx := context.Background()
	member := a.client()
	member.signUp("member@example.com", password)
	ownerUser, err := auth.UserByEmail(ctx, a.DB, "owner@example.com")
	require.NoError(t, err)
	ms, err := teams.ForUser(ctx, a.DB, ownerUser.ID)
	require.NoError(t, err)
	memberUser, err := auth.UserByEmail(ctx, a.DB, "member@example.com")
	require.NoError(t, err)
	require.NoError(t, teams.AddMember(ctx, a.DB, ms[0].ID, memberUser.ID, teams.RoleAdmin))
	member.submit("/runs", "/teams/switch", url.Values{"team_id": {fmt.Sprint(ms[0].ID)}})
	doc = member.get("/billing").Doc(t)
	require.Zero(t, doc.Find(`[data-testid^="choose-"]`).Length())
	res = member.submit("/billing", "/billing/plan", url.Values{"plan": {"pro"}})
	require.Equal(t, http.StatusForbidden, res.StatusCode)

	res = owner.submit("/billing", "/billing/plan", url.Values{"plan": {"enterprise"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "Free", owner.get("/billing").Doc(t).Find(`[data-testid="plan"]`).Text(), "a contract plan is not self-serve")
	res = owner.submit("/billing", "/billing/plan", url.Values{"plan": {"gold"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Contains(t, owner.get("/billing").Body, "Choose one of the plans on this page.")
	res = owner.submit("/billing", "/billing/plan", url.Values{"plan": {"pro"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	doc = owner.get("/billing").Doc(t)
	require.Equal(t, "Pro", doc.Find(`[data-testid="plan"]`).Text())
	require.Zero(t, doc.Find(`[data-testid="usage-banner"]`).Length(), "the warning was of the Free plan's period usage, now far from Pro's limit")
}

// A plan's API requests a minute limit its team, not another team.
func TestPlanAPIRateLimitsTheTeam(t *testing.T) {
	a := newApp(t)
	a.setPlanLimits("free", billing.PlanChange{APIPerMinute: ptr(3)})
	a.setPlanLimits("pro", billing.PlanChange{APIPerMinute: ptr(-1)})
	c := a.newAPIClient("a@example.com", teams.RoleOwner)
	for range 3 {
		require.Equal(t, http.StatusOK, c.do(http.MethodGet, "/api/v1/me", "").StatusCode)
	}
	res := c.do(http.MethodGet, "/api/v1/me", "")
	require.Equal(t, http.StatusTooManyRequests, res.StatusCode)
	require.Equal(t, "rate_limited", apiErrorCode(t, res))
	require.NotEmpty(t, res.Header.Get("Retry-After"))
	require.Contains(t, res.Body, "Your team's plan allows 3 API requests a minute.")

	other := a.newAPIClient("b@example.com", teams.RoleOwner)
	require.Equal(t, http.StatusOK, other.do(http.MethodGet, "/api/v1/me", "").StatusCode, "another team has its own bucket")

	// On an unlimited plan, nothing is counted (once the cached rate expires
	// for an existing team; a fresh team reads its plan at once).
	third := a.newAPIClient("c@example.com", teams.RoleOwner)
	ctx := context.Background()
	u, err := auth.UserByEmail(ctx, a.DB, "c@example.com")
	require.NoError(t, err)
	ms, err := teams.ForUser(ctx, a.DB, u.ID)
	require.NoError(t, err)
	require.NoError(t, a.App.Billing.SetTeamPlan(ctx, audit.Entry{Actor: "test"}, ms[0].ID, "pro"))
	for range 10 {
		require.Equal(t, http.StatusOK, third.do(http.MethodGet, "/api/v1/me", "").StatusCode)
	}
}

// Invitations past the plan's members limit are refused with 402, next to
// the form on the page.
func TestMembersLimitRefusesInvitations(t *testing.T) {
	onBothDatabases(t, func(t *testing.T, a *app) {
		a.setPlanLimits("free", billing.PlanChange{Members: ptr(2)})
		c := a.newAPIClient("owner@example.com", teams.RoleOwner)
		res := c.do(http.MethodPost, "/api/v1/invites", `{"email":"b@example.com","role":"member"}`)
		require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
		res = c.do(http.MethodPost, "/api/v1/invites", `{"email":"c@example.com","role":"member"}`)
		require.Equal(t, http.StatusPaymentRequired, res.StatusCode, res.Body)
		require.Equal(t, "plan_limit", apiErrorCode(t, res))
		require.Contains(t, res.Body, "The Free plan allows 2 members, invitations included, and this team has 2.")

		owner := a.client()
		require.Equal(t, http.StatusSeeOther, owner.logIn("owner@example.com", password).StatusCode)
		res = owner.submit("/team/invites", "/team/invites", url.Values{"email": {"d@example.com"}, "role": {"member"}})
		require.Equal(t, http.StatusPaymentRequired, res.StatusCode)
		doc := res.Doc(t)
		require.Contains(t, doc.Find(`[data-testid="invite-form"] [data-testid="plan-limit"]`).Text(), "allows 2 members")
		require.Equal(t, "/billing", doc.Find(`[data-testid="plan-limit-upgrade"]`).AttrOr("href", ""))
		var invites int
		require.NoError(t, db.Get(context.Background(), a.DB, &invites, `SELECT COUNT(*) FROM invites`))
		require.Equal(t, 1, invites, "nothing written for the refused ones")
	})
}

// Site admins edit plans (problems next to their fields, nothing saved) and
// move teams between plans, each change audited.
func TestAdminPlansAndTeams(t *testing.T) {
	a := newApp(t)
	admin := a.client()
	admin.signUp("admin@example.com", password) // the first user is a site admin
	owner := a.client()
	owner.signUp("owner@example.com", password)

	res := admin.get("/admin/plans")
	require.Equal(t, http.StatusOK, res.StatusCode)
	doc := res.Doc(t)
	require.Equal(t, "200", doc.Find(`#runs-free`).AttrOr("value", ""))
	require.Equal(t, "5.00", doc.Find(`#spend-free`).AttrOr("value", ""))
	require.Equal(t, "-1", doc.Find(`#runs-enterprise`).AttrOr("value", ""))

	form := url.Values{"name": {"Free"}, "monthly": {"0"}, "yearly": {"0"}, "runs": {"lots"}, "spend": {"2.5"}, "concurrency": {"0"},
		"members": {"5"}, "api_per_minute": {"120"}, "instance_keys": {"on"}}
	res = admin.submit("/admin/plans", "/admin/plans/free", form)
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	doc = res.Doc(t)
	require.Contains(t, doc.Find(`#runs-free-error`).Text(), "Use a whole number")
	require.Equal(t, "lots", doc.Find(`#runs-free`).AttrOr("value", ""), "what was typed is kept")
	p, err := billing.GetPlan(context.Background(), a.DB, "free")
	require.NoError(t, err)
	require.Equal(t, int64(200), p.Runs, "nothing saved")

	form.Set("runs", "50")
	form.Set("concurrency", "2")
	form.Del("instance_keys")
	res = admin.submit("/admin/plans", "/admin/plans/free", form)
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	p, err = billing.GetPlan(context.Background(), a.DB, "free")
	require.NoError(t, err)
	require.Equal(t, int64(50), p.Runs)
	require.Equal(t, int64(2_500_000), p.SpendMicros)
	require.False(t, p.InstanceKeys)
	require.Equal(t, http.StatusNotFound, admin.submit("/admin/plans", "/admin/plans/gold", form).StatusCode)

	res = admin.get("/admin/teams")
	require.Equal(t, http.StatusOK, res.StatusCode)
	doc = res.Doc(t)
	row := doc.Find(`[data-testid="team-owner"]`)
	require.Equal(t, 1, row.Length(), res.Body)
	require.Contains(t, row.Text(), "owner@example.com")
	action := row.Find("form").AttrOr("action", "")
	res = admin.submit("/admin/teams", action, url.Values{"plan": {"pro"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	doc = admin.get("/admin/teams").Doc(t)
	require.Equal(t, "pro", doc.Find(`[data-testid="plan-select-owner"] option[selected]`).AttrOr("value", ""))
	require.Equal(t, http.StatusNotFound, admin.submit("/admin/teams", "/admin/teams/999999/plan", url.Values{"plan": {"pro"}}).StatusCode)

	var actions []string
	require.NoError(t, db.Select(context.Background(), a.DB, &actions, `SELECT action FROM audit_log WHERE actor = 'admin@example.com' AND action IN ('plan.update', 'billing.plan_changed') ORDER BY id`))
	require.Equal(t, []string{"plan.update", "billing.plan_changed"}, actions)
	require.Equal(t, http.StatusForbidden, owner.get("/admin/plans").StatusCode, "not a site admin")
}

// A webhook delivery past the team's runs limit is refused with 402,
// audited, and listed on the deployment's page.
func TestWebhookPastTheRunsLimitIsRefusedAndShown(t *testing.T) {
	a := newApp(t)
	a.setPlanLimits("free", billing.PlanChange{Runs: ptr(int64(1))})
	owner := a.newAPIClient("hooks@example.com", teams.RoleOwner)
	res := owner.do(http.MethodPost, "/api/v1/templates/summary/deploy", `{"environment":"production"}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	dep := decode[apiDeployed](t, res)
	body := `{"text":"summarise this"}`
	require.Equal(t, http.StatusAccepted, a.deliver(dep.Deployment.WebhookURL, dep.WebhookSecret, time.Now().Unix(), body).StatusCode)
	res = a.deliver(dep.Deployment.WebhookURL, dep.WebhookSecret, time.Now().Unix()+1, body)
	require.Equal(t, http.StatusPaymentRequired, res.StatusCode, res.Body)
	require.Equal(t, "plan_limit", apiErrorCode(t, res))
	require.Equal(t, 1, a.countRuns())

	browser := a.client()
	require.Equal(t, http.StatusSeeOther, browser.logIn("hooks@example.com", password).StatusCode)
	doc := browser.get("/templates/summary/deployments").Doc(t)
	refusals := strings.Join(strings.Fields(doc.Find(`[data-testid="refusals-production"]`).Text()), " ")
	require.Contains(t, refusals, "webhook delivery refused: The Free plan includes 1 run a month")
}

// A step held back by the spend limit says so on the run page and in the
// API, and starts once a site admin raises the limit.
func TestSpendLimitWaitOnTheRunPage(t *testing.T) {
	onBothDatabases(t, func(t *testing.T, a *app) {
		admin := a.client()
		admin.signUp("admin@example.com", password) // the first user: a site admin
		require.NoError(t, pricing.Set(context.Background(), a.DB, "simulated", "echo", 10_000_000_000, 10_000_000_000, 0))
		a.setPlanLimits("free", billing.PlanChange{SpendMicros: ptr(int64(50_000))}) // 5 cents; a step costs 8
		c := &apiClient{t: t, app: a, key: a.keyFor("admin@example.com")}
		res := c.do(http.MethodPost, "/api/v1/runs", `{"plan":{"goal":"spend","steps":[
			{"name":"a","kind":"llm","provider":"simulated","model":"echo","prompt":"one two three four"},
			{"name":"b","kind":"llm","provider":"simulated","model":"echo","prompt":"one two three four","needs":["a"]}]}}`)
		require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
		id := decode[apiRun](t, res).ID
		run := c.waitRun(id, "waiting")
		require.Equal(t, "succeeded", run.Steps[0].Status)
		require.Equal(t, "waiting", run.Steps[1].Status)
		require.Contains(t, c.do(http.MethodGet, fmt.Sprintf("/api/v1/runs/%d", id), "").Body, `"waiting_on":"spend_limit"`)

		doc := admin.get(fmt.Sprintf("/runs/%d", id)).Doc(t)
		wait := strings.Join(strings.Fields(doc.Find(`[data-testid="step-spend-wait-b"]`).Text()), " ")
		require.Contains(t, wait, "Waiting: Spend limit reached: the team has spent $0.08 of the Free plan's $0.05 this period.")
		require.Contains(t, wait, "then it starts by itself")

		form := url.Values{"name": {"Free"}, "monthly": {"0"}, "yearly": {"0"}, "runs": {"200"}, "spend": {"1"}, "concurrency": {"4"},
			"members": {"5"}, "api_per_minute": {"120"}, "instance_keys": {"on"}}
		require.Equal(t, http.StatusSeeOther, admin.submit("/admin/plans", "/admin/plans/free", form).StatusCode)
		run = c.waitRun(id, "succeeded")
		require.Equal(t, 1, run.Steps[1].Attempt, "the wait used no attempt")
	})
}
