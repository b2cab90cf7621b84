package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/live"
	"github.com/nofxhq/nofx/internal/pricing"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/validation"
	"github.com/nofxhq/nofx/web/form"
	"github.com/nofxhq/nofx/web/httpx"
)

// runJSON is a run in the API.
type runJSON struct {
	ID              int64          `json:"id"`
	Status          string         `json:"status"`
	Goal            string         `json:"goal"`
	Template        string         `json:"template,omitempty"`
	TemplateVersion int            `json:"template_version,omitempty"` // the version of Template it started from
	Deployment      string         `json:"deployment,omitempty"`       // the environment of the deployment that started it
	TriggeredBy     string         `json:"triggered_by,omitempty"`     // for a deployment's run: api, webhook, schedule or manual
	CreatedBy       string         `json:"created_by"`
	RerunOf         *int64         `json:"rerun_of,omitempty"`
	StepsTotal      int            `json:"steps_total"`
	StepsDone       int            `json:"steps_done"`
	InputTokens     int64          `json:"input_tokens"`
	OutputTokens    int64          `json:"output_tokens"`
	CostMicros      int64          `json:"cost_micros"`
	Cost            string         `json:"cost"`
	Error           string         `json:"error,omitempty"`
	Inputs          map[string]any `json:"inputs,omitzero"` // not in the list, which reads runs without their inputs
	CreatedAt       time.Time      `json:"created_at"`
	StartedAt       *time.Time     `json:"started_at"`
	FinishedAt      *time.Time     `json:"finished_at"`
	Steps           []stepJSON     `json:"steps,omitempty"`
}

// stepJSON is a step in the API.
type stepJSON struct {
	Name            string     `json:"name"`
	Kind            string     `json:"kind"`
	Status          string     `json:"status"`
	Needs           []string   `json:"needs"`
	Provider        string     `json:"provider,omitempty"`
	Model           string     `json:"model,omitempty"`
	Prompt          string     `json:"prompt"`
	Output          string     `json:"output"`
	Error           string     `json:"error,omitempty"`
	WaitingOn       string     `json:"waiting_on,omitempty"` // "spend_limit" while the team's spend limit holds it
	Attempt         int        `json:"attempt"`
	MaxAttempts     int        `json:"max_attempts"`
	InputTokens     int64      `json:"input_tokens"`
	OutputTokens    int64      `json:"output_tokens"`
	CostMicros      int64      `json:"cost_micros"`
	DecisionComment string     `json:"decision_comment,omitempty"`
	StartedAt       *time.Time `json:"started_at"`
	FinishedAt      *time.Time `json:"finished_at"`
}

// eventJSON is a timeline event in the API's event stream.
type eventJSON struct {
	ID        int64     `json:"id"`
	Kind      string    `json:"kind"`
	Step      string    `json:"step,omitempty"`
	Message   string    `json:"message"`
	Actor     string    `json:"actor,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	RunStatus string    `json:"run_status"`
}

func toRunJSON(r runs.Run, steps []runs.Step) runJSON {
	out := runJSON{
		ID: r.ID, Status: r.Status, Goal: r.Goal, Template: r.Template, TemplateVersion: r.TemplateVersion, CreatedBy: r.CreatedBy,
		Deployment: r.DeploymentEnv, TriggeredBy: r.TriggeredBy,
		StepsTotal: r.StepsTotal, StepsDone: r.StepsDone, InputTokens: r.InputTokens, OutputTokens: r.OutputTokens,
		CostMicros: r.CostMicros, Cost: pricing.FormatDollars(r.CostMicros), Error: r.Error, CreatedAt: r.CreatedAt, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt,
	}
	if r.RerunOf.Valid {
		out.RerunOf = &r.RerunOf.Int64
	}
	if r.InputsJSON != "" {
		out.Inputs, _ = r.Inputs()
	}
	for _, s := range steps {
		prompt := s.RenderedPrompt
		if prompt == "" {
			prompt = s.Prompt
		}
		out.Steps = append(out.Steps, stepJSON{
			Name: s.Name, Kind: s.Kind, Status: s.Status, Needs: s.Needs(), Provider: s.Provider, Model: s.Model,
			Prompt: prompt, Output: s.Output, Error: s.Error, WaitingOn: s.WaitingOn, Attempt: s.Attempt, MaxAttempts: s.MaxAttempts,
			InputTokens: s.InputTokens, OutputTokens: s.OutputTokens, CostMicros: s.CostMicros, DecisionComment: s.DecisionComment,
			StartedAt: s.StartedAt, FinishedAt: s.FinishedAt,
		})
	}
	return out
}

// createRunRequest is the body of POST /api/v1/runs: one of a template, a
// prompt or a plan.
type createRunRequest struct {
	Template string          `json:"template"`
	Prompt   string          `json:"prompt"`
	Provider string          `json:"provider"`
	Model    string          `json:"model"`
	Plan     json.RawMessage `json:"plan"`
	Inputs   map[string]any  `json:"inputs"`
}

func (s *API) CreateRun(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	var req createRunRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	what, err := runs.Request{Template: req.Template, Prompt: req.Prompt, Provider: req.Provider, Model: req.Model, Plan: req.Plan}.Resolve()
	if err != nil {
		return err
	}
	ctx, key := c.Request().Context(), c.Request().Header.Get("Idempotency-Key")
	var (
		run      runs.Run
		replayed bool
	)
	if what.Template != "" {
		run, replayed, err = s.templates.StartRun(ctx, a, what.Template, req.Inputs, key)
		if errors.Is(err, db.ErrNotFound) {
			return validation.Errors{"template": fmt.Sprintf("There is no template %q in this team.", what.Template)}
		}
	} else {
		run, replayed, err = s.runs.Create(ctx, a, runs.CreateInput{Plan: what.Plan, Inputs: req.Inputs, IdempotencyKey: key})
	}
	if err != nil {
		return err
	}
	if replayed {
		c.Response().Header().Set("Idempotent-Replayed", "true")
	}
	c.Response().Header().Set(echo.HeaderLocation, fmt.Sprintf("/api/v1/runs/%d", run.ID))
	return c.JSON(http.StatusCreated, toRunJSON(run, nil))
}

// listRunsResponse is a page of runs; pass next_before as ?before= (and,
// sorted by cost, next_before_cost as ?before_cost=) for the next.
type listRunsResponse struct {
	Runs           []runJSON `json:"runs"`
	NextBefore     int64     `json:"next_before,omitempty"`
	NextBeforeCost *int64    `json:"next_before_cost,omitempty"`
}

func (s *API) ListRuns(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	f, err := form.RunsFilter(c.QueryParams())
	if err != nil {
		return err
	}
	body, err := s.runs.ListEncoded(c.Request().Context(), a, f, func(page runs.Page) ([]byte, error) {
		out := listRunsResponse{Runs: make([]runJSON, 0, len(page.Runs)), NextBefore: page.NextBefore}
		if f.SortByCost && page.NextBefore != 0 {
			out.NextBeforeCost = &page.NextBeforeCost
		}
		for _, r := range page.Runs {
			out.Runs = append(out.Runs, toRunJSON(r, nil))
		}
		b, err := json.Marshal(out)
		return append(b, '\n'), err
	})
	if err != nil {
		return err
	}
	if c.QueryParams().Has("pretty") { // as c.JSON indents every other answer
		var buf bytes.Buffer
		if err := json.Indent(&buf, body, "", "  "); err != nil {
			return err
		}
		body = buf.Bytes()
	}
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, body)
}

func (s *API) GetRun(c echo.Context) error {
	a, id, err := httpx.ActorAndRun(c)
	if err != nil {
		return err
	}
	run, steps, err := s.runs.Get(c.Request().Context(), a, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toRunJSON(run, steps))
}

// runAction runs an action on a run and answers with the run as it is after.
func (s *API) runAction(c echo.Context, action func(id int64) error) error {
	a, id, err := httpx.ActorAndRun(c)
	if err != nil {
		return err
	}
	if err := action(id); err != nil {
		return err
	}
	run, steps, err := s.runs.Get(c.Request().Context(), a, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toRunJSON(run, steps))
}

func (s *API) CancelRun(c echo.Context) error {
	return s.runAction(c, func(id int64) error {
		a, _ := httpx.Actor(c)
		return s.runs.Cancel(c.Request().Context(), a, id)
	})
}

func (s *API) RetryRun(c echo.Context) error {
	return s.runAction(c, func(id int64) error {
		a, _ := httpx.Actor(c)
		return s.runs.Retry(c.Request().Context(), a, id)
	})
}

func (s *API) RerunRun(c echo.Context) error {
	a, id, err := httpx.ActorAndRun(c)
	if err != nil {
		return err
	}
	run, err := s.runs.Rerun(c.Request().Context(), a, id)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, fmt.Sprintf("/api/v1/runs/%d", run.ID))
	return c.JSON(http.StatusCreated, toRunJSON(run, nil))
}

// decisionRequest is the optional body of approve and reject.
type decisionRequest struct {
	Comment string `json:"comment"`
}

func (s *API) decide(c echo.Context, approve bool) error {
	var req decisionRequest
	if c.Request().ContentLength != 0 {
		if err := httpx.DecodeJSON(c, &req); err != nil {
			return err
		}
	}
	return s.runAction(c, func(id int64) error {
		a, _ := httpx.Actor(c)
		return s.runs.Decide(c.Request().Context(), a, id, c.Param("step"), approve, req.Comment)
	})
}

func (s *API) ApproveStep(c echo.Context) error { return s.decide(c, true) }

func (s *API) RejectStep(c echo.Context) error { return s.decide(c, false) }

// RunEvents streams the run's timeline as Server-Sent Events: every
// event after Last-Event-ID (or ?after=), then each new one as it happens,
// and "delta" events with text as steps stream it. The stream ends with an
// "end" event once the run has finished.
func (s *API) RunEvents(c echo.Context) error {
	a, id, err := httpx.ActorAndRun(c)
	if err != nil {
		return err
	}
	afterID, err := httpx.LastEventID(c)
	if err != nil {
		return err
	}
	return s.followRun(c, a, id, afterID, httpx.RunFollower{
		UntilFinished: true,
		Changed: func(stream *httpx.Stream, events []runs.Event, run runs.Run) error {
			for _, e := range events {
				b, _ := json.Marshal(eventJSON{ID: e.ID, Kind: e.Kind, Step: e.Step, Message: e.Message, Actor: e.Actor, CreatedAt: e.CreatedAt, RunStatus: run.Status})
				if err := stream.Send(e.Kind, e.ID, string(b)); err != nil {
					return err
				}
			}
			return nil
		},
		Delta: func(stream *httpx.Stream, m live.Message) error {
			b, _ := json.Marshal(map[string]string{"step": m.Step, "text": m.Text})
			return stream.Send("delta", 0, string(b))
		},
	})
}
