package form

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/plan"
	"github.com/nofxhq/nofx/internal/templates"
	templatesview "github.com/nofxhq/nofx/views/templates"
)

// builderFormValues encodes b as the builder's form posts it.
func builderFormValues(b templatesview.Builder) url.Values {
	form := url.Values{"editing": {b.Editing}, "slug": {b.Slug}, "name": {b.Name}, "description": {b.Description}, "goal": {b.Goal}, "note": {b.Note}}
	for i, s := range b.Steps {
		set := func(field, v string) { form.Set(fmt.Sprintf("steps.%d.%s", i, field), v) }
		set("name", s.Name)
		set("kind", s.Kind)
		set("provider", s.Provider)
		set("model", s.Model)
		set("prompt", s.Prompt)
		set("max_attempts", s.MaxAttempts)
		set("timeout", s.Timeout)
		set("options", s.Options)
		set("fallback", s.Fallback)
		for _, j := range s.Needs {
			form.Add(fmt.Sprintf("steps.%d.needs", i), strconv.Itoa(j))
		}
	}
	for i, in := range b.Inputs {
		set := func(field, v string) { form.Set(fmt.Sprintf("inputs.%d.%s", i, field), v) }
		set("name", in.Name)
		set("label", in.Label)
		set("type", in.Type)
		set("default", in.Default)
		set("choices", in.Choices)
		if in.Required {
			set("required", "on")
		}
	}
	return form
}

func FuzzBuilderForm(f *testing.F) {
	actions := []string{"", "add-step", "remove-step:0", "up:1", "down:0", "add-input", "remove-input:0", "kind"}
	for i, spec := range templates.Starters() {
		f.Add(builderFormValues(BuilderFromSpec(spec)).Encode(), actions[i%len(actions)])
	}
	for _, seed := range []struct{ form, action string }{
		{"", ""},
		{"steps.0.name=a&steps.0.kind=text&steps.0.prompt=x&steps.0.needs=0", "up:0"},
		{"steps.0.name=a&steps.1.name=b&steps.1.needs=0&steps.1.needs=0&steps.1.needs=-1&steps.1.needs=7&steps.1.needs=x", "remove-step:0"},
		{"steps.5.name=a&steps.9.name=b&steps.9.needs=5&steps.2.needs=9", "down:1"},
		{"steps.999.name=far&steps.99.name=last&steps.00.name=zero&steps.0.name=again&steps.1234.name=no", "down:99"},
		{"steps.0.name=a&steps.1.name=a&steps.1.needs=0&steps.2.name=a&steps.2.needs=1&steps.2.needs=0", "up:2"},
		{"steps.0.name=+a+&steps.1.name=b&steps.1.needs=0&steps.1.kind=+llm+", "remove-step:-1"},
		{"steps.0.kind=llm&steps.0.max_attempts=99999999999999999999&steps.0.timeout=1e400s", "up:99999999999999999999"},
		{"steps.0.kind=llm&steps.0.max_attempts=-3&steps.0.options=null", "down:"},
		{"steps.0.kind=llm&steps.0.options=%5B%5D&steps.0.fallback=%2F%0Ax%2F%0A%2Fy", ":"},
		{"steps.0.kind=llm&steps.0.options=%7B%22n%22%3A1e400%7D", "remove-input:x"},
		{"steps.0.kind=llm&steps.0.options=%7B%22n%22%3A1e308%2C%22a%22%3A%5B%7B%7D%5D%7D&steps.0.fallback=p%2Fm%2Fx%0D%0A+q+%2F+r+", "add-step"},
		{"steps.0.kind=llm&steps.0.options=%7B%7D%7B%7D", ""},
		{"inputs.0.name=topic&inputs.0.type=choice&inputs.0.choices=a%0D%0A+b+%0A%0A&inputs.0.required=on", "remove-input:0"},
		{"inputs.0.name=n&inputs.0.type=+choice+&inputs.0.choices=a&inputs.1.type=number&inputs.1.default=1e400", "add-input"},
		{"editing=+weekly+&slug=other&name=%FF%FE&goal=%00", ""},
		{"steps.0.name=a;steps.0.kind=text&%zz=1&steps.0.prompt=%", ""},
	} {
		f.Add(seed.form, seed.action)
	}
	f.Fuzz(func(t *testing.T, raw, action string) {
		form, _ := url.ParseQuery(raw) // what parsed, as Echo would hand it over
		b := ParseBuilder(form)
		require.LessOrEqual(t, len(b.Steps), MaxBuilderRows)
		require.LessOrEqual(t, len(b.Inputs), MaxBuilderRows)
		requireNeedsInRange(t, b)

		// A button press keeps needs pointing at other, existing steps.
		moved := b
		moved.Steps = append([]templatesview.BuilderStep(nil), b.Steps...)
		moved.Inputs = append([]templatesview.BuilderInput(nil), b.Inputs...)
		for i := range moved.Steps {
			moved.Steps[i].Needs = append([]int(nil), b.Steps[i].Needs...)
		}
		ApplyBuilderAction(&moved, action, "simulated", "echo")
		requireNeedsInRange(t, moved)
		require.LessOrEqual(t, len(moved.Steps), max(len(b.Steps), plan.MaxSteps))

		spec, errs := BuilderSpec(b)
		require.Len(t, spec.Plan.Steps, len(b.Steps))
		require.Len(t, spec.Inputs, len(b.Inputs))
		if len(errs) > 0 {
			return
		}

		// Form → spec → (saved) → form → spec gives the same spec, and so
		// do its export and import as JSON.
		spec.Normalize()
		exported := spec.Export()
		imported, err := templates.Parse(exported)
		require.NoError(t, err, "the export of a builder's spec imports: %s", exported)
		imported.Normalize()
		require.JSONEq(t, string(exported), string(imported.Export()))

		again, errs := BuilderSpec(BuilderFromSpec(spec))
		require.Empty(t, errs, "a saved spec loads back into the builder without errors")
		again.Normalize()
		require.JSONEq(t, specJSON(t, spec), specJSON(t, again))
	})
}

// requireNeedsInRange checks that every step's needs are sorted, unique
// positions of other steps of b.
func requireNeedsInRange(t *testing.T, b templatesview.Builder) {
	t.Helper()
	for i, s := range b.Steps {
		require.True(t, sort.IntsAreSorted(s.Needs), "steps[%d].needs %v are sorted", i, s.Needs)
		for k, j := range s.Needs {
			require.True(t, j >= 0 && j < len(b.Steps), "steps[%d] needs %d of %d steps", i, j, len(b.Steps))
			require.NotEqual(t, i, j, "steps[%d] needs itself", i)
			require.True(t, k == 0 || s.Needs[k-1] != j, "steps[%d] needs %d twice", i, j)
		}
	}
}

// specJSON writes spec as JSON.
func specJSON(t *testing.T, spec templates.Spec) string {
	t.Helper()
	data, err := json.Marshal(spec)
	require.NoError(t, err)
	return string(data)
}
