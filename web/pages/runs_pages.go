package pages

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/ai"
	"github.com/nofxhq/nofx/internal/billing"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/live"
	"github.com/nofxhq/nofx/internal/plan"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/validation"
	"github.com/nofxhq/nofx/views/components"
	"github.com/nofxhq/nofx/views/errorpage"
	runsview "github.com/nofxhq/nofx/views/runs"
	"github.com/nofxhq/nofx/web/form"
	"github.com/nofxhq/nofx/web/httpx"
)

// permissions are the run actions the actor's role allows, for the pages
// to show only the buttons that apply. The services check them again.
func permissions(a access.Actor) runsview.Permissions {
	return runsview.Permissions{
		Create:  access.Allowed(a.Role, access.RunsCreate),
		Cancel:  access.Allowed(a.Role, access.RunsCancel),
		Retry:   access.Allowed(a.Role, access.RunsRetry),
		Approve: access.Allowed(a.Role, access.RunsApprove),
	}
}

// RunsPage lists the team's runs, newest first, with filters and keyset
// pagination. Filters that do not parse are shown next to their fields (422).
func (s *Pages) RunsPage(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	templates, err := s.runs.TemplatesUsed(ctx, a)
	if err != nil {
		return err
	}
	q := c.QueryParams()
	d := runsview.ListData{
		TeamName:  httpx.Who(c).Team.Name,
		Now:       time.Now(),
		Statuses:  runs.RunStatuses,
		Templates: templates,
		CanCreate: access.Allowed(a.Role, access.RunsCreate),
		Filter: runsview.Filter{
			Status: q.Get("status"), Template: q.Get("template"), From: q.Get("from"), To: q.Get("to"),
			Sort: q.Get("sort"), Before: q.Get("before"), Limit: q.Get("limit"),
		},
	}
	status := http.StatusOK
	f, err := form.RunsFilter(c.QueryParams())
	var verrs validation.Errors
	switch {
	case errors.As(err, &verrs):
		d.Errors, status = verrs, http.StatusUnprocessableEntity
	case err != nil:
		return err
	default:
		page, err := s.runs.List(ctx, a, f)
		if err != nil {
			return err
		}
		d.Runs = page.Runs
		d.LiveURL = listLiveURL(q, d.Runs, d.Now)
		if page.NextBefore > 0 {
			d.NextURL = d.Filter.URL(page.NextBefore, page.NextBeforeCost)
		}
	}
	return s.Render(c, status, Page{Title: "Runs", Nav: "runs", Content: runsview.Index(d)})
}

// NewRunPage is the form that starts a run.
func (s *Pages) NewRunPage(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	d := runsview.NewData{Provider: ai.SimulatedName, Model: "echo"}
	if d.Providers, d.Missing, err = s.providerChoices(c.Request().Context(), a); err != nil {
		return err
	}
	return s.Render(c, http.StatusOK, Page{Title: "New run", Nav: "runs", Content: runsview.New(d)})
}

// providerChoices splits the providers into those a run of the actor's
// team can call now (the instance's key, the team's own, or none needed)
// and those that need a key first.
func (s *Pages) providerChoices(ctx context.Context, a access.Actor) (runnable, missing []string, err error) {
	saved, err := s.keys.Saved(ctx, a.TeamID)
	if err != nil {
		return nil, nil, err
	}
	for _, name := range s.ai.Names() {
		if p, _ := s.ai.Get(name); ai.NeedsKey(p) && !slices.Contains(saved, name) {
			missing = append(missing, name)
			continue
		}
		runnable = append(runnable, name)
	}
	return runnable, missing, nil
}

// newRunFields are the fields of the new run form that problems can sit next to.
var newRunFields = map[string]bool{"prompt": true, "provider": true, "model": true, "plan": true, "inputs": true}

// CreateRun starts a run from the form: the plan when one is given, else
// the prompt with its provider and model. Problems re-render the form (422)
// with what was typed.
func (s *Pages) CreateRun(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	d := runsview.NewData{
		Prompt:   c.FormValue("prompt"),
		Provider: c.FormValue("provider"),
		Model:    strings.TrimSpace(c.FormValue("model")),
		Plan:     c.FormValue("plan"),
		Inputs:   c.FormValue("inputs"),
	}
	if d.Providers, d.Missing, err = s.providerChoices(c.Request().Context(), a); err != nil {
		return err
	}
	planMode := strings.TrimSpace(d.Plan) != ""
	in, err := runInputFromForm(d, planMode)
	if err == nil {
		var run runs.Run
		run, _, err = s.runs.Create(c.Request().Context(), a, in)
		if err == nil {
			s.addFlash(c, "success", fmt.Sprintf("Run #%d started.", run.ID))
			return redirect(c, fmt.Sprintf("/runs/%d", run.ID))
		}
	}
	var overPlan *billing.LimitError
	if errors.As(err, &overPlan) {
		d.Limit = overPlan.Error()
		return s.Render(c, http.StatusPaymentRequired, Page{Title: "New run", Nav: "runs", Content: runsview.New(d)})
	}
	var verrs validation.Errors
	if !errors.As(err, &verrs) {
		return err
	}
	d.Errors, d.Other = newRunProblems(verrs, planMode)
	return s.Render(c, http.StatusUnprocessableEntity, Page{Title: "New run", Nav: "runs", Content: runsview.New(d)})
}

// runInputFromForm reads the new run form as a run request (the plan when
// one is given, else the prompt with its provider and model) and its
// inputs.
func runInputFromForm(d runsview.NewData, planMode bool) (runs.CreateInput, error) {
	errs := validation.Errors{}
	var in runs.CreateInput
	// Read as the API reads them: numbers keep every digit, and one that
	// cannot be stored (1e400) is a problem with its input.
	inputs, err := plan.ParseInputs([]byte(d.Inputs))
	var inputErrs validation.Errors
	switch {
	case errors.As(err, &inputErrs):
		for k, v := range inputErrs {
			errs.Add(k, v)
		}
	case err != nil:
		return in, err
	}
	in.Inputs = inputs
	req := runs.Request{Prompt: d.Prompt, Provider: d.Provider, Model: d.Model}
	if planMode {
		req = runs.Request{Plan: []byte(d.Plan)}
	}
	what, err := req.Resolve()
	var verrs validation.Errors
	if errors.As(err, &verrs) {
		for k, v := range verrs {
			errs.Add(k, v)
		}
	} else if err != nil {
		return in, err
	}
	in.Plan = what.Plan
	return in, errs.Err()
}

// newRunProblems places each problem next to its field of the new run
// form; for a prompt, the problems of its one step belong to the prompt,
// provider and model fields. The rest are listed on their own.
func newRunProblems(verrs validation.Errors, planMode bool) (map[string][]string, []runsview.Problem) {
	fields := map[string][]string{}
	var other []runsview.Problem
	keys := make([]string, 0, len(verrs))
	for k := range verrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		msg := verrs[key]
		field := key
		if !planMode {
			if sub, ok := strings.CutPrefix(key, "steps[0]."); ok {
				field = sub
			} else if key == "goal" {
				field = "prompt"
			}
		}
		switch {
		case newRunFields[field]:
			fields[field] = append(fields[field], msg)
		case strings.HasPrefix(key, "inputs."):
			fields["inputs"] = append(fields["inputs"], fmt.Sprintf("%s: %s", strings.TrimPrefix(key, "inputs."), msg))
		default:
			other = append(other, runsview.Problem{Field: key, Message: msg})
		}
	}
	return fields, other
}

// RunPage shows a run with its steps and timeline; it follows the run live.
func (s *Pages) RunPage(c echo.Context) error {
	a, id, err := httpx.ActorAndRun(c)
	if err != nil {
		return err
	}
	err = s.renderRunPage(c, a, id, http.StatusOK, runsview.CompareForm{})
	if errors.Is(err, db.ErrNotFound) {
		return s.runInOtherTeam(c, id, err)
	}
	return err
}

// runInOtherTeam answers a run not found in the current team: when it is a
// run of another of the user's teams, a page that offers to switch to it;
// else notFound as it is.
func (s *Pages) runInOtherTeam(c echo.Context, id int64, notFound error) error {
	p := httpx.Who(c)
	if p.User == nil {
		return notFound
	}
	ctx := c.Request().Context()
	teamID, err := s.runs.TeamOfMember(ctx, p.User.ID, id)
	if errors.Is(err, db.ErrNotFound) {
		return notFound
	}
	if err != nil {
		return err
	}
	team, err := s.members.Membership(ctx, teamID, p.User.ID)
	if err != nil {
		return err
	}
	title := fmt.Sprintf("Run #%d is in %s", id, team.Name)
	msg := fmt.Sprintf("You are working in %s; run #%d belongs to your team %s.", p.Team.Name, id, team.Name)
	return s.Render(c, http.StatusNotFound, Page{Title: title, Content: errorpage.InOtherTeam(title, msg, team.ID, team.Name, fmt.Sprintf("/runs/%d", id))})
}

// renderRunPage shows run id with status; compare is a compare form sent
// back with its problems (or empty).
func (s *Pages) renderRunPage(c echo.Context, a access.Actor, id int64, status int, compare runsview.CompareForm) error {
	ctx := c.Request().Context()
	// The timeline is read first: the page then follows from its newest
	// event, and the run and steps read after it are at least as new, so no
	// change falls between the page and its live updates.
	events, err := s.runs.Events(ctx, a, id, 0)
	if err != nil {
		return err
	}
	run, steps, err := s.runs.Get(ctx, a, id)
	if err != nil {
		return err
	}
	d := runsview.RunData{Run: run, Steps: steps, Events: events, Now: time.Now(), Can: permissions(a), Providers: s.ai.Names(),
		Compare: compare}
	if err := s.teamSlots(ctx, a, &d); err != nil {
		return err
	}
	if d.Comparisons, err = s.compare.ForRun(ctx, a, run.ID); err != nil {
		return err
	}
	return s.Render(c, status, Page{Title: fmt.Sprintf("Run #%d", id), Nav: "runs", Content: runsview.Show(d)})
}

// teamSlots fills in the team's step limit and how many steps it runs,
// when the run has a queued step that could be waiting for a slot.
func (s *Pages) teamSlots(ctx context.Context, a access.Actor, d *runsview.RunData) error {
	for _, st := range d.Steps {
		if st.Status != runs.StepQueued {
			continue
		}
		limit, err := s.runs.TeamLimit(ctx, a, s.cfg.TeamConcurrency)
		if err != nil || limit <= 0 {
			return err
		}
		n, err := s.runs.TeamRunning(ctx, a)
		if err != nil {
			return err
		}
		d.TeamLimit, d.TeamRunning = limit, n
		return nil
	}
	return nil
}

// stepState is what can change of a step; its card is sent again when it does.
type stepState struct {
	status    string
	attempt   int
	updatedAt int64 // UnixNano
}

// RunLive streams the run page's updates as Server-Sent Events, for the
// htmx SSE extension. Each event carries the new inner HTML of a container
// that stays on the page:
//
//   - run-status: the status badge and progress (only when they change)
//   - run: the summary with the actions that apply
//   - step-{name}, prompt-{name}, output-{name}: the parts of a step card
//     whose step changed (see views/runs StepCard)
//   - events: the new timeline entries, to append; its id is the newest
//     event's, so a reconnecting browser resumes after it (Last-Event-ID)
//   - delta-{name}: text a running step streams, escaped, to append to its
//     output
//
// The page reads its timeline before its run and steps, so it shows at
// least the state of its newest event; what changed since comes with the
// first events sent here.
func (s *Pages) RunLive(c echo.Context) error {
	a, id, err := httpx.ActorAndRun(c)
	if err != nil {
		return err
	}
	afterID, err := httpx.LastEventID(c)
	if err != nil {
		return err
	}
	ctx := components.WithCSRF(c.Request().Context(), httpx.CSRFToken(c))
	page := &runLiveState{server: s, actor: a, runID: id, can: permissions(a), steps: map[string]stepState{}, slotNotes: map[string]string{}}
	return s.followRun(c, a, id, afterID, httpx.RunFollower{
		Changed: func(stream *httpx.Stream, events []runs.Event, _ runs.Run) error {
			return page.changed(ctx, stream, events)
		},
		Delta: func(stream *httpx.Stream, m live.Message) error {
			return stream.Send("delta-"+m.Step, 0, html.EscapeString(m.Text))
		},
		Team: func(stream *httpx.Stream) error {
			return page.teamChanged(ctx, stream)
		},
		TeamID: a.TeamID,
		Outage: func(stream *httpx.Stream, down bool) error {
			note := `<span hidden></span>` // an event needs data to be delivered
			if down {
				note = "The database is unavailable; this page catches up when it is back."
			}
			return stream.Send("live-note", 0, note)
		},
	})
}

// runLiveState is what one live stream of a run page has sent so far.
type runLiveState struct {
	server     *Pages
	actor      access.Actor
	runID      int64
	can        runsview.Permissions
	started    bool // the first events have been sent
	status     string
	stepsDone  int
	runUpdated time.Time
	steps      map[string]stepState
	slotNotes  map[string]string // what each step's card last said of the team's slots
}

// read reads the run and its steps as the page shows them now.
func (l *runLiveState) read(ctx context.Context) (runsview.RunData, error) {
	run, steps, err := l.server.runs.Get(ctx, l.actor, l.runID)
	if err != nil {
		return runsview.RunData{}, err
	}
	d := runsview.RunData{Run: run, Steps: steps, Now: time.Now(), Can: l.can}
	return d, l.server.teamSlots(ctx, l.actor, &d)
}

// changed sends what events changed on the page.
func (l *runLiveState) changed(ctx context.Context, stream *httpx.Stream, events []runs.Event) error {
	d, err := l.read(ctx)
	if err != nil {
		return err
	}
	run, steps := d.Run, d.Steps
	if !l.started || run.Status != l.status || run.StepsDone != l.stepsDone {
		if err := sendHTML(ctx, stream, "run-status", 0, runsview.RunStatus(run)); err != nil {
			return err
		}
	}
	if !l.started || run.Status != l.status || !run.UpdatedAt.Equal(l.runUpdated) {
		if err := sendHTML(ctx, stream, "run", 0, runsview.RunSummary(d)); err != nil {
			return err
		}
	}
	l.status, l.stepsDone, l.runUpdated = run.Status, run.StepsDone, run.UpdatedAt

	// On the first call, the page shows the steps as they were at its
	// newest event: those the new events name have changed, and all of
	// them when a run event (a cancel, a retry) changed steps unnamed.
	named, runWide := map[string]bool{}, false
	for _, e := range events {
		named[e.Step] = true
		runWide = runWide || e.Step == ""
	}
	stepsChanged := false
	for _, step := range steps {
		now := stepState{step.Status, step.Attempt, step.UpdatedAt.UnixNano()}
		before, seen := l.steps[step.Name]
		if (seen && before == now) || (!seen && !named[step.Name] && !runWide) {
			// Unchanged, or changed after the events read: then its own
			// event comes next, and it is sent with it.
			continue
		}
		stepsChanged = true
		l.steps[step.Name] = now
		l.slotNotes[step.Name] = d.TeamSlotNote(step)
		if err := sendHTML(ctx, stream, "step-"+step.Name, 0, runsview.StepBody(d, step)); err != nil {
			return err
		}
		if step.Kind == plan.KindApproval {
			continue
		}
		if err := stream.Send("prompt-"+step.Name, 0, html.EscapeString(runsview.StepPrompt(step))); err != nil {
			return err
		}
		// A running step's output is what it streamed: it is replaced
		// only when a new attempt starts over.
		if step.Status != runs.StepRunning || (seen && before.attempt != step.Attempt) {
			if err := stream.Send("output-"+step.Name, 0, html.EscapeString(step.Output)); err != nil {
				return err
			}
		}
	}
	if stepsChanged {
		if err := sendHTML(ctx, stream, "waterfall", 0, runsview.WaterfallSection(d)); err != nil {
			return err
		}
	}
	l.started = true
	return sendHTML(ctx, stream, "events", events[len(events)-1].ID, runsview.TimelineItems(events))
}

// teamChanged sends again the cards of the queued steps whose wait for one
// of the team's slots reads differently since another run of the team
// changed (a slot freed, or taken).
func (l *runLiveState) teamChanged(ctx context.Context, stream *httpx.Stream) error {
	if (runs.Run{Status: l.status}).Finished() {
		return nil
	}
	d, err := l.read(ctx)
	if err != nil {
		return err
	}
	for _, step := range d.Steps {
		// A card this stream has not sent yet is sent: the page may show
		// the note as it was when it was read.
		note := d.TeamSlotNote(step)
		if prev, sent := l.slotNotes[step.Name]; step.Status != runs.StepQueued || (sent && note == prev) {
			continue
		}
		l.slotNotes[step.Name] = note
		if err := sendHTML(ctx, stream, "step-"+step.Name, 0, runsview.StepBody(d, step)); err != nil {
			return err
		}
	}
	return nil
}

// sendHTML renders a component and sends it as one event.
func sendHTML(ctx context.Context, stream *httpx.Stream, event string, id int64, comp templ.Component) error {
	var b bytes.Buffer
	if err := comp.Render(ctx, &b); err != nil {
		return err
	}
	return stream.Send(event, id, b.String())
}

// runAction runs an action on the run of the path, then shows the run
// page with a flash.
func (s *Pages) runAction(c echo.Context, flash string, action func(ctx context.Context, a access.Actor, id int64) error) error {
	a, id, err := httpx.ActorAndRun(c)
	if err != nil {
		return err
	}
	if err := action(c.Request().Context(), a, id); err != nil {
		return err
	}
	s.addFlash(c, "success", flash)
	return redirect(c, fmt.Sprintf("/runs/%d", id))
}

func (s *Pages) CancelRun(c echo.Context) error {
	return s.runAction(c, "Run cancelled.", s.runs.Cancel)
}

func (s *Pages) RetryRun(c echo.Context) error {
	return s.runAction(c, "Run retried: its unfinished steps start again.", s.runs.Retry)
}

// RerunRun starts a new run from the same plan and inputs and goes to it.
func (s *Pages) RerunRun(c echo.Context) error {
	a, id, err := httpx.ActorAndRun(c)
	if err != nil {
		return err
	}
	run, err := s.runs.Rerun(c.Request().Context(), a, id)
	if err != nil {
		return err
	}
	s.addFlash(c, "success", fmt.Sprintf("Run #%d started as a rerun of run #%d.", run.ID, id))
	return redirect(c, fmt.Sprintf("/runs/%d", run.ID))
}

func (s *Pages) ApproveStep(c echo.Context) error { return s.decideStep(c, true) }

func (s *Pages) RejectStep(c echo.Context) error { return s.decideStep(c, false) }

// decideStep approves or rejects a waiting approval step with the form's comment.
func (s *Pages) decideStep(c echo.Context, approve bool) error {
	step := c.Param("step")
	flash := "Step " + step + " approved."
	if !approve {
		flash = "Step " + step + " rejected."
	}
	return s.runAction(c, flash, func(ctx context.Context, a access.Actor, id int64) error {
		return s.runs.Decide(ctx, a, id, step, approve, c.FormValue("comment"))
	})
}
