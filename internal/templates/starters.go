package templates

import (
	"context"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/ai"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/plan"
)

// Slugs of the other starter templates.
const (
	StarterDraftReview = "draft-review"
	StarterFanOut      = "fan-out"
)

// StarterNote is the change note of a starter template's first version.
const StarterNote = "Starter template"

// llmStep is an llm step on the simulated provider.
func llmStep(name, model, prompt string, needs ...string) plan.StepSpec {
	return plan.StepSpec{Name: name, Kind: plan.KindLLM, Provider: ai.SimulatedName, Model: model, Prompt: prompt, Needs: needs}
}

// Starters returns the templates every new team starts with; each runs as
// it is on the simulated provider.
func Starters() []Spec {
	specs := []Spec{
		{
			Slug:        StarterSummary,
			Name:        "Summary",
			Description: "Summarises a text in one step.",
			Inputs: []Input{
				{Name: "text", Label: "Text to summarise", Type: InputLongText, Required: true},
			},
			Plan: plan.Plan{
				Goal: "Summarise a text",
				Steps: []plan.StepSpec{
					llmStep("summarize", "echo", "Summarise the following text in three sentences:\n\n{{inputs.text}}"),
				},
			},
		},
		{
			Slug:        StarterDraftReview,
			Name:        "Draft, review, approve",
			Description: "Drafts a piece, has it reviewed, and waits for a person to approve it.",
			Inputs: []Input{
				{Name: "topic", Label: "Topic", Type: InputText, Required: true},
				{Name: "tone", Label: "Tone", Type: InputChoice, Default: "friendly", Choices: []string{"friendly", "formal", "playful"}},
			},
			Plan: plan.Plan{
				Goal: "Draft and review a short piece",
				Steps: []plan.StepSpec{
					llmStep("draft", "lorem", "Write a short, {{inputs.tone}} piece about {{inputs.topic}}."),
					llmStep("review", "echo", "Review this draft and suggest improvements:\n\n{{steps.draft.output}}", "draft"),
					{Name: "approve", Kind: plan.KindApproval, Prompt: "Publish this piece?\n\n{{steps.review.output}}", Needs: []string{"review"}},
				},
			},
		},
		{
			Slug:        StarterFanOut,
			Name:        "Pros and cons",
			Description: "Weighs the pros and the cons of a topic in parallel, then joins them.",
			Inputs: []Input{
				{Name: "topic", Label: "Topic", Type: InputText, Required: true},
				{Name: "points", Label: "Points per side", Type: InputNumber, Default: "3"},
			},
			Plan: plan.Plan{
				Goal: "Weigh the pros and cons of a topic",
				Steps: []plan.StepSpec{
					llmStep("pros", "echo", "List {{inputs.points}} arguments for {{inputs.topic}}."),
					llmStep("cons", "echo", "List {{inputs.points}} arguments against {{inputs.topic}}."),
					{Name: "verdict", Kind: plan.KindText, Needs: []string{"pros", "cons"},
						Prompt: "Pros of {{inputs.topic}}:\n{{steps.pros.output}}\n\nCons:\n{{steps.cons.output}}"},
				},
			},
		},
	}
	for i := range specs {
		specs[i].Normalize()
	}
	return specs
}

// SeedStarters saves the starter templates into a new team, in the
// transaction that creates the team (q), as version 1 by actor. It writes
// no audit rows: the team's creation is audited.
func SeedStarters(ctx context.Context, q db.Queryer, teamID int64, actor access.Actor) error {
	now := db.Now()
	for _, spec := range Starters() {
		if _, _, err := insertTemplate(ctx, q, teamID, spec, StarterNote, actor, now); err != nil {
			return err
		}
	}
	return nil
}
