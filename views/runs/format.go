package runs

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nofxhq/nofx/internal/plan"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/views/components"
)

// statusLabels are the words shown for run and step statuses.
var statusLabels = map[string]string{
	runs.StepQueued:    "Queued",
	runs.StepRunning:   "Running",
	runs.StepWaiting:   "Waiting",
	runs.StepSucceeded: "Succeeded",
	runs.StepFailed:    "Failed",
	runs.StepCancelled: "Cancelled",
	runs.StepTimedOut:  "Timed out",
	runs.StepSkipped:   "Skipped",
}

// StatusLabel is a run or step status as a person reads it.
func StatusLabel(status string) string {
	if l, ok := statusLabels[status]; ok {
		return l
	}
	return status
}

// statusClass is the CSS class that colours a status badge.
func statusClass(status string) string {
	return "status status-" + strings.ReplaceAll(status, "_", "-")
}

// tokens writes input and output token counts.
func tokens(in, out int64) string {
	return components.FormatCount(in) + " in · " + components.FormatCount(out) + " out"
}

// startedAt is when a run started, or when it was created if it has not.
func startedAt(r runs.Run) time.Time {
	if r.StartedAt != nil {
		return *r.StartedAt
	}
	return r.CreatedAt
}

// runPath is the address of a run's page.
func runPath(id int64) string { return "/runs/" + strconv.FormatInt(id, 10) }

// actionPath is the address of an action on a run.
func actionPath(id int64, action string) string { return runPath(id) + "/" + action }

// stepActionPath is the address of an action on a step of a run.
func stepActionPath(id int64, step, action string) string {
	return runPath(id) + "/steps/" + step + "/" + action
}

// LivePath is the address of a run's live updates after event after.
func LivePath(id, after int64) string {
	return fmt.Sprintf("%s/live?after=%d", runPath(id), after)
}

// progressText says how far a run's steps got: "2 of 3 steps", or, when
// some failed or did not run, "1 of 3 succeeded, 1 failed, 1 skipped".
func progressText(r runs.Run) string {
	if r.StepsFailed == 0 && r.StepsSkipped == 0 {
		if r.StepsTotal == 1 {
			return fmt.Sprintf("%d of 1 step", r.StepsDone)
		}
		return fmt.Sprintf("%d of %d steps", r.StepsDone, r.StepsTotal)
	}
	return fmt.Sprintf("%d of %d succeeded", stepsSucceeded(r), r.StepsTotal) + progressOutcomes(r)
}

// progressWords is progressText as a sentence: "2 of 3 steps done".
func progressWords(r runs.Run) string {
	if r.StepsFailed == 0 && r.StepsSkipped == 0 {
		return progressText(r) + " done"
	}
	return progressText(r)
}

// progressShort is progressText for a narrow column: "2/3", or "1/3, 1
// failed" when some failed or did not run (the first number counts the
// steps that succeeded).
func progressShort(r runs.Run) string {
	if r.StepsFailed == 0 && r.StepsSkipped == 0 {
		return fmt.Sprintf("%d/%d", r.StepsDone, r.StepsTotal)
	}
	return fmt.Sprintf("%d/%d", stepsSucceeded(r), r.StepsTotal) + progressOutcomes(r)
}

// progressOutcomes is ", 1 failed, 2 skipped" for the steps that failed and
// did not run (in a cancelled run, "cancelled").
func progressOutcomes(r runs.Run) string {
	var s string
	if r.StepsFailed > 0 {
		s += fmt.Sprintf(", %d failed", r.StepsFailed)
	}
	if r.StepsSkipped > 0 {
		word := "skipped"
		if r.Status == runs.RunCancelled {
			word = "cancelled"
		}
		s += fmt.Sprintf(", %d %s", r.StepsSkipped, word)
	}
	return s
}

// stepsSucceeded is how many of the run's steps succeeded.
func stepsSucceeded(r runs.Run) int {
	return max(r.StepsDone-r.StepsFailed-r.StepsSkipped, 0)
}

// attemptsText says which attempt a step is on.
func attemptsText(s runs.Step) string {
	return fmt.Sprintf("%d of %d", s.Attempt, s.MaxAttempts)
}

// StepPrompt is the prompt a step sent (rendered), or its template until
// it has run.
func StepPrompt(s runs.Step) string {
	if s.RenderedPrompt != "" {
		return s.RenderedPrompt
	}
	return s.Prompt
}

// kindLabel names a step kind.
func kindLabel(kind string) string {
	switch kind {
	case plan.KindLLM:
		return "LLM"
	case plan.KindText:
		return "Text"
	case plan.KindApproval:
		return "Approval"
	}
	return kind
}

// eventClass tells apart the timeline entries by outcome.
func eventClass(kind string) string {
	switch {
	case strings.HasSuffix(kind, ".succeeded"), strings.HasSuffix(kind, ".approved"):
		return "event event-good"
	case strings.HasSuffix(kind, ".failed"), strings.HasSuffix(kind, ".rejected"), strings.HasSuffix(kind, ".timed_out"):
		return "event event-bad"
	case strings.HasSuffix(kind, ".retrying"), strings.HasSuffix(kind, ".waiting"), strings.HasSuffix(kind, ".retried"):
		return "event event-attention"
	}
	return "event"
}

// modelExamples are a model each provider knows, which the New run form
// suggests when the provider is chosen, and how its hint names them.
var modelExamples = map[string]struct{ Model, Hint string }{
	"simulated": {"echo", "echo or lorem"},
	"anthropic": {"claude-sonnet-4-5", "such as claude-sonnet-4-5"},
	"openai":    {"gpt-4.1-mini", "such as gpt-4.1-mini"},
}

// modelHint names models of the chosen provider: "simulated: echo or
// lorem." (app.js follows the choice).
func modelHint(provider string) string {
	if e, ok := modelExamples[provider]; ok {
		return provider + ": " + e.Hint + "."
	}
	return ""
}
