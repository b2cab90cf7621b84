package web_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/teams"
)

// approvalPlan is a plan whose run waits for a person after a quick llm step.
const approvalPlan = `{"goal":"Draft and approve","steps":[
	{"name":"draft","kind":"llm","provider":"simulated","model":"echo","prompt":"Hello {{inputs.who}}"},
	{"name":"review","kind":"approval","needs":["draft"],"prompt":"Publish {{steps.draft.output}}?"}]}`

// startRun submits the new run form and returns the new run's id.
func (c *client) startRun(values url.Values) int64 {
	c.t.Helper()
	res := c.submit("/runs/new", "/runs", values)
	require.Equal(c.t, http.StatusSeeOther, res.StatusCode, res.Body)
	loc := res.Header.Get("Location")
	id, err := strconv.ParseInt(strings.TrimPrefix(loc, "/runs/"), 10, 64)
	require.NoError(c.t, err, "Location %q", loc)
	return id
}

// pageStatus is the run status a run page or list row shows, in lower case.
func pageStatus(s *goquery.Selection) string {
	return strings.ToLower(strings.TrimSpace(s.Find(`[data-testid=run-status]`).Text()))
}

// waitRunPage loads the run page until it shows status want, re-checking on
// each change of the run, for at most 20 seconds.
func (c *client) waitRunPage(id int64, want string) *goquery.Document {
	c.t.Helper()
	changes, unsubscribe := c.app.App.Broker.Subscribe(id)
	defer unsubscribe()
	deadline := time.After(20 * time.Second)
	for {
		res := c.get(fmt.Sprintf("/runs/%d", id))
		require.Equal(c.t, http.StatusOK, res.StatusCode)
		doc := res.Doc(c.t)
		if got := pageStatus(doc.Selection); got == want {
			// The page reads its timeline before the run, so this one may
			// show the status before the events that led to it; a page
			// read now has them all.
			res = c.get(fmt.Sprintf("/runs/%d", id))
			require.Equal(c.t, http.StatusOK, res.StatusCode)
			return res.Doc(c.t)
		}
		select {
		case <-changes:
		case <-deadline:
			c.t.Fatalf("run %d shows %q, not %q", id, pageStatus(doc.Selection), want)
		}
	}
}

func countRuns(t *testing.T, a *app) int {
	t.Helper()
	var n int
	require.NoError(t, db.Get(context.Background(), a.DB, &n, `SELECT COUNT(*) FROM runs`))
	return n
}

func flashText(doc *goquery.Document) string {
	return strings.TrimSpace(doc.Find(`[data-testid=flash]`).Text())
}

func TestRunsEmptyState(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.client()
	c.signUp("empty@example.com", password)

	doc := c.get("/runs").Doc(t)
	require.Equal(t, 1, doc.Find(`[data-testid=dashboard] [data-testid=empty-state]`).Length())
	require.Equal(t, "/runs/new", doc.Find(`[data-testid=empty-state] a[data-testid=start-run]`).AttrOr("href", ""))
	require.Equal(t, "/runs/new", doc.Find(`a[data-testid=new-run]`).AttrOr("href", ""))
	require.Zero(t, doc.Find(`[data-testid=runs-table]`).Length())

	form := c.get("/runs/new").Doc(t)
	require.Equal(t, "echo", form.Find(`#model`).AttrOr("value", ""))
	require.Equal(t, "simulated", form.Find(`#provider option[selected]`).AttrOr("value", ""))
	require.Equal(t, 1, form.Find(`textarea#prompt`).Length())
	require.Equal(t, 1, form.Find(`textarea#plan`).Length())
	require.Equal(t, 1, form.Find(`textarea#inputs`).Length())
}

func TestRunFromPromptRunsToSuccess(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.client()
	c.signUp("prompt@example.com", password)

	id := c.startRun(url.Values{"prompt": {"Say hello to the team"}, "provider": {"simulated"}, "model": {"echo"}})
	page := c.get(fmt.Sprintf("/runs/%d", id))
	require.Equal(t, http.StatusOK, page.StatusCode)
	doc := page.Doc(t)
	require.Equal(t, fmt.Sprintf("Run #%d started.", id), flashText(doc))
	require.Equal(t, "Say hello to the team", strings.TrimSpace(doc.Find(`[data-testid=run-goal]`).Text()))
	require.Equal(t, 1, doc.Find(`[data-testid=step-prompt]`).Length(), "the prompt's one step")
	live := doc.Find(`[data-testid=run-page]`)
	require.Equal(t, "sse", live.AttrOr("hx-ext", ""))
	require.Contains(t, live.AttrOr("sse-connect", ""), fmt.Sprintf("/runs/%d/live?after=", id))
	require.Equal(t, "polite", doc.Find(`#run-status-region`).AttrOr("aria-live", ""))
	swaps := map[string]int{}
	doc.Find(`[sse-swap]`).Each(func(_ int, s *goquery.Selection) { swaps[s.AttrOr("sse-swap", "")]++ })
	for name, n := range swaps {
		require.Equal(t, 1, n, "one container per live event, %q", name)
	}
	for _, name := range []string{"run-status", "run", "events", "step-prompt", "prompt-prompt", "output-prompt", "delta-prompt"} {
		require.Contains(t, swaps, name)
	}

	doc = c.waitRunPage(id, "succeeded")
	require.Equal(t, "Say hello to the team", doc.Find(`[data-testid=step-output-prompt]`).Text())
	require.Equal(t, "succeeded", strings.ToLower(strings.TrimSpace(doc.Find(`[data-testid=step-status-prompt]`).Text())))
	require.Contains(t, doc.Find(`[data-testid=step-prompt]`).Text(), "1 of 3", "attempts")
	require.Contains(t, doc.Find(`[data-testid=step-prompt]`).Text(), "simulated/echo")
	require.Contains(t, doc.Find(`[data-testid=run-tokens]`).Text(), "5 in · 5 out")
	timeline := doc.Find(`[data-testid=timeline]`).Text()
	require.Contains(t, timeline, "Run created")
	require.Contains(t, timeline, "prompt@example.com", "the timeline names who acted")
	require.Contains(t, timeline, "Run succeeded")
	require.Equal(t, 1, doc.Find(`[data-testid=timeline] time[datetime]`).First().Length())
	require.Zero(t, doc.Find(`[data-testid=cancel-run]`).Length(), "a finished run cannot be cancelled")
	require.Zero(t, doc.Find(`[data-testid=retry-run]`).Length(), "nor retried when it succeeded")
	require.Equal(t, 1, doc.Find(`[data-testid=rerun-run]`).Length())

	list := c.get("/runs").Doc(t)
	row := list.Find(fmt.Sprintf(`[data-testid=run-row-%d]`, id))
	require.Equal(t, 1, row.Length())
	require.Equal(t, "succeeded", pageStatus(row))
	require.Equal(t, fmt.Sprintf("/runs/%d", id), row.Find(`a.run-goal`).AttrOr("href", ""))
	require.Contains(t, row.Text(), "prompt@example.com")
	bar := row.Find(`[role=progressbar]`)
	require.Equal(t, "1", bar.AttrOr("aria-valuenow", ""))
	require.Equal(t, "1", bar.AttrOr("aria-valuemax", ""))
	require.Equal(t, "1 of 1 step", bar.AttrOr("aria-valuetext", ""))
	require.NotEmpty(t, bar.AttrOr("aria-label", ""))
	require.Equal(t, "1/1", strings.TrimSpace(bar.Find(`.progress-text`).Text()))
	require.Equal(t, 1, row.Find(`time[datetime]`).Length())
}

// TestProgressSaysWhatFailedAndWasSkipped checks that a failed run's bar
// and words count the steps that succeeded, failed and did not run, on the
// list and the run's page, and a cancelled run's those cancelled.
func TestProgressSaysWhatFailedAndWasSkipped(t *testing.T) {
	onBothDatabases(t, func(t *testing.T, a *app) {
		web := a.client()
		web.signUp("progress@example.com", password)
		c := &apiClient{t: t, app: a, key: a.keyFor("progress@example.com")}
		res := c.do(http.MethodPost, "/api/v1/runs", `{"plan":{"goal":"half fails","steps":[
			{"name":"ok","kind":"text","prompt":"fine"},
			{"name":"bad","kind":"llm","provider":"simulated","model":"echo","prompt":"x","options":{"fail_rate":1,"fail_status":400}},
			{"name":"after","kind":"text","prompt":"never","needs":["bad"]}]}}`)
		require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
		failed := decode[apiRun](t, res).ID
		c.waitRun(failed, "failed")
		res = c.do(http.MethodPost, "/api/v1/runs", `{"plan":{"goal":"stopped","steps":[
			{"name":"gate","kind":"approval","prompt":"ok?"},{"name":"after","kind":"text","prompt":"x","needs":["gate"]}]}}`)
		require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
		cancelled := decode[apiRun](t, res).ID
		c.waitRun(cancelled, "waiting")
		res = c.do(http.MethodPost, fmt.Sprintf("/api/v1/runs/%d/cancel", cancelled), "")
		require.Equal(t, http.StatusOK, res.StatusCode, res.Body)

		list := web.get("/runs").Doc(t)
		for _, want := range []struct {
			id           int64
			words, short string
			rects        [3]string // the widths of succeeded, failed and not run
		}{
			{failed, "1 of 3 succeeded, 1 failed, 1 skipped", "1/3, 1 failed, 1 skipped", [3]string{"1", "1", "1"}},
			{cancelled, "0 of 2 succeeded, 2 cancelled", "0/2, 2 cancelled", [3]string{"0", "0", "2"}},
		} {
			bar := list.Find(fmt.Sprintf(`[data-testid=run-row-%d] [role=progressbar]`, want.id))
			require.Equal(t, want.words, bar.AttrOr("aria-valuetext", ""), "run %d", want.id)
			require.Equal(t, want.short, strings.TrimSpace(bar.Find(`.progress-text`).Text()), "run %d", want.id)
			for i, class := range []string{"bar-succeeded", "bar-failed", "bar-skipped"} {
				require.Equal(t, want.rects[i], bar.Find(`rect.`+class).AttrOr("width", ""), "run %d %s", want.id, class)
			}
		}
		page := web.get(fmt.Sprintf("/runs/%d", failed)).Doc(t)
		require.Equal(t, "1 of 3 succeeded, 1 failed, 1 skipped", strings.TrimSpace(page.Find(`.run-progress-words`).Text()),
			"not \"3 of 3 steps done\"")
	})
}

func TestRunsListFilters(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.client()
	c.signUp("filters@example.com", password)

	done := c.startRun(url.Values{"prompt": {"quick one"}, "provider": {"simulated"}, "model": {"echo"}})
	waiting := c.startRun(url.Values{"plan": {approvalPlan}, "inputs": {`{"who":"world"}`}})
	c.waitRunPage(done, "succeeded")
	c.waitRunPage(waiting, "waiting")

	rows := func(path string) []string {
		t.Helper()
		res := c.get(path)
		require.Equal(t, http.StatusOK, res.StatusCode, path)
		var ids []string
		res.Doc(t).Find(`[data-testid=runs-table] tbody tr`).Each(func(_ int, s *goquery.Selection) {
			ids = append(ids, strings.TrimPrefix(s.AttrOr("data-testid", ""), "run-row-"))
		})
		return ids
	}
	require.Equal(t, []string{itoa(waiting), itoa(done)}, rows("/runs"), "newest first")
	require.Equal(t, []string{itoa(waiting)}, rows("/runs?status=waiting"))
	require.Equal(t, []string{itoa(done)}, rows("/runs?status=succeeded"))
	today := time.Now().UTC().Format("2006-01-02")
	require.Len(t, rows("/runs?from="+today+"&to="+today), 2)

	doc := c.get("/runs?status=cancelled").Doc(t)
	require.Equal(t, 1, doc.Find(`[data-testid=no-matches]`).Length())
	require.Equal(t, "cancelled", doc.Find(`#filter-status option[selected]`).AttrOr("value", ""), "the filter keeps its value")
	require.Zero(t, doc.Find(`#filter-template`).Length(), "no template filter without templates")
	doc = c.get("/runs?to=2001-01-01").Doc(t)
	require.Equal(t, 1, doc.Find(`[data-testid=no-matches]`).Length())

	res := c.get("/runs?status=bogus&from=notadate")
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	doc = res.Doc(t)
	require.Contains(t, doc.Find(`[data-testid=error-status]`).Text(), "Use one of")
	require.Contains(t, doc.Find(`[data-testid=error-from]`).Text(), "Use a date like")
	require.Equal(t, "true", doc.Find(`#filter-status`).AttrOr("aria-invalid", ""))
	require.Equal(t, "true", doc.Find(`#filter-from`).AttrOr("aria-invalid", ""))
	require.Equal(t, "notadate", doc.Find(`#filter-from`).AttrOr("value", ""), "what was typed is kept")
	require.Zero(t, doc.Find(`[data-testid=error-to]`).Length())
	require.Zero(t, doc.Find(`[data-testid=runs-table]`).Length())
}

func TestRunsListPagination(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.client()
	c.signUp("pager@example.com", password)
	var ids []int64
	for i := range 3 {
		id := c.startRun(url.Values{"prompt": {fmt.Sprintf("run number %d", i)}, "provider": {"simulated"}, "model": {"echo"}})
		c.waitRunPage(id, "succeeded")
		ids = append(ids, id)
	}

	doc := c.get("/runs?status=succeeded&limit=2").Doc(t)
	require.Equal(t, 2, doc.Find(`[data-testid=runs-table] tbody tr`).Length())
	require.Equal(t, 1, doc.Find(fmt.Sprintf(`[data-testid=run-row-%d]`, ids[2])).Length())
	require.Equal(t, 1, doc.Find(fmt.Sprintf(`[data-testid=run-row-%d]`, ids[1])).Length())
	next, ok := doc.Find(`[data-testid=next-page]`).Attr("href")
	require.True(t, ok, "an older page")
	u, err := url.Parse(next)
	require.NoError(t, err)
	require.Equal(t, "/runs", u.Path)
	require.Equal(t, itoa(ids[1]), u.Query().Get("before"))
	require.Equal(t, "succeeded", u.Query().Get("status"), "filters are kept")
	require.Equal(t, "2", u.Query().Get("limit"))

	doc = c.get(next).Doc(t)
	require.Equal(t, 1, doc.Find(`[data-testid=runs-table] tbody tr`).Length())
	require.Equal(t, 1, doc.Find(fmt.Sprintf(`[data-testid=run-row-%d]`, ids[0])).Length())
	require.Zero(t, doc.Find(`[data-testid=next-page]`).Length(), "the last page")
	require.Equal(t, "/runs?limit=2&status=succeeded", doc.Find(`[data-testid=first-page]`).AttrOr("href", ""))

	doc = c.get(fmt.Sprintf("/runs?before=%d", ids[0])).Doc(t)
	require.Contains(t, doc.Find(`[data-testid=no-matches]`).Text(), "no older runs")
	require.Equal(t, http.StatusUnprocessableEntity, c.get("/runs?before=abc").StatusCode)
	res := c.get("/runs?template=" + strings.Repeat("x", 64))
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Contains(t, res.Doc(t).Find(`[data-testid=error-template]`).Text(), "at most 63 characters")
}

func TestNewRunFormErrors(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.client()
	c.signUp("form@example.com", password)

	for _, tc := range []struct {
		name   string
		values url.Values
		field  string // data-testid error-<field>
		msg    string
		keep   string // a textarea whose typed value must be kept
	}{
		{"empty prompt", url.Values{"prompt": {"  "}, "provider": {"simulated"}, "model": {"echo"}}, "prompt", "Write a prompt", ""},
		{"unknown provider", url.Values{"prompt": {"hi"}, "provider": {"nope"}, "model": {"echo"}}, "provider", `unknown provider "nope"`, "prompt"},
		{"unknown model", url.Values{"prompt": {"hi"}, "provider": {"simulated"}, "model": {"gpt-0"}}, "model", `unknown model "gpt-0"`, "prompt"},
		{"bad plan JSON", url.Values{"plan": {`{"goal": "x", "steps": [`}}, "plan", "not valid JSON", "plan"},
		{"missing input", url.Values{"plan": {approvalPlan}}, "inputs", "who: The plan uses this input", "plan"},
		{"inputs not an object", url.Values{"plan": {approvalPlan}, "inputs": {`["who"]`}}, "inputs", "must be a JSON object", "inputs"},
		{"prompt input missing", url.Values{"prompt": {"About {{inputs.topic}}"}, "provider": {"simulated"}, "model": {"echo"}}, "inputs", "topic:", "prompt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := c.submit("/runs/new", "/runs", tc.values)
			require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
			doc := res.Doc(t)
			require.Contains(t, doc.Find(`[data-testid=error-`+tc.field+`]`).Text(), tc.msg)
			require.Equal(t, "true", doc.Find(`#`+tc.field).AttrOr("aria-invalid", ""))
			require.Contains(t, doc.Find(`#`+tc.field).AttrOr("aria-describedby", ""), tc.field+"-error")
			require.Equal(t, 1, doc.Find(`[data-testid=form-error]`).Length())
			if tc.keep != "" {
				require.Equal(t, tc.values.Get(tc.keep), doc.Find(`textarea#`+tc.keep).Text(), "what was typed is kept")
			}
		})
	}

	t.Run("problems of plan steps are listed", func(t *testing.T) {
		plan := `{"goal":"dup","steps":[{"name":"a","kind":"text","prompt":"x"},{"name":"a","kind":"dance"}]}`
		res := c.submit("/runs/new", "/runs", url.Values{"plan": {plan}})
		require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
		doc := res.Doc(t)
		problems := doc.Find(`[data-testid=plan-problems]`).Text()
		require.Contains(t, problems, "steps[1].")
		require.Equal(t, "true", doc.Find(`#plan`).AttrOr("aria-invalid", ""))
		require.Contains(t, doc.Find(`#plan`).AttrOr("aria-describedby", ""), "plan-problems")
		_, open := doc.Find(`details.advanced`).Attr("open")
		require.True(t, open, "the plan section stays open")
	})

	require.Zero(t, countRuns(t, a), "nothing was created")
}

func TestRunActionsFromThePage(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.client()
	c.signUp("owner@example.com", password)
	page := func(id int64) string { return fmt.Sprintf("/runs/%d", id) }
	post := func(id int64, action string, values url.Values) response {
		t.Helper()
		return c.submit(page(id), page(id)+"/"+action, values)
	}

	id := c.startRun(url.Values{"plan": {approvalPlan}, "inputs": {`{"who":"world"}`}})
	doc := c.waitRunPage(id, "waiting")
	require.Equal(t, "waiting", strings.ToLower(strings.TrimSpace(doc.Find(`[data-testid=step-status-review]`).Text())))
	require.Contains(t, doc.Find(`[data-testid=approval-review]`).Text(), "Publish Hello world?", "the rendered message")
	require.Equal(t, 1, doc.Find(`[data-testid=approve-review]`).Length())
	require.Equal(t, page(id)+"/steps/review/reject", doc.Find(`[data-testid=reject-review]`).AttrOr("formaction", ""))
	require.Equal(t, 1, doc.Find(`[data-testid=cancel-run]`).Length())
	require.Zero(t, doc.Find(`[data-testid=retry-run]`).Length())
	require.Contains(t, doc.Find(`[data-testid=step-draft] details`).Text(), "Hello world", "the rendered prompt")

	// Approve with a comment: the run succeeds.
	res := post(id, "steps/review/approve", url.Values{"comment": {"Looks good"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	require.Equal(t, page(id), res.Header.Get("Location"))
	doc = c.get(page(id)).Doc(t)
	require.Equal(t, "Step review approved.", flashText(doc))
	doc = c.waitRunPage(id, "succeeded")
	require.Equal(t, "Approved: Looks good", strings.Join(strings.Fields(doc.Find(`[data-testid=decision-review]`).Text()), " "))
	timeline := doc.Find(`[data-testid=timeline]`).Text()
	require.Contains(t, timeline, "Approved: Looks good")
	require.Equal(t, 1, strings.Count(timeline, "Waiting for approval"), "the step's wait, said once:\n%s", timeline)
	require.Contains(t, timeline, "Run waiting for a decision")
	require.Zero(t, doc.Find(`[data-testid=approve-review]`).Length())
	require.Zero(t, doc.Find(`[data-testid=cancel-run]`).Length())
	require.Equal(t, http.StatusConflict, post(id, "cancel", url.Values{}).StatusCode, "a finished run cannot be cancelled")
	require.Equal(t, http.StatusConflict, post(id, "steps/review/approve", url.Values{}).StatusCode)

	// Rerun: a new run, linked to the first.
	res = post(id, "rerun", url.Values{})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	rerun, err := strconv.ParseInt(strings.TrimPrefix(res.Header.Get("Location"), "/runs/"), 10, 64)
	require.NoError(t, err)
	require.NotEqual(t, id, rerun)
	doc = c.get(page(rerun)).Doc(t)
	require.Contains(t, flashText(doc), "rerun of run #"+itoa(id))
	require.Equal(t, page(id), doc.Find(`[data-testid=rerun-of]`).AttrOr("href", ""))

	// Reject: the run fails, and can be retried.
	c.waitRunPage(rerun, "waiting")
	res = post(rerun, "steps/review/reject", url.Values{"comment": {"Not yet"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	doc = c.get(page(rerun)).Doc(t)
	require.Equal(t, "Step review rejected.", flashText(doc))
	doc = c.waitRunPage(rerun, "failed")
	require.Contains(t, doc.Find(`[data-testid=step-error-review]`).Text(), "Not yet")
	require.Contains(t, doc.Find(`[data-testid=run-error]`).Text(), "Not yet")
	require.Equal(t, 1, doc.Find(`[data-testid=retry-run]`).Length())
	require.Zero(t, doc.Find(`[data-testid=cancel-run]`).Length())

	res = post(rerun, "retry", url.Values{})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	doc = c.get(page(rerun)).Doc(t)
	require.Contains(t, flashText(doc), "Run retried")
	doc = c.waitRunPage(rerun, "waiting")
	require.Contains(t, doc.Find(`[data-testid=timeline]`).Text(), "Run retried")
	require.Equal(t, 1, doc.Find(`[data-testid=approve-review]`).Length(), "the approval waits again")

	// Cancel.
	res = post(rerun, "cancel", url.Values{})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	doc = c.get(page(rerun)).Doc(t)
	require.Equal(t, "Run cancelled.", flashText(doc))
	require.Equal(t, "cancelled", pageStatus(doc.Selection))
	require.Equal(t, 1, doc.Find(`[data-testid=retry-run]`).Length(), "a cancelled run can be retried")

	// Unknown steps and runs are not found.
	require.Equal(t, http.StatusNotFound, post(rerun, "steps/nope/approve", url.Values{}).StatusCode)
	require.Equal(t, http.StatusNotFound, c.get("/runs/999999").StatusCode)
	require.Equal(t, http.StatusNotFound, c.get("/runs/abc").StatusCode)
}

func TestRunPagesRespectTeamsAndRoles(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := context.Background()
	owner := a.client()
	owner.signUp("boss@example.com", password)
	id := owner.startRun(url.Values{"plan": {approvalPlan}, "inputs": {`{"who":"team"}`}})
	owner.waitRunPage(id, "waiting")
	runPath := fmt.Sprintf("/runs/%d", id)

	// Another team's run is not found, whatever the action.
	stranger := a.client()
	stranger.signUp("stranger@example.com", password)
	require.Equal(t, http.StatusNotFound, stranger.get(runPath).StatusCode)
	require.Equal(t, http.StatusNotFound, stranger.get(runPath+"/live").StatusCode)
	for _, action := range []string{"cancel", "retry", "rerun", "steps/review/approve", "steps/review/reject"} {
		require.Equal(t, http.StatusNotFound, stranger.submit("/runs", runPath+"/"+action, url.Values{}).StatusCode, action)
	}
	require.NotContains(t, stranger.get("/runs").Body, "Draft and approve", "nor listed")

	// A member sees the run and can cancel it, but not approve it.
	bossUser, err := auth.UserByEmail(ctx, a.DB, "boss@example.com")
	require.NoError(t, err)
	bossTeams, err := teams.ForUser(ctx, a.DB, bossUser.ID)
	require.NoError(t, err)
	member := a.client()
	member.signUp("member@example.com", password)
	memberUser, err := auth.UserByEmail(ctx, a.DB, "member@example.com")
	require.NoError(t, err)
	require.NoError(t, teams.AddMember(ctx, a.DB, bossTeams[0].ID, memberUser.ID, teams.RoleMember))
	require.Equal(t, http.StatusSeeOther, member.submit("/runs", "/teams/switch", url.Values{"team_id": {itoa(bossTeams[0].ID)}}).StatusCode)

	doc := member.get(runPath).Doc(t)
	require.Equal(t, "waiting", pageStatus(doc.Selection))
	require.Zero(t, doc.Find(`[data-testid=approve-review]`).Length(), "no approve button for a member")
	require.Contains(t, doc.Find(`[data-testid=approval-review]`).Text(), "owner or admin")
	require.Equal(t, 1, doc.Find(`[data-testid=cancel-run]`).Length())
	res := member.submit(runPath, runPath+"/steps/review/approve", url.Values{})
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	require.Equal(t, "waiting", pageStatus(owner.get(runPath).Doc(t).Selection), "nothing changed")
}

// sseEvent is one Server-Sent Event as a test reads it.
type sseEvent struct {
	name, id, data string
}

// readSSE parses events from r onto a channel until the stream ends.
func readSSE(r *bufio.Reader) <-chan sseEvent {
	out := make(chan sseEvent, 256)
	go func() {
		defer close(out)
		var ev sseEvent
		var data []string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\r\n")
			switch {
			case line == "":
				if ev.name != "" || len(data) > 0 {
					ev.data = strings.Join(data, "\n")
					out <- ev
				}
				ev, data = sseEvent{}, nil
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "id: "):
				ev.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				data = append(data, strings.TrimPrefix(line, "data: "))
			case line == "data:":
				data = append(data, "")
			}
		}
	}()
	return out
}

func TestRunLiveStream(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.client()
	c.signUp("live@example.com", password)
	// The run waits at "start" while the stream connects, so that nothing
	// streams before the test listens.
	plan := `{"goal":"Live","steps":[
		{"name":"start","kind":"approval","prompt":"Go?"},
		{"name":"talk","kind":"llm","provider":"simulated","model":"echo","options":{"latency_ms":900},"needs":["start"],
		 "prompt":"<b>one</b> <b>two</b> <b>three</b> <b>four</b> <b>five</b> <b>six</b> <b>seven</b> <b>eight</b> <b>nine</b> <b>ten</b>"},
		{"name":"gate","kind":"approval","needs":["talk"],"prompt":"Ship it?"}]}`
	id := c.startRun(url.Values{"plan": {plan}})
	runPath := fmt.Sprintf("/runs/%d", id)
	live := c.waitRunPage(id, "waiting").Find(`[data-testid=run-page]`).AttrOr("sse-connect", "")
	require.NotEmpty(t, live)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.URL+live, nil)
	require.NoError(t, err)
	res, err := c.http.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))
	stream := readSSE(bufio.NewReader(res.Body))

	// waitFor finds the first event from history[from] on named name with
	// data containing text, reading more of the stream as needed.
	var history []sseEvent
	waitFor := func(from int, name, text string) int {
		t.Helper()
		for i := from; ; i++ {
			for i >= len(history) {
				select {
				case ev, ok := <-stream:
					require.True(t, ok, "the stream ended early")
					history = append(history, ev)
				case <-ctx.Done():
					var names []string
					for _, ev := range history {
						names = append(names, ev.name)
					}
					t.Fatalf("no %q event with %q in %v; the last: %+v", name, text, names, history[len(history)-1:])
				}
			}
			if ev := history[i]; ev.name == name && strings.Contains(ev.data, text) {
				return i
			}
		}
	}
	count := func(name string) int {
		n := 0
		for _, ev := range history {
			if ev.name == name {
				n++
			}
		}
		return n
	}

	// Approving the first step starts the llm step, which streams.
	require.Equal(t, http.StatusSeeOther, c.submit(runPath, runPath+"/steps/start/approve", url.Values{}).StatusCode)
	waitFor(0, "step-start", "Approved")
	waitFor(0, "delta-talk", "&lt;b&gt;")
	waitFor(0, "step-talk", "Succeeded")
	waitFor(0, "output-talk", "&lt;b&gt;one&lt;/b&gt; &lt;b&gt;two&lt;/b&gt;")
	var streamed strings.Builder
	for _, ev := range history {
		if ev.name == "delta-talk" {
			streamed.WriteString(ev.data)
		}
	}
	require.NotContains(t, streamed.String(), "<b>", "streamed text is escaped")
	waitFor(0, "step-gate", `data-testid="approve-gate"`)
	i := waitFor(0, "events", "Waiting for approval")
	require.NotEmpty(t, history[i].id, "the timeline event carries the last event id")
	waitFor(0, "run-status", "Waiting")

	// A decision made elsewhere shows up live.
	talkCards, mark := count("step-talk"), len(history)
	require.Equal(t, http.StatusSeeOther, c.submit(runPath, runPath+"/steps/gate/approve", url.Values{}).StatusCode)
	i = waitFor(mark, "run-status", "Succeeded")
	i = waitFor(i, "run", "rerun-run")
	require.NotContains(t, history[i].data, "cancel-run", "a finished run has no cancel button")
	waitFor(mark, "step-gate", "Approved")
	waitFor(mark, "events", "Run succeeded")
	require.Equal(t, talkCards, count("step-talk"), "a step that did not change is not sent again")
}

// TestNewRunOffersWhatCanRun checks that the New run form offers only the
// providers a run can call (no instance keys here: only simulated), says
// how to add a key for the others, refuses one without a key next to its
// field, and offers a provider once the team saves a key for it.
func TestNewRunOffersWhatCanRun(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.client()
	c.signUp("providers@example.com", password)
	offered := func() []string {
		var names []string
		c.get("/runs/new").Doc(t).Find(`select#provider option`).Each(func(_ int, o *goquery.Selection) {
			names = append(names, o.AttrOr("value", ""))
		})
		return names
	}
	doc := c.get("/runs/new").Doc(t)
	require.Equal(t, []string{"simulated"}, offered())
	missing := doc.Find(`[data-testid=providers-missing]`)
	require.Contains(t, missing.Text(), "anthropic and openai need an API key")
	require.Equal(t, "/team#provider-keys", missing.Find("a").AttrOr("href", ""))
	require.Equal(t, "simulated: echo or lorem.", strings.TrimSpace(doc.Find(`#model-hint`).Text()))

	res := c.submit("/runs/new", "/runs", url.Values{"prompt": {"hello"}, "provider": {"anthropic"}, "model": {"claude-sonnet-4-5"}})
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Contains(t, res.Doc(t).Find(`#provider-error`).Text(), "anthropic has no API key here")
	require.Equal(t, "hello", res.Doc(t).Find(`#prompt`).Text(), "the prompt is kept")

	// A plan is held to the same: its step on a keyless provider is named.
	res = c.submit("/runs/new", "/runs", url.Values{"prompt": {""}, "provider": {"simulated"}, "model": {"echo"},
		"plan": {`{"goal":"g","steps":[{"name":"ask","kind":"llm","provider":"openai","model":"gpt-4o","prompt":"hi"}]}`}})
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Contains(t, res.Doc(t).Text(), "openai has no API key here")
	runsBefore := len(c.get("/runs").Doc(t).Find(`[data-testid=runs-table] tbody tr`).Nodes)
	require.Zero(t, runsBefore, "nothing was created")

	res = c.submit("/team", "/team/keys", url.Values{"provider": {"anthropic"}, "key": {"sk-ant-api03-team-secret-4321"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	require.Equal(t, []string{"anthropic", "simulated"}, offered())
	res = c.submit("/runs/new", "/runs", url.Values{"prompt": {"hello"}, "provider": {"anthropic"}, "model": {"claude-sonnet-4-5"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, "with the team's key the run starts")
	doc = c.get("/runs/new").Doc(t)
	require.Contains(t, doc.Find(`[data-testid=providers-missing]`).Text(), "openai need an API key")
	require.Equal(t, "simulated: echo or lorem.", strings.TrimSpace(doc.Find(`#model-hint`).Text()), "the hint is the chosen provider's")
	anthropic := doc.Find(`select#provider option[value=anthropic]`)
	require.Equal(t, "claude-sonnet-4-5", anthropic.AttrOr("data-model", ""), "choosing a provider suggests its model (app.js)")
	require.Equal(t, "anthropic: such as claude-sonnet-4-5.", anthropic.AttrOr("data-hint", ""))
}
