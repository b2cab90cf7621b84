package runs_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/validation"
)

func TestRequestResolve(t *testing.T) {
	t.Parallel()
	plan := []byte(`{"goal":"g","steps":[{"name":"a","kind":"text","prompt":"hi"}]}`)
	for _, tc := range []struct {
		name  string
		req   runs.Request
		field string // the field of the problem, or "" when it resolves
		want  string // a piece of the problem
	}{
		{"nothing", runs.Request{}, "plan", "exactly one"},
		{"provider without a prompt", runs.Request{Provider: "simulated", Model: "echo"}, "prompt", "Write a prompt."},
		{"blank prompt", runs.Request{Prompt: "  \n"}, "prompt", "Write a prompt."},
		{"prompt and plan", runs.Request{Prompt: "hi", Plan: plan}, "plan", "exactly one"},
		{"template and prompt", runs.Request{Template: "t", Prompt: "hi"}, "plan", "exactly one"},
		{"model with a plan", runs.Request{Plan: plan, Model: "m"}, "provider", "go with a prompt"},
		{"provider with a template", runs.Request{Template: "t", Provider: "openai"}, "provider", "go with a prompt"},
		{"bad plan", runs.Request{Plan: []byte(`{"goal":1}`)}, "plan", `"goal" must be a string`},
		{"prompt", runs.Request{Prompt: "hi"}, "", ""},
		{"template", runs.Request{Template: "t"}, "", ""},
		{"plan", runs.Request{Plan: plan}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.req.Resolve()
			if tc.field == "" {
				require.NoError(t, err)
				return
			}
			var errs validation.Errors
			require.ErrorAs(t, err, &errs)
			require.Contains(t, errs, tc.field, "%v", errs)
			require.Contains(t, errs[tc.field], tc.want)
			require.Zero(t, got)
		})
	}

	got, err := runs.Request{Template: "daily"}.Resolve()
	require.NoError(t, err)
	require.Equal(t, "daily", got.Template)
	require.Empty(t, got.Plan.Steps)

	got, err = runs.Request{Plan: plan}.Resolve()
	require.NoError(t, err)
	require.Empty(t, got.Template)
	require.Equal(t, "g", got.Plan.Goal)
}

func TestPromptPlan(t *testing.T) {
	t.Parallel()
	p := runs.PromptPlan("Summarise\n\n  the   news", "", "")
	require.Equal(t, "Summarise the news", p.Goal, "spaces fold")
	require.Len(t, p.Steps, 1)
	require.Equal(t, "simulated", p.Steps[0].Provider)
	require.Equal(t, "echo", p.Steps[0].Model)
	require.Equal(t, "Summarise\n\n  the   news", p.Steps[0].Prompt, "the prompt itself is kept")
	require.Empty(t, p.Validate())

	p = runs.PromptPlan(strings.Repeat("é", 200), "openai", "")
	require.Equal(t, "openai", p.Steps[0].Provider)
	require.Empty(t, p.Steps[0].Model, "no default model for another provider")
	require.Len(t, []rune(p.Goal), runs.PromptGoalChars)
	require.True(t, strings.HasSuffix(p.Goal, "…"))
}
