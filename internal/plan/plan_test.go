package plan

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/validation"
)

// planTestLLM is a valid llm step with the given name and needs.
func planTestLLM(name string, needs ...string) StepSpec {
	return StepSpec{Name: name, Kind: KindLLM, Provider: "simulated", Model: "echo", Prompt: "write about {{inputs.topic}}", Needs: needs}
}

// planTestDiamond is a → b, a → c, b+c → d.
func planTestDiamond() Plan {
	return Plan{Goal: "diamond", Steps: []StepSpec{
		planTestLLM("a"),
		planTestLLM("b", "a"),
		planTestLLM("c", "a"),
		planTestLLM("d", "b", "c"),
	}}
}

func TestParse(t *testing.T) {
	t.Parallel()
	p, err := Parse([]byte(`{"goal":"g","steps":[{"name":"draft","kind":"llm","provider":"simulated","model":"echo",
		"prompt":"hi","needs":[],"max_attempts":2,"timeout":"30s","options":{"latency_ms":5},
		"fallback":[{"provider":"openai","model":"gpt"}]}]}` + "\n"))
	require.NoError(t, err)
	require.Equal(t, Plan{Goal: "g", Steps: []StepSpec{{
		Name: "draft", Kind: KindLLM, Provider: "simulated", Model: "echo", Prompt: "hi", Needs: []string{},
		MaxAttempts: 2, Timeout: "30s", Options: map[string]any{"latency_ms": float64(5)},
		Fallback: []Fallback{{Provider: "openai", Model: "gpt"}},
	}}}, p)
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, input, fragment string
	}{
		{"unknown top-level field", `{"goal":"g","foo":1}`, `The plan has an unknown field "foo".`},
		{"unknown step field", `{"steps":[{"name":"a","retries":2}]}`, `unknown field "retries"`},
		{"wrong type", `{"steps":[{"name":"a","max_attempts":"3"}]}`, `Field "steps.max_attempts" must be a whole number, not a string.`},
		{"fraction for an integer", `{"steps":[{"max_attempts":1.5}]}`, `must be a whole number, not 1.5.`},
		{"steps not an array", `{"steps":{}}`, `Field "steps" must be an array, not an object.`},
		{"trailing data", `{"goal":"g"} {"goal":"h"}`, "extra data after its JSON object"},
		{"trailing garbage", `{"goal":"g"}x`, "extra data after its JSON object"},
		{"array", `[]`, "must be a JSON object"},
		{"string", `"plan"`, "must be a JSON object"},
		{"null", `null`, "must be a JSON object"},
		{"empty", ` `, "is empty"},
		{"truncated", `{"goal":`, "ends too soon"},
		{"bad syntax", `{"goal" "g"}`, "is not valid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tc.input))
			var verrs validation.Errors
			require.ErrorAs(t, err, &verrs)
			require.Len(t, verrs, 1)
			require.Contains(t, verrs["plan"], tc.fragment)
		})
	}
}

func TestNormalizePlan(t *testing.T) {
	t.Parallel()
	p := Plan{Goal: "  g  ", Steps: []StepSpec{
		{Name: " draft ", Kind: " llm ", Provider: " simulated ", Model: " echo ", Prompt: " keep ", Needs: []string{" x "},
			Fallback: []Fallback{{Provider: " openai ", Model: " gpt "}}},
		{Name: "check", Kind: "approval", MaxAttempts: 5},
		{Name: "edit", Kind: "text", Prompt: "p", MaxAttempts: 7, Timeout: " 5m "},
	}}
	p.Normalize()
	require.Equal(t, Plan{Goal: "g", Steps: []StepSpec{
		{Name: "draft", Kind: KindLLM, Provider: "simulated", Model: "echo", Prompt: " keep ", Needs: []string{"x"},
			Fallback: []Fallback{{Provider: "openai", Model: "gpt"}}, MaxAttempts: DefaultMaxAttempts, Timeout: "60s"},
		{Name: "check", Kind: KindApproval, MaxAttempts: 1, Timeout: "60s"},
		{Name: "edit", Kind: KindText, Prompt: "p", MaxAttempts: 7, Timeout: "5m"},
	}}, p)
}

func TestTimeoutDuration(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		timeout string
		want    time.Duration
	}{
		{"", DefaultTimeout},
		{"5m", 5 * time.Minute},
		{"1s", time.Second},
		{"soon", DefaultTimeout},
		{"-5s", DefaultTimeout},
	} {
		t.Run(tc.timeout, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, StepSpec{Timeout: tc.timeout}.TimeoutDuration())
		})
	}
}

func TestPatienceDuration(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		patience string
		want     time.Duration
	}{
		{"", DefaultPatience},
		{"2s", 2 * time.Second},
		{" 1h ", time.Hour},
		{"soon", DefaultPatience},
		{"-5s", DefaultPatience},
	} {
		t.Run(tc.patience, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, StepSpec{Patience: tc.patience}.PatienceDuration())
		})
	}
	require.Equal(t, 10*time.Minute, DefaultPatience)

	p, err := Parse([]byte(`{"goal":"g","steps":[{"name":"a","kind":"llm","provider":"simulated","model":"echo","prompt":"x","patience":"2s"}]}`))
	require.NoError(t, err)
	require.Nil(t, p.Validate())
	require.Equal(t, 2*time.Second, p.Steps[0].PatienceDuration())
}

func TestValidatePlanAcceptsValidPlans(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		plan Plan
	}{
		{"one llm step", Plan{Goal: "g", Steps: []StepSpec{planTestLLM("draft")}}},
		{"diamond", planTestDiamond()},
		{"no goal, defaults left empty", Plan{Steps: []StepSpec{{Name: "a", Kind: KindText, Prompt: "hello"}}}},
		{"every kind and field", Plan{Goal: strings.Repeat("é", MaxGoalChars), Steps: []StepSpec{
			{Name: "draft", Kind: KindLLM, Provider: "simulated", Model: "echo", Prompt: "about {{ inputs.topic }}",
				MaxAttempts: MaxStepAttempts, Timeout: "1h", Options: map[string]any{"fail_rate": 0.5},
				Fallback: []Fallback{{Provider: "openai", Model: "gpt-4o-mini"}}},
			{Name: "review", Kind: KindApproval, Needs: []string{"draft"}, Timeout: "1s"},
			{Name: "approve_2", Kind: KindApproval, Prompt: "ship {{steps.draft.output}}?", Needs: []string{"review"}},
			{Name: "final-text", Kind: KindText, Prompt: "{{steps.draft.output}} {{steps.review.output}}", Needs: []string{"approve_2"}},
		}}},
		{"fifty steps", Plan{Steps: planTestChain(MaxSteps)}},
		{"curly text that is not a reference", Plan{Steps: []StepSpec{{Name: "a", Kind: KindText, Prompt: `{ "json": 1 } {x} }}`}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			errs := tc.plan.Validate()
			require.Nil(t, errs)
			require.NoError(t, errs.Err())

			normalized := tc.plan
			normalized.Steps = append([]StepSpec(nil), tc.plan.Steps...)
			normalized.Normalize()
			require.NoError(t, normalized.Validate().Err())
		})
	}
}

// planTestChain is n text steps, each needing the one before it.
func planTestChain(n int) []StepSpec {
	steps := make([]StepSpec, n)
	for i := range steps {
		steps[i] = StepSpec{Name: fmt.Sprintf("s%d", i), Kind: KindText, Prompt: "x"}
		if i > 0 {
			steps[i].Needs = []string{steps[i-1].Name}
		}
	}
	return steps
}

func TestValidatePlanReportsEachProblem(t *testing.T) {
	t.Parallel()
	llm := planTestLLM
	text := func(name, prompt string, needs ...string) StepSpec {
		return StepSpec{Name: name, Kind: KindText, Prompt: prompt, Needs: needs}
	}
	approval := func(edit func(*StepSpec)) StepSpec {
		s := StepSpec{Name: "ok", Kind: KindApproval}
		edit(&s)
		return s
	}
	withLLM := func(edit func(*StepSpec)) StepSpec {
		s := llm("a")
		edit(&s)
		return s
	}
	for _, tc := range []struct {
		name     string
		steps    []StepSpec
		goal     string
		key      string
		fragment string
	}{
		{"no steps", nil, "", "steps", "Add at least one step."},
		{"too many steps", planTestChain(MaxSteps + 1), "", "steps", "Use at most 50 steps, not 51."},
		{"goal too long", []StepSpec{llm("a")}, strings.Repeat("x", MaxGoalChars+1), "goal", "at most 2000 characters"},
		{"duplicate name reported on the later step", []StepSpec{llm("a"), llm("b"), llm("a")}, "", "steps[2].name", `"a" is already the name of steps[0]`},
		{"missing name", []StepSpec{llm("")}, "", "steps[0].name", "Give the step a name."},
		{"uppercase name", []StepSpec{llm("Draft")}, "", "steps[0].name", "lowercase letter"},
		{"name starting with a digit", []StepSpec{llm("1st")}, "", "steps[0].name", "lowercase letter"},
		{"name with a dot", []StepSpec{llm("a.b")}, "", "steps[0].name", "a-z, 0-9, _ and -"},
		{"name too long", []StepSpec{llm("a" + strings.Repeat("b", 63))}, "", "steps[0].name", "at most 63 characters"},
		{"missing kind", []StepSpec{withLLM(func(s *StepSpec) { s.Kind = "" })}, "", "steps[0].kind", "Choose a kind"},
		{"unknown kind", []StepSpec{withLLM(func(s *StepSpec) { s.Kind = "shell" })}, "", "steps[0].kind", `Use llm, text or approval, not "shell".`},
		{"llm without provider", []StepSpec{withLLM(func(s *StepSpec) { s.Provider = "" })}, "", "steps[0].provider", "needs a provider"},
		{"llm without model", []StepSpec{withLLM(func(s *StepSpec) { s.Model = "" })}, "", "steps[0].model", "needs a model"},
		{"llm without prompt", []StepSpec{withLLM(func(s *StepSpec) { s.Prompt = "" })}, "", "steps[0].prompt", "needs a prompt"},
		{"text without prompt", []StepSpec{text("a", "")}, "", "steps[0].prompt", "A text step needs a prompt"},
		{"approval with provider", []StepSpec{approval(func(s *StepSpec) { s.Provider = "simulated" })}, "", "steps[0].provider", "Only llm steps take a provider; remove it from this approval step."},
		{"approval with model", []StepSpec{approval(func(s *StepSpec) { s.Model = "echo" })}, "", "steps[0].model", "Only llm steps take a model"},
		{"approval with options", []StepSpec{approval(func(s *StepSpec) { s.Options = map[string]any{"x": 1} })}, "", "steps[0].options", "Only llm steps take options"},
		{"approval with fallback", []StepSpec{approval(func(s *StepSpec) { s.Fallback = []Fallback{{Provider: "p", Model: "m"}} })}, "", "steps[0].fallback", "Only llm steps take fallbacks"},
		{"text with provider", []StepSpec{text("a", "x"), func() StepSpec { s := text("b", "y"); s.Provider = "simulated"; return s }()}, "", "steps[1].provider", "this text step"},
		{"text with fallback", []StepSpec{func() StepSpec { s := text("a", "y"); s.Fallback = []Fallback{{Provider: "p", Model: "m"}}; return s }()}, "", "steps[0].fallback", "Only llm steps take fallbacks; remove it from this text step."},
		{"fallback without provider", []StepSpec{withLLM(func(s *StepSpec) { s.Fallback = []Fallback{{Provider: "p", Model: "m"}, {Model: "m"}} })}, "", "steps[0].fallback[1].provider", "Give the fallback a provider."},
		{"fallback without model", []StepSpec{withLLM(func(s *StepSpec) { s.Fallback = []Fallback{{Provider: "p"}} })}, "", "steps[0].fallback[0].model", "Give the fallback a model."},
		{"too many fallbacks", []StepSpec{withLLM(func(s *StepSpec) {
			s.Fallback = make([]Fallback, MaxFallbacks+1)
			for i := range s.Fallback {
				s.Fallback[i] = Fallback{Provider: "p", Model: "m"}
			}
		})}, "", "steps[0].fallback", "Use at most 5 fallbacks."},
		{"needs an unknown step", []StepSpec{llm("a"), llm("b", "a", "nope")}, "", "steps[1].needs", `There is no step named "nope".`},
		{"needs itself", []StepSpec{llm("a", "a")}, "", "steps[0].needs", "A step cannot need itself."},
		{"needs a step twice", []StepSpec{llm("a"), llm("b", "a", "a")}, "", "steps[1].needs", `"a" is listed more than once.`},
		{"needs an empty name", []StepSpec{llm("a"), llm("b", "")}, "", "steps[1].needs", "Remove the empty step name."},
		{"two-step cycle", []StepSpec{llm("a", "b"), llm("b", "a")}, "", "steps[0].needs", "forms a cycle: a → b → a"},
		{"three-step cycle reported on its first step", []StepSpec{llm("x"), llm("b", "a"), llm("c", "b"), llm("a", "c", "x")}, "", "steps[1].needs", "forms a cycle: b → a → c → b"},
		{"max_attempts too high", []StepSpec{withLLM(func(s *StepSpec) { s.MaxAttempts = MaxStepAttempts + 1 })}, "", "steps[0].max_attempts", "Use a number from 1 to 10."},
		{"max_attempts negative", []StepSpec{withLLM(func(s *StepSpec) { s.MaxAttempts = -1 })}, "", "steps[0].max_attempts", "Use a number from 1 to 10."},
		{"timeout unreadable", []StepSpec{withLLM(func(s *StepSpec) { s.Timeout = "soon" })}, "", "steps[0].timeout", `a duration like "60s"`},
		{"timeout without a unit", []StepSpec{withLLM(func(s *StepSpec) { s.Timeout = "60" })}, "", "steps[0].timeout", `a duration like "60s"`},
		{"timeout too short", []StepSpec{withLLM(func(s *StepSpec) { s.Timeout = "500ms" })}, "", "steps[0].timeout", "Use a duration from 1s to 1h."},
		{"timeout too long", []StepSpec{withLLM(func(s *StepSpec) { s.Timeout = "61m" })}, "", "steps[0].timeout", "Use a duration from 1s to 1h."},
		{"patience unreadable", []StepSpec{withLLM(func(s *StepSpec) { s.Patience = "a while" })}, "", "steps[0].patience", `a duration like "10m"`},
		{"patience without a unit", []StepSpec{withLLM(func(s *StepSpec) { s.Patience = "600" })}, "", "steps[0].patience", `a duration like "10m"`},
		{"patience too short", []StepSpec{withLLM(func(s *StepSpec) { s.Patience = "500ms" })}, "", "steps[0].patience", "Use a duration from 1s to 24h."},
		{"patience too long", []StepSpec{withLLM(func(s *StepSpec) { s.Patience = "25h" })}, "", "steps[0].patience", "Use a duration from 1s to 24h."},
		{"prompt too large", []StepSpec{withLLM(func(s *StepSpec) { s.Prompt = strings.Repeat("x", MaxPromptBytes+1) })}, "", "steps[0].prompt", "Use at most 64 KiB."},
		{"options too large", []StepSpec{withLLM(func(s *StepSpec) { s.Options = map[string]any{"big": strings.Repeat("x", MaxOptionsBytes)} })}, "", "steps[0].options", "at most 4 KiB as JSON."},
		{"options not JSON", []StepSpec{withLLM(func(s *StepSpec) { s.Options = map[string]any{"bad": math.NaN()} })}, "", "steps[0].options.bad", "Use a finite number, not NaN."},
		{"option out of range", []StepSpec{withLLM(func(s *StepSpec) { s.Options = map[string]any{"latency_ms": json.Number("1e400")} })}, "", "steps[0].options.latency_ms", "out of range"},
		{"options not plain values", []StepSpec{withLLM(func(s *StepSpec) { s.Options = map[string]any{"bad": make(chan int)} })}, "", "steps[0].options", "plain JSON values"},
		{"prompt syntax error", []StepSpec{text("a", "hi {{ topic }}")}, "", "steps[0].prompt", `Fix the template: bad template reference at byte 3 ("{{ topic }}")`},
		{"prompt with an unclosed reference", []StepSpec{text("a", "hi {{inputs.x")}, "", "steps[0].prompt", "never closed"},
		{"output of an unknown step", []StepSpec{text("a", "{{steps.nope.output}}")}, "", "steps[0].prompt", "{{steps.nope.output}} names a step that does not exist."},
		{"output of its own step", []StepSpec{text("a", "{{steps.a.output}}")}, "", "steps[0].prompt", "{{steps.a.output}} is this step's own output"},
		{"output of a step it does not need", []StepSpec{llm("a"), llm("b", "a"), text("c", "{{steps.b.output}}", "a")}, "", "steps[2].prompt", `{{steps.b.output}} may not exist yet: add "b" to this step's needs`},
		{"output of a later step", []StepSpec{text("a", "{{steps.b.output}}"), text("b", "x", "a")}, "", "steps[0].prompt", `add "b" to this step's needs`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			errs := Plan{Goal: tc.goal, Steps: tc.steps}.Validate()
			require.Error(t, errs.Err())
			require.Contains(t, errs, tc.key, "got %v", errs)
			require.Contains(t, errs[tc.key], tc.fragment)
		})
	}
}

func TestValidatePlanReportsEveryStep(t *testing.T) {
	t.Parallel()
	errs := Plan{Steps: []StepSpec{
		{Name: "a", Kind: KindLLM, Prompt: "x"},
		{Name: "b", Kind: KindText, Needs: []string{"zz"}, Timeout: "1d"},
	}}.Validate()
	require.Equal(t, []string{"steps[0].model", "steps[0].provider", "steps[1].needs", "steps[1].prompt", "steps[1].timeout"}, slices.Sorted(maps.Keys(errs)))
}

func TestPlanInputsUsed(t *testing.T) {
	t.Parallel()
	p := Plan{Steps: []StepSpec{
		{Name: "a", Kind: KindText, Prompt: "{{ inputs.topic }} for {{inputs.audience}} about {{inputs.topic}}"},
		{Name: "b", Kind: KindApproval},
		{Name: "c", Kind: KindText, Prompt: "{{inputs.Zeta}} {{steps.a.output}} {{inputs.audience}}", Needs: []string{"a"}},
		{Name: "d", Kind: KindText, Prompt: "{{inputs.tone}} then {{ broken }}"},
	}}
	require.Equal(t, []string{"Zeta", "audience", "tone", "topic"}, p.InputsUsed())
	require.Empty(t, Plan{}.InputsUsed())
}
