package runs

import (
	"strings"

	"github.com/nofxhq/nofx/internal/ai"
	"github.com/nofxhq/nofx/internal/plan"
	"github.com/nofxhq/nofx/internal/validation"
)

// Request asks for a run as POST /api/v1/runs and the New run form both
// send it: exactly one of a template (its slug), a prompt (with a provider
// and model, or the defaults), or a plan as JSON.
type Request struct {
	Template string
	Prompt   string
	Provider string
	Model    string
	Plan     []byte
}

// Resolved is what a request asks to run: a template's current version,
// or a plan of its own.
type Resolved struct {
	Template string // the slug, when the run starts from a template
	Plan     plan.Plan
}

// Resolve checks the request and returns what it runs. Problems are
// validation errors on the fields named "template", "prompt", "provider"
// and "plan" (and the plan's own, such as "steps[0].model").
func (r Request) Resolve() (Resolved, error) {
	given := 0
	for _, set := range []bool{r.Template != "", r.Prompt != "", len(r.Plan) > 0} {
		if set {
			given++
		}
	}
	switch {
	case given == 0 && (r.Provider != "" || r.Model != ""):
		return Resolved{}, validation.Errors{"prompt": "Write a prompt."} // a provider and model without their prompt
	case given != 1:
		return Resolved{}, validation.Errors{"plan": "Give exactly one of template, prompt or plan."}
	case r.Prompt != "":
		if strings.TrimSpace(r.Prompt) == "" {
			return Resolved{}, validation.Errors{"prompt": "Write a prompt."}
		}
		return Resolved{Plan: PromptPlan(r.Prompt, r.Provider, r.Model)}, nil
	case r.Provider != "" || r.Model != "":
		return Resolved{}, validation.Errors{"provider": "provider and model go with a prompt; a template or a plan names them per step."}
	case r.Template != "":
		return Resolved{Template: r.Template}, nil
	}
	p, err := plan.Parse(r.Plan)
	if err != nil {
		return Resolved{}, err
	}
	return Resolved{Plan: p}, nil
}

// PromptGoalChars is how much of a prompt a prompt run's goal keeps.
const PromptGoalChars = 80

// PromptPlan is the one-step plan of a free prompt: on the simulated
// provider's echo model unless another is named, with the prompt's first
// PromptGoalChars characters, its spaces folded, as the goal.
func PromptPlan(prompt, provider, model string) plan.Plan {
	if provider == "" {
		provider = ai.SimulatedName
	}
	if model == "" && provider == ai.SimulatedName {
		model = "echo"
	}
	goal := strings.Join(strings.Fields(prompt), " ")
	if r := []rune(goal); len(r) > PromptGoalChars {
		goal = string(r[:PromptGoalChars-1]) + "…"
	}
	return plan.Plan{Goal: goal, Steps: []plan.StepSpec{{Name: "prompt", Kind: plan.KindLLM, Provider: provider, Model: model, Prompt: prompt}}}
}
