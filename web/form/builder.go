// Package form reads what forms and query strings send beyond flat values,
// for the pages and the API alike: the template builder, whose steps and
// inputs come as numbered fields (steps.0.name, inputs.1.type), into what
// the pages show and the spec the templates service saves; the runs list's
// filters; and the versions a template diff compares.
package form

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/nofxhq/nofx/internal/plan"
	"github.com/nofxhq/nofx/internal/templates"
	"github.com/nofxhq/nofx/internal/validation"
	templatesview "github.com/nofxhq/nofx/views/templates"
)

// MaxBuilderRows bounds the steps and inputs read from a builder form, so
// that a form naming steps.99999999.name costs nothing.
const MaxBuilderRows = 100

// builderRowRE matches the names of the builder's repeated fields, such as
// "steps.2.prompt" or "inputs.0.type".
var builderRowRE = regexp.MustCompile(`^(steps|inputs)\.(\d{1,3})\.([a-z_]+)$`)

// ParseBuilder reads the builder form, as posted, into its fields. It never
// fails: what does not parse is kept as typed and reported by BuilderSpec.
func ParseBuilder(form url.Values) templatesview.Builder {
	b := templatesview.Builder{
		Editing:     strings.TrimSpace(form.Get("editing")),
		Slug:        form.Get("slug"),
		Name:        form.Get("name"),
		Description: form.Get("description"),
		Goal:        form.Get("goal"),
		Note:        form.Get("note"),
	}
	steps, inputs := map[int]bool{}, map[int]bool{}
	for key := range form {
		m := builderRowRE.FindStringSubmatch(key)
		if m == nil {
			continue
		}
		n, err := strconv.Atoi(m[2])
		if err != nil || n >= MaxBuilderRows {
			continue
		}
		if m[1] == "steps" {
			steps[n] = true
		} else {
			inputs[n] = true
		}
	}
	// Rows keep their order; gaps (a row a client dropped) close up, and
	// needs, which name rows by their position in the form, follow.
	stepRows := sortedKeys(steps)
	position := make(map[int]int, len(stepRows))
	for i, n := range stepRows {
		position[n] = i
	}
	for _, n := range stepRows {
		get := func(field string) string { return form.Get(fmt.Sprintf("steps.%d.%s", n, field)) }
		s := templatesview.BuilderStep{
			Name: get("name"), Kind: get("kind"), Provider: get("provider"), Model: get("model"), Prompt: get("prompt"),
			MaxAttempts: get("max_attempts"), Timeout: get("timeout"), Options: get("options"), Fallback: get("fallback"),
		}
		for _, raw := range form[fmt.Sprintf("steps.%d.needs", n)] {
			j, err := strconv.Atoi(raw)
			if p, ok := position[j]; err == nil && ok && j != n && !slices.Contains(s.Needs, p) {
				s.Needs = append(s.Needs, p)
			}
		}
		sort.Ints(s.Needs)
		b.Steps = append(b.Steps, s)
	}
	for _, n := range sortedKeys(inputs) {
		get := func(field string) string { return form.Get(fmt.Sprintf("inputs.%d.%s", n, field)) }
		b.Inputs = append(b.Inputs, templatesview.BuilderInput{
			Name: get("name"), Label: get("label"), Type: get("type"), Default: get("default"), Choices: get("choices"),
			Required: get("required") != "",
		})
	}
	return b
}

func sortedKeys(m map[int]bool) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

// BuilderSpec turns the builder's fields into a spec. Numbers, options and
// fallbacks that do not parse are reported under their fields' keys.
func BuilderSpec(b templatesview.Builder) (templates.Spec, validation.Errors) {
	errs := validation.Errors{}
	spec := templates.Spec{
		Slug: strings.TrimSpace(b.Slug), Name: b.Name, Description: b.Description,
		Inputs: []templates.Input{}, Plan: plan.Plan{Goal: b.Goal, Steps: []plan.StepSpec{}},
	}
	if b.Editing != "" {
		spec.Slug = b.Editing
	}
	for _, in := range b.Inputs {
		input := templates.Input{Name: in.Name, Label: in.Label, Type: in.Type, Required: in.Required, Default: in.Default}
		if in.Type == templates.InputChoice {
			for _, line := range strings.Split(in.Choices, "\n") {
				if line = strings.TrimSpace(line); line != "" {
					input.Choices = append(input.Choices, line)
				}
			}
		}
		spec.Inputs = append(spec.Inputs, input)
	}
	for i, s := range b.Steps {
		key := func(field string) string { return fmt.Sprintf("steps[%d].%s", i, field) }
		step := plan.StepSpec{Name: s.Name, Kind: s.Kind, Prompt: s.Prompt, Timeout: strings.TrimSpace(s.Timeout)}
		for _, j := range s.Needs {
			if j >= 0 && j < len(b.Steps) {
				step.Needs = append(step.Needs, strings.TrimSpace(b.Steps[j].Name))
			}
		}
		if raw := strings.TrimSpace(s.MaxAttempts); raw != "" {
			n, err := strconv.Atoi(raw)
			if err != nil || n < 1 {
				errs.Add(key("max_attempts"), fmt.Sprintf("Max attempts must be a whole number from 1 to %d.", plan.MaxStepAttempts))
			} else {
				step.MaxAttempts = n
			}
		}
		if s.Kind == plan.KindLLM {
			step.Provider, step.Model = s.Provider, s.Model
			if raw := strings.TrimSpace(s.Options); raw != "" {
				if err := json.Unmarshal([]byte(raw), &step.Options); err != nil || step.Options == nil {
					errs.Add(key("options"), `Options must be a JSON object, like {"latency_ms": 200}.`)
				}
			}
			fallback, msg := parseFallback(s.Fallback)
			if msg != "" {
				errs.Add(key("fallback"), msg)
			}
			step.Fallback = fallback
		}
		spec.Plan.Steps = append(spec.Plan.Steps, step)
	}
	return spec, errs
}

// parseFallback reads one "provider/model" per line.
func parseFallback(text string) ([]plan.Fallback, string) {
	var out []plan.Fallback
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		provider, model, ok := strings.Cut(line, "/")
		if !ok || strings.TrimSpace(provider) == "" || strings.TrimSpace(model) == "" {
			return nil, fmt.Sprintf("Line %d must be provider/model, like openai/gpt-4o-mini.", n+1)
		}
		out = append(out, plan.Fallback{Provider: strings.TrimSpace(provider), Model: strings.TrimSpace(model)})
	}
	return out, ""
}

// BuilderFromSpec fills the builder's fields from a saved spec.
func BuilderFromSpec(spec templates.Spec) templatesview.Builder {
	b := templatesview.Builder{Slug: spec.Slug, Name: spec.Name, Description: spec.Description, Goal: spec.Plan.Goal}
	for _, in := range spec.Inputs {
		b.Inputs = append(b.Inputs, templatesview.BuilderInput{
			Name: in.Name, Label: in.Label, Type: in.Type, Required: in.Required, Default: in.Default,
			Choices: strings.Join(in.Choices, "\n"),
		})
	}
	position := map[string]int{}
	for i, s := range spec.Plan.Steps {
		position[s.Name] = i
	}
	for _, s := range spec.Plan.Steps {
		step := templatesview.BuilderStep{Name: s.Name, Kind: s.Kind, Provider: s.Provider, Model: s.Model, Prompt: s.Prompt, Timeout: s.Timeout}
		if s.MaxAttempts != 0 {
			step.MaxAttempts = strconv.Itoa(s.MaxAttempts)
		}
		if len(s.Options) > 0 {
			raw, _ := json.Marshal(s.Options)
			step.Options = string(raw)
		}
		var lines []string
		for _, f := range s.Fallback {
			lines = append(lines, f.Provider+"/"+f.Model)
		}
		step.Fallback = strings.Join(lines, "\n")
		for _, need := range s.Needs {
			if p, ok := position[need]; ok {
				step.Needs = append(step.Needs, p)
			}
		}
		b.Steps = append(b.Steps, step)
	}
	return b
}

// ApplyBuilderAction changes the builder's structure as a button asked:
// "add-step", "remove-step:i", "up:i", "down:i", "add-input",
// "remove-input:i". Anything else (a kind changed) changes nothing; the
// form is only drawn again.
func ApplyBuilderAction(b *templatesview.Builder, action, provider, model string) {
	verb, arg, _ := strings.Cut(action, ":")
	i, err := strconv.Atoi(arg)
	validStep := err == nil && i >= 0 && i < len(b.Steps)
	switch {
	case verb == "add-step" && len(b.Steps) < plan.MaxSteps:
		b.Steps = append(b.Steps, templatesview.BuilderStep{Kind: plan.KindLLM, Provider: provider, Model: model})
		b.Focus = templatesview.StepID(len(b.Steps)-1, "name")
	case verb == "remove-step" && validStep:
		b.Steps = append(b.Steps[:i], b.Steps[i+1:]...)
		for k := range b.Steps {
			b.Steps[k].Needs = remapNeeds(b.Steps[k].Needs, func(j int) int {
				switch {
				case j == i:
					return -1
				case j > i:
					return j - 1
				}
				return j
			})
		}
		b.Focus = "add-step"
	case (verb == "up" && validStep && i > 0) || (verb == "down" && validStep && i < len(b.Steps)-1):
		k := i - 1
		if verb == "down" {
			k = i + 1
		}
		b.Steps[i], b.Steps[k] = b.Steps[k], b.Steps[i]
		for n := range b.Steps {
			b.Steps[n].Needs = remapNeeds(b.Steps[n].Needs, func(j int) int {
				switch j {
				case i:
					return k
				case k:
					return i
				}
				return j
			})
		}
		b.Focus = templatesview.StepID(k, verb)
		if (verb == "up" && k == 0) || (verb == "down" && k == len(b.Steps)-1) {
			b.Focus = templatesview.StepID(k, map[string]string{"up": "down", "down": "up"}[verb])
		}
	case verb == "add-input" && len(b.Inputs) < MaxBuilderRows:
		b.Inputs = append(b.Inputs, templatesview.BuilderInput{Type: templates.InputText, Required: true})
		b.Focus = templatesview.InputID(len(b.Inputs)-1, "name")
	case verb == "remove-input" && err == nil && i >= 0 && i < len(b.Inputs):
		b.Inputs = append(b.Inputs[:i], b.Inputs[i+1:]...)
		b.Focus = "add-input"
	}
}

// remapNeeds moves each position through move; -1 drops it.
func remapNeeds(needs []int, move func(int) int) []int {
	out := needs[:0:0]
	for _, j := range needs {
		if k := move(j); k >= 0 {
			out = append(out, k)
		}
	}
	sort.Ints(out)
	return out
}
