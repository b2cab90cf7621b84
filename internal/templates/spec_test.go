package templates_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/ai"
	"github.com/nofxhq/nofx/internal/plan"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/templates"
	"github.com/nofxhq/nofx/internal/validation"
)

// checker is a service that checks specs against the simulated provider.
func checker() *templates.Service {
	return &templates.Service{Runs: &runs.Service{Providers: ai.NewRegistry(ai.NewSimulated(1))}}
}

const exampleJSON = `{
  "slug": "brief",
  "name": "  Brief  ",
  "description": "A brief",
  "inputs": [
    {"name": "topic", "type": "text", "required": true},
    {"name": "words", "label": "Words", "type": "number", "default": 120},
    {"name": "tone", "type": "choice", "choices": ["dry", "warm"], "default": "warm"}
  ],
  "plan": {"goal": "Write a brief", "steps": [
    {"name": "draft", "kind": "llm", "provider": "simulated", "model": "echo",
     "prompt": "{{inputs.words}} {{inputs.tone}} words on {{inputs.topic}} <&>"},
    {"name": "final", "kind": "text", "prompt": "Final: {{steps.draft.output}}", "needs": ["draft"]}
  ]}
}`

func parse(t *testing.T, text string) templates.Spec {
	t.Helper()
	s, err := templates.Parse([]byte(text))
	require.NoError(t, err)
	return s
}

func TestParseExportRoundTrip(t *testing.T) {
	s := parse(t, exampleJSON)
	require.Equal(t, "120", s.Inputs[1].Default, "a number default is kept as its decimal text")
	errs, warnings := checker().Check(&s)
	require.Empty(t, errs)
	require.Empty(t, warnings)
	require.Equal(t, "Brief", s.Name)
	require.Equal(t, "topic", s.Inputs[0].Label, "label filled from the name")
	require.Equal(t, 3, s.Plan.Steps[0].MaxAttempts, "plan normalized")

	out := s.Export()
	require.True(t, strings.HasSuffix(string(out), "}\n"))
	require.Contains(t, string(out), "<&>", "no HTML escaping in the export")
	again, err := templates.Parse(out)
	require.NoError(t, err)
	require.Equal(t, s, again)
	require.Equal(t, string(out), string(again.Export()))

	empty := templates.Spec{Slug: "x"}
	require.Contains(t, string(empty.Export()), `"inputs": []`)
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"empty", " ", "empty"},
		{"array", `[]`, "JSON object"},
		{"syntax", `{"slug":`, "not valid JSON"},
		{"unknown field", `{"slug":"a","colour":"red"}`, `unknown field "colour"`},
		{"unknown step field", `{"plan":{"steps":[{"nme":"a"}]}}`, `unknown field "nme"`},
		{"unknown input field", `{"inputs":[{"name":"a","kind":"text"}]}`, `unknown field "kind"`},
		{"wrong type", `{"slug":3}`, `"slug" must be a string`},
		{"bad default", `{"inputs":[{"name":"a","type":"text","default":true}]}`, "must be a string or a number"},
		{"trailing data", `{"slug":"a"} {}`, "extra data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := templates.Parse([]byte(tc.text))
			var verrs validation.Errors
			require.ErrorAs(t, err, &verrs)
			require.Contains(t, verrs["json"], tc.want)
		})
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(s *templates.Spec)
		field string
		want  string
	}{
		{"no slug", func(s *templates.Spec) { s.Slug = " " }, "slug", "slug"},
		{"bad slug", func(s *templates.Spec) { s.Slug = "Brief" }, "slug", "lowercase"},
		{"slug starts with a digit", func(s *templates.Spec) { s.Slug = "1brief" }, "slug", "lowercase"},
		{"long slug", func(s *templates.Spec) { s.Slug = "b" + strings.Repeat("x", 63) }, "slug", "63"},
		{"no name", func(s *templates.Spec) { s.Name = "" }, "name", "name"},
		{"long name", func(s *templates.Spec) { s.Name = strings.Repeat("n", 101) }, "name", "100"},
		{"long description", func(s *templates.Spec) { s.Description = strings.Repeat("d", 2001) }, "description", "2000"},
		{"too many inputs", func(s *templates.Spec) {
			for len(s.Inputs) <= templates.MaxInputs {
				s.Inputs = append(s.Inputs, templates.Input{Name: "x", Type: "text"})
			}
		}, "inputs", "at most 30"},
		{"input without name", func(s *templates.Spec) { s.Inputs[0].Name = "" }, "inputs[0].name", "name"},
		{"bad input name", func(s *templates.Spec) { s.Inputs[0].Name = "9lives" }, "inputs[0].name", "not starting with a digit"},
		{"dashed input name", func(s *templates.Spec) { s.Inputs[0].Name = "a-b" }, "inputs[0].name", "letters, digits and _"},
		{"duplicate input", func(s *templates.Spec) { s.Inputs[2].Name = "topic" }, "inputs[2].name", "already the name of inputs[0]"},
		{"no type", func(s *templates.Spec) { s.Inputs[0].Type = "" }, "inputs[0].type", "Choose a type"},
		{"bad type", func(s *templates.Spec) { s.Inputs[0].Type = "date" }, "inputs[0].type", `not "date"`},
		{"choice without choices", func(s *templates.Spec) { s.Inputs[2].Choices = nil; s.Inputs[2].Default = "" }, "inputs[2].choices", "at least one"},
		{"empty choice", func(s *templates.Spec) { s.Inputs[2].Choices = []string{"dry", " ", "warm"} }, "inputs[2].choices", "empty"},
		{"duplicate choice", func(s *templates.Spec) { s.Inputs[2].Choices = []string{"dry", "warm", "dry"} }, "inputs[2].choices", "more than once"},
		{"choices on text", func(s *templates.Spec) { s.Inputs[0].Choices = []string{"a"} }, "inputs[0].choices", "Only choice inputs"},
		{"number default", func(s *templates.Spec) { s.Inputs[1].Default = "many" }, "inputs[1].default", "must be a number"},
		{"choice default", func(s *templates.Spec) { s.Inputs[2].Default = "loud" }, "inputs[2].default", "one of the choices"},
		{"undeclared input", func(s *templates.Spec) { s.Plan.Steps[1].Prompt = "{{inputs.audience}}: {{steps.draft.output}}" },
			"steps[1].prompt", "{{inputs.audience}} is not a declared input: add it under Inputs."},
		{"undeclared input in the goal", func(s *templates.Spec) { s.Plan.Goal = "Brief on {{inputs.audience}}" },
			"goal", "{{inputs.audience}} is not a declared input"},
		{"step output in the goal", func(s *templates.Spec) { s.Plan.Goal = "{{steps.draft.output}}" }, "goal", "not step outputs"},
		{"bad goal template", func(s *templates.Spec) { s.Plan.Goal = "Brief on {{inputs.topic" }, "goal", "Fix the template"},
		{"plan: no steps", func(s *templates.Spec) { s.Plan.Steps = nil }, "steps", "at least one step"},
		{"plan: unknown model", func(s *templates.Spec) { s.Plan.Steps[0].Model = "gpt-9" }, "steps[0].model", ""},
		{"plan: unknown provider", func(s *templates.Spec) { s.Plan.Steps[0].Provider = "nowhere" }, "steps[0].provider", "unknown provider"},
		{"plan: bad needs", func(s *templates.Spec) { s.Plan.Steps[1].Needs = []string{"nope"} }, "steps[1].needs", "no step"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := parse(t, exampleJSON)
			tc.edit(&s)
			errs, _ := checker().Check(&s)
			require.Contains(t, errs, tc.field, errs)
			require.Contains(t, errs[tc.field], tc.want)
		})
	}
}

func TestCheckWarnsAboutUnusedInputs(t *testing.T) {
	s := parse(t, exampleJSON)
	s.Inputs = append(s.Inputs, templates.Input{Name: "audience", Type: "text", Required: true})
	errs, warnings := checker().Check(&s)
	require.Empty(t, errs, "an unused input does not block saving")
	require.Equal(t, validation.Errors{"inputs[3].name": "No prompt uses this input."}, warnings)
}

func TestValues(t *testing.T) {
	s := parse(t, exampleJSON)
	s.Inputs = append(s.Inputs,
		templates.Input{Name: "notes", Type: "long_text"},
		templates.Input{Name: "count", Type: "number"})
	s.Normalize()

	got, err := s.Values(map[string]any{"topic": "otters", "words": "80"})
	require.NoError(t, err)
	require.Equal(t, map[string]any{"topic": "otters", "words": float64(80), "tone": "warm", "notes": "", "count": ""}, got)

	got, err = s.Values(map[string]any{"topic": 42.0, "words": 3, "tone": "dry", "count": 2.5})
	require.NoError(t, err)
	require.Equal(t, "42", got["topic"], "a number given for text is its text")
	require.Equal(t, float64(3), got["words"])
	require.Equal(t, float64(2.5), got["count"])

	for _, tc := range []struct {
		name string
		raw  map[string]any
		key  string
		want string
	}{
		{"required missing", map[string]any{}, "inputs.topic", "Fill this in."},
		{"required blank", map[string]any{"topic": "  "}, "inputs.topic", "Fill this in."},
		{"not a number", map[string]any{"topic": "x", "words": "lots"}, "inputs.words", "Enter a number."},
		{"bool for number", map[string]any{"topic": "x", "words": true}, "inputs.words", "Enter a number."},
		{"not a choice", map[string]any{"topic": "x", "tone": "loud"}, "inputs.tone", "Choose one of: dry, warm."},
		{"object for text", map[string]any{"topic": map[string]any{}}, "inputs.topic", "Enter text."},
		{"long text", map[string]any{"topic": strings.Repeat("é", templates.MaxTextChars+1)}, "inputs.topic", "at most 2000"},
		{"long long text", map[string]any{"topic": "x", "notes": strings.Repeat("x", 64<<10+1)}, "inputs.notes", "64 KiB"},
		{"unknown key", map[string]any{"topic": "x", "colour": "red"}, "inputs.colour", "This template has no input named colour."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Values(tc.raw)
			var verrs validation.Errors
			require.ErrorAs(t, err, &verrs)
			require.Contains(t, verrs[tc.key], tc.want, verrs)
		})
	}
}

func TestVersionRunInput(t *testing.T) {
	s := parse(t, exampleJSON)
	s.Normalize()
	v := templates.Version{Number: 4, Name: s.Name, InputsJSON: mustJSON(t, s.Inputs), PlanJSON: mustJSON(t, s.Plan)}
	in, err := v.RunInput("brief", map[string]any{"topic": "otters"})
	require.NoError(t, err)
	require.Equal(t, "brief", in.Template)
	require.Equal(t, 4, in.TemplateVersion)
	require.Equal(t, s.Plan, in.Plan)
	require.Equal(t, float64(120), in.Inputs["words"])

	// The goal is each run's title, rendered with the inputs, or the
	// template's name when empty.
	s.Plan.Goal = "Brief on {{inputs.topic}}"
	v.PlanJSON = mustJSON(t, s.Plan)
	in, err = v.RunInput("brief", map[string]any{"topic": "otters"})
	require.NoError(t, err)
	require.Equal(t, "Brief on otters", in.Plan.Goal)
	s.Plan.Goal = ""
	v.PlanJSON = mustJSON(t, s.Plan)
	in, err = v.RunInput("brief", map[string]any{"topic": "otters"})
	require.NoError(t, err)
	require.Equal(t, s.Name, in.Plan.Goal)

	_, err = v.RunInput("brief", map[string]any{})
	var verrs validation.Errors
	require.ErrorAs(t, err, &verrs)
	require.Contains(t, verrs, "inputs.topic")
}

func TestPreview(t *testing.T) {
	s := parse(t, exampleJSON)
	s.Plan.Steps = append(s.Plan.Steps,
		plan.StepSpec{Name: "gate", Kind: plan.KindApproval, Needs: []string{"final"}},
		plan.StepSpec{Name: "oops", Kind: plan.KindText, Prompt: "{{inputs.audience}} then {{inputs.topic}}"},
		plan.StepSpec{Name: "broken", Kind: plan.KindText, Prompt: "{{ nope }}"})
	s.Normalize()

	sample := templates.SampleInputs(s)
	require.Equal(t, map[string]any{"topic": "sample topic", "words": float64(120), "tone": "warm"}, sample)

	steps := templates.Preview(s, sample)
	require.Len(t, steps, 5)
	require.Equal(t, "120 warm words on sample topic <&>", steps[0].Rendered)
	require.Equal(t, "Final: [output of draft]", steps[1].Rendered)
	require.Equal(t, templates.PreviewStep{Name: "gate", Kind: plan.KindApproval}, steps[2], "an approval without a message renders nothing")
	require.Equal(t, "inputs.audience", steps[3].Missing, "the exact missing variable")
	require.Empty(t, steps[3].Rendered)
	require.Empty(t, steps[4].Missing)
	require.Contains(t, steps[4].Error, "bad template reference")

	steps = templates.Preview(s, map[string]any{"topic": "otters"})
	require.Equal(t, "inputs.words", steps[0].Missing)

	require.Equal(t, templates.Preview(s, sample), templates.Preview(s, nil), "nil means the sample inputs")
	numberSample := templates.SampleInputs(templates.Spec{Inputs: []templates.Input{
		{Name: "n", Type: "number"}, {Name: "c", Type: "choice", Choices: []string{"b", "a"}}, {Name: "l", Label: "Long", Type: "long_text"}}})
	require.Equal(t, map[string]any{"n": float64(1), "c": "b", "l": "sample Long"}, numberSample)
}

func TestDiffSpecs(t *testing.T) {
	older := parse(t, exampleJSON)
	older.Normalize()
	newer := older
	newer.Description = "A shorter brief"
	newer.Inputs = append([]templates.Input(nil), older.Inputs...)
	newer.Inputs = newer.Inputs[:2]

	lines := templates.DiffSpecs(older, newer)
	var removed, added []string
	oldNo, newNo := 0, 0
	for _, l := range lines {
		switch l.Op {
		case '-':
			removed = append(removed, strings.TrimSpace(l.Text))
			oldNo++
			require.Equal(t, oldNo, l.OldNo)
			require.Zero(t, l.NewNo)
		case '+':
			added = append(added, strings.TrimSpace(l.Text))
			newNo++
			require.Equal(t, newNo, l.NewNo)
			require.Zero(t, l.OldNo)
		default:
			oldNo++
			newNo++
			require.Equal(t, oldNo, l.OldNo)
			require.Equal(t, newNo, l.NewNo)
		}
	}
	require.Equal(t, []string{`"description": "A shorter brief",`}, added)
	require.Contains(t, removed, `"description": "A brief",`)
	require.Contains(t, removed, `"name": "tone",`)
	require.Equal(t, strings.Count(string(older.Export()), "\n"), oldNo, "every old line is accounted for")
	require.Equal(t, strings.Count(string(newer.Export()), "\n"), newNo, "every new line is accounted for")

	for _, l := range templates.DiffSpecs(older, older) {
		require.Equal(t, byte(' '), l.Op, "no difference with itself")
	}
}

func TestStartersAreValid(t *testing.T) {
	starters := templates.Starters()
	require.Len(t, starters, 3)
	slugs := []string{}
	for _, s := range starters {
		slugs = append(slugs, s.Slug)
		errs, warnings := checker().Check(&s)
		require.Empty(t, errs, s.Slug)
		require.Empty(t, warnings, s.Slug)
		require.NotEmpty(t, s.Inputs, s.Slug)
		again, err := templates.Parse(s.Export())
		require.NoError(t, err)
		require.Equal(t, s, again)
		for _, p := range templates.Preview(s, nil) {
			require.Empty(t, p.Missing, "%s %s", s.Slug, p.Name)
			require.Empty(t, p.Error, "%s %s", s.Slug, p.Name)
		}
	}
	require.Equal(t, []string{templates.StarterSummary, templates.StarterDraftReview, templates.StarterFanOut}, slugs)
	kinds := func(s templates.Spec) (k []string) {
		for _, step := range s.Plan.Steps {
			k = append(k, step.Kind)
		}
		return k
	}
	require.Equal(t, []string{"llm"}, kinds(starters[0]))
	require.Equal(t, []string{"llm", "llm", "approval"}, kinds(starters[1]))
	require.Equal(t, []string{"llm", "llm", "text"}, kinds(starters[2]))
	require.Empty(t, starters[2].Plan.Steps[0].Needs, "the fan-out's first two steps run in parallel")
	require.Empty(t, starters[2].Plan.Steps[1].Needs)
	require.Equal(t, []string{"pros", "cons"}, starters[2].Plan.Steps[2].Needs)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// TestDiffSpecsLargeChange checks that a change too large to match line by
// line comes back as one block (old lines removed, new lines added) rather
// than a table of millions of cells, while a small change still matches the
// lines both sides share.
func TestDiffSpecsLargeChange(t *testing.T) {
	spec := func(n, value int) templates.Spec {
		s := parse(t, exampleJSON)
		s.Normalize()
		list := make([]any, n)
		for i := range list {
			if i%2 == 0 {
				list[i] = value
			} else {
				list[i] = "shared"
			}
		}
		s.Plan.Steps[0].Options = map[string]any{"list": list}
		return s
	}
	count := func(lines []templates.DiffLine) (same, removed, added int) {
		for _, l := range lines {
			switch l.Op {
			case '-':
				removed++
			case '+':
				added++
			default:
				same++
			}
		}
		return
	}

	// Small: the "shared" lines between the changed numbers are matched.
	same, removed, added := count(templates.DiffSpecs(spec(20, 0), spec(20, 1)))
	require.Equal(t, 10, removed)
	require.Equal(t, 10, added)
	small := same

	// Large: 2 × 3,000 changed lines would need a 9-million-cell table.
	older, newer := spec(3000, 0), spec(3000, 1)
	lines := templates.DiffSpecs(older, newer)
	same, removed, added = count(lines)
	require.Equal(t, removed, added)
	require.Equal(t, 2999, removed, "the whole changed middle (all but the last, shared, line) is one block")
	require.Less(t, same, small+10, "only the common head and tail are unchanged lines")
	oldLines := strings.Count(string(older.Export()), "\n")
	newLines := strings.Count(string(newer.Export()), "\n")
	require.Equal(t, oldLines, same+removed)
	require.Equal(t, newLines, same+added)
}
