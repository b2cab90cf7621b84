package pages

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/views/admin"
)

// deadLettersShown caps the dead letters one page lists and acts on.
const deadLettersShown = 200

// DeadLettersPage lists the steps the engine gave up on, across teams.
func (s *Pages) DeadLettersPage(c echo.Context) error {
	ctx := c.Request().Context()
	list, err := s.runs.DeadLetters(ctx, deadLettersShown)
	if err != nil {
		return err
	}
	ids := make([]int64, len(list))
	for i, d := range list {
		ids[i] = d.JobID
	}
	errs, err := s.engine.JobErrors(ctx, ids)
	if err != nil {
		return err
	}
	for i := range list {
		list[i].Error = errs[list[i].JobID]
	}
	return s.Render(c, http.StatusOK, Page{Title: "Dead letters", Nav: "admin", Content: admin.DeadLetters(list)})
}

// RetryDeadLetters gives the selected dead letters (or all) a new job.
func (s *Pages) RetryDeadLetters(c echo.Context) error {
	return s.actOnDeadLetters(c, "retried", func(jobID int64) error {
		return s.runs.RetryDeadLetter(c.Request().Context(), jobID, auditEntry(c, "", "", ""))
	})
}

// DiscardDeadLetters fails the selected dead letters (or all).
func (s *Pages) DiscardDeadLetters(c echo.Context) error {
	reason := strings.TrimSpace(c.FormValue("reason"))
	if r := []rune(reason); len(r) > 500 {
		reason = string(r[:500]) // on a character, never inside one
	}
	return s.actOnDeadLetters(c, "discarded", func(jobID int64) error {
		return s.runs.DiscardDeadLetter(c.Request().Context(), jobID, reason, auditEntry(c, "", "", ""))
	})
}

// actOnDeadLetters applies act to the dead letters the form selects: the
// job ids in "job", or every one listed with all=1.
func (s *Pages) actOnDeadLetters(c echo.Context, done string, act func(jobID int64) error) error {
	var ids []int64
	if c.FormValue("all") == "1" {
		list, err := s.runs.DeadLetters(c.Request().Context(), deadLettersShown)
		if err != nil {
			return err
		}
		for _, d := range list {
			ids = append(ids, d.JobID)
		}
	} else {
		form, err := c.FormParams()
		if err != nil {
			return err
		}
		for _, v := range form["job"] {
			id, err := strconv.ParseInt(v, 10, 64)
			if err != nil || id < 1 {
				return echo.NewHTTPError(http.StatusBadRequest, "Select dead letters by their job ids.")
			}
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		s.addFlash(c, "error", "Select at least one dead letter.")
		return redirect(c, "/admin/dead-letters")
	}
	n, gone := 0, 0
	for _, id := range ids {
		err := act(id)
		switch {
		case errors.Is(err, runs.ErrNotDeadLetter):
			gone++
		case err != nil:
			return err
		default:
			n++
		}
	}
	msg := fmt.Sprintf("%d dead letters %s.", n, done)
	if n == 1 {
		msg = "1 dead letter " + done + "."
	}
	if gone > 0 {
		msg += fmt.Sprintf(" %d had moved on already.", gone)
	}
	s.addFlash(c, "success", msg)
	return redirect(c, "/admin/dead-letters")
}
