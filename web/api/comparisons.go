package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/comparisons"
	"github.com/nofxhq/nofx/web/httpx"
)

// compareRequest is the body of POST /api/v1/runs/{id}/steps/{name}/compare.
type compareRequest struct {
	Candidates []comparisons.CandidateSpec `json:"candidates"`
}

// preferRequest is the body of POST /api/v1/comparisons/{id}/prefer.
type preferRequest struct {
	Preferred string `json:"preferred"` // "original" or a candidate's name (c1…c4)
}

// comparisonJSON is a comparison in the API.
type comparisonJSON struct {
	ID         int64           `json:"id"`
	RunID      int64           `json:"run_id"`
	Step       string          `json:"step"`
	Status     string          `json:"status"` // the replay's: queued, running, succeeded, failed…
	Template   string          `json:"template,omitempty"`
	Preferred  string          `json:"preferred,omitempty"`
	CreatedBy  string          `json:"created_by"`
	CreatedAt  time.Time       `json:"created_at"`
	Original   candidateJSON   `json:"original"`
	Candidates []candidateJSON `json:"candidates"`
}

// candidateJSON is one output of a comparison, and its cost against the
// original's.
type candidateJSON struct {
	Name         string   `json:"name"`
	Provider     string   `json:"provider"`
	Model        string   `json:"model"`
	Status       string   `json:"status"`
	Output       string   `json:"output"`
	Error        string   `json:"error,omitempty"`
	InputTokens  int64    `json:"input_tokens"`
	OutputTokens int64    `json:"output_tokens"`
	CostMicros   int64    `json:"cost_micros"`
	DurationMS   int64    `json:"duration_ms"`
	CostDiff     int64    `json:"cost_diff_micros"`     // this cost minus the original's
	CostRatio    *float64 `json:"cost_ratio,omitempty"` // this cost over the original's, when that is not zero
}

func toCandidateJSON(c, orig comparisons.Candidate) candidateJSON {
	out := candidateJSON{Name: c.Name, Provider: c.Provider, Model: c.Model, Status: c.Status, Output: c.Output, Error: c.Error,
		InputTokens: c.InputTokens, OutputTokens: c.OutputTokens, CostMicros: c.CostMicros, DurationMS: c.Duration.Milliseconds(),
		CostDiff: c.CostMicros - orig.CostMicros}
	if orig.CostMicros > 0 {
		r := float64(c.CostMicros) / float64(orig.CostMicros)
		out.CostRatio = &r
	}
	return out
}

func toComparisonJSON(v comparisons.View) comparisonJSON {
	out := comparisonJSON{ID: v.ID, RunID: v.RunID, Step: v.StepName, Status: v.Status, Template: v.Template, Preferred: v.Preferred,
		CreatedBy: v.CreatedBy, CreatedAt: v.CreatedAt, Original: toCandidateJSON(v.Original, v.Original), Candidates: []candidateJSON{}}
	for _, c := range v.Candidates {
		out.Candidates = append(out.Candidates, toCandidateJSON(c, v.Original))
	}
	return out
}

// CompareStep replays a finished run's step on other models.
func (s *API) CompareStep(c echo.Context) error {
	a, runID, err := httpx.ActorAndRun(c)
	if err != nil {
		return err
	}
	var req compareRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	cmp, replayed, err := s.compare.Create(c.Request().Context(), a, runID, c.Param("step"), req.Candidates, c.Request().Header.Get("Idempotency-Key"))
	if err != nil {
		return err
	}
	if replayed {
		c.Response().Header().Set("Idempotent-Replayed", "true")
	}
	v, err := s.compare.Get(c.Request().Context(), a, cmp.ID)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, fmt.Sprintf("/api/v1/comparisons/%d", cmp.ID))
	return c.JSON(http.StatusCreated, toComparisonJSON(v))
}

// GetComparison returns a comparison with its outputs.
func (s *API) GetComparison(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	id, err := httpx.PathID(c, "id")
	if err != nil {
		return err
	}
	v, err := s.compare.Get(c.Request().Context(), a, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toComparisonJSON(v))
}

// PreferCandidate marks the preferred output of a comparison.
func (s *API) PreferCandidate(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	id, err := httpx.PathID(c, "id")
	if err != nil {
		return err
	}
	var req preferRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	if err := s.compare.Prefer(c.Request().Context(), a, id, req.Preferred); err != nil {
		return err
	}
	v, err := s.compare.Get(c.Request().Context(), a, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toComparisonJSON(v))
}

// DeleteComparison deletes a comparison and its replay.
func (s *API) DeleteComparison(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	id, err := httpx.PathID(c, "id")
	if err != nil {
		return err
	}
	if err := s.compare.Delete(c.Request().Context(), a, id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
