package pages

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/comparisons"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/validation"
	view "github.com/nofxhq/nofx/views/comparisons"
	"github.com/nofxhq/nofx/views/components"
	runsview "github.com/nofxhq/nofx/views/runs"
	"github.com/nofxhq/nofx/web/httpx"
)

// candidateField is a problem's key about one candidate's field.
var candidateField = regexp.MustCompile(`^candidates\[(\d+)\]\.(\w+)$`)

// CompareStep replays a run's step on the models the run page's form
// names (provider_N and model_N, up to four), and opens the comparison.
func (s *Pages) CompareStep(c echo.Context) error {
	a, runID, err := httpx.ActorAndRun(c)
	if err != nil {
		return err
	}
	// Rows left empty are skipped; a candidate's index is its row's, so
	// that a problem shows next to the row it is about.
	form := runsview.CompareForm{Step: c.Param("step")}
	var cands []comparisons.CandidateSpec
	var rows []int
	for i := range comparisons.MaxCandidates {
		p, m := strings.TrimSpace(c.FormValue(fmt.Sprintf("provider_%d", i))), strings.TrimSpace(c.FormValue(fmt.Sprintf("model_%d", i)))
		form.Providers[i], form.Models[i] = p, m
		if p != "" || m != "" {
			cands = append(cands, comparisons.CandidateSpec{Provider: p, Model: m})
			rows = append(rows, i)
		}
	}
	cmp, _, err := s.compare.Create(c.Request().Context(), a, runID, form.Step, cands, "")
	var verrs validation.Errors
	var conflict *runs.ConflictError
	switch {
	case errors.As(err, &verrs):
		form.Errors = map[string]string{}
		for k, msg := range verrs {
			if m := candidateField.FindStringSubmatch(k); m != nil {
				if i, _ := strconv.Atoi(m[1]); i < len(rows) {
					k = fmt.Sprintf("candidates[%d].%s", rows[i], m[2])
				}
			}
			form.Errors[k] = msg
		}
		return s.renderRunPage(c, a, runID, http.StatusUnprocessableEntity, form)
	case errors.As(err, &conflict):
		s.addFlash(c, "error", conflict.Message)
		return redirect(c, fmt.Sprintf("/runs/%d", runID))
	case err != nil:
		return err
	}
	return redirect(c, view.Path(cmp.ID))
}

// ComparisonPage shows a comparison's outputs side by side.
func (s *Pages) ComparisonPage(c echo.Context) error {
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
	return s.Render(c, http.StatusOK, Page{Title: fmt.Sprintf("Comparison #%d", id), Nav: "runs",
		Content: view.Page(view.Data{View: v, CanCompare: access.Allowed(a.Role, access.RunsCreate)})})
}

// ComparisonEvents streams the comparison's grid each time its replay
// changes, until every candidate finished.
func (s *Pages) ComparisonEvents(c echo.Context) error {
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
	can := access.Allowed(a.Role, access.RunsCreate)
	// The grid's forms carry the page's CSRF token.
	ctx := components.WithCSRF(c.Request().Context(), httpx.CSRFToken(c))
	send := func(ctx context.Context, stream *httpx.Stream) error {
		v, err := s.compare.Get(ctx, a, id)
		if err != nil {
			return err
		}
		return sendHTML(ctx, stream, "candidates", 0, view.Grid(view.Data{View: v, CanCompare: can}))
	}
	return s.followRun(c, a, v.ReplayRunID, 0, httpx.RunFollower{
		UntilFinished: true,
		Changed: func(stream *httpx.Stream, _ []runs.Event, _ runs.Run) error {
			return send(ctx, stream)
		},
	})
}

// PreferCandidate marks the output a person prefers.
func (s *Pages) PreferCandidate(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	id, err := httpx.PathID(c, "id")
	if err != nil {
		return err
	}
	err = s.compare.Prefer(c.Request().Context(), a, id, c.FormValue("preferred"))
	var verrs validation.Errors
	if errors.As(err, &verrs) {
		s.addFlash(c, "error", verrs["preferred"])
		return redirect(c, view.Path(id))
	}
	if err != nil {
		return err
	}
	s.addFlash(c, "success", "Your choice is kept with the comparison.")
	return redirect(c, view.Path(id))
}

// DeleteComparison deletes a comparison and its replay.
func (s *Pages) DeleteComparison(c echo.Context) error {
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
	if err := s.compare.Delete(c.Request().Context(), a, id); err != nil {
		return err
	}
	s.addFlash(c, "success", fmt.Sprintf("Comparison #%d deleted.", id))
	return redirect(c, fmt.Sprintf("/runs/%d", v.RunID))
}
