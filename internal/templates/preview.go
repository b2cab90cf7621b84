package templates

import (
	"errors"
	"strings"

	"github.com/nofxhq/nofx/internal/plan"
)

// SampleInputs returns values to preview the spec with: each input's
// default, or a sample made from its type and label.
func SampleInputs(s Spec) map[string]any {
	sample := make(map[string]any, len(s.Inputs))
	for _, in := range s.Inputs {
		if in.Default != "" {
			if v, msg := convertValue(in, in.Default); msg == "" {
				sample[in.Name] = v
				continue
			}
		}
		switch in.Type {
		case InputNumber:
			sample[in.Name] = float64(1)
		case InputChoice:
			if len(in.Choices) > 0 {
				sample[in.Name] = in.Choices[0]
			} else {
				sample[in.Name] = ""
			}
		default:
			label := in.Label
			if label == "" {
				label = in.Name
			}
			sample[in.Name] = "sample " + label
		}
	}
	return sample
}

// Placeholder is what a step's output looks like in a preview.
func Placeholder(step string) string {
	return "[output of " + step + "]"
}

// Preview renders every step's prompt with sample inputs (SampleInputs of
// the spec when sample is nil); outputs of other steps appear as
// placeholders.
func Preview(s Spec, sample map[string]any) []PreviewStep {
	if sample == nil {
		sample = SampleInputs(s)
	}
	outputs := make(map[string]string, len(s.Plan.Steps))
	for _, step := range s.Plan.Steps {
		if name := strings.TrimSpace(step.Name); name != "" {
			outputs[name] = Placeholder(name)
		}
	}
	out := make([]PreviewStep, 0, len(s.Plan.Steps))
	for _, step := range s.Plan.Steps {
		p := PreviewStep{Name: step.Name, Kind: step.Kind, Prompt: step.Prompt}
		rendered, err := plan.Render(step.Prompt, sample, outputs)
		var missing *plan.MissingVariableError
		switch {
		case errors.As(err, &missing):
			p.Missing = missing.Name
		case err != nil:
			p.Error = err.Error()
		default:
			p.Rendered = rendered
		}
		out = append(out, p)
	}
	return out
}
