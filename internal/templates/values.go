package templates

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/nofxhq/nofx/internal/plan"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/validation"
)

// Values checks submitted values (JSON values, or strings from a form)
// against the declared inputs and returns the run's inputs: defaults filled
// in, numbers as float64. An optional input left empty is "". Problems are
// keyed "inputs.name".
func (s Spec) Values(raw map[string]any) (map[string]any, error) {
	errs := validation.Errors{}
	out := make(map[string]any, len(s.Inputs))
	declared := map[string]bool{}
	for _, in := range s.Inputs {
		declared[in.Name] = true
		key := "inputs." + in.Name
		v, given := raw[in.Name]
		if !given || isEmpty(v) {
			switch {
			case in.Default != "":
				value, msg := convertValue(in, in.Default)
				if msg != "" {
					errs.Add(key, msg)
				}
				out[in.Name] = value
			case in.Required:
				errs.Add(key, "Fill this in.")
			default:
				out[in.Name] = ""
			}
			continue
		}
		value, msg := convertValue(in, v)
		if msg != "" {
			errs.Add(key, msg)
			continue
		}
		out[in.Name] = value
	}
	for name := range raw {
		if !declared[name] {
			errs.Add("inputs."+name, fmt.Sprintf("This template has no input named %s.", name))
		}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// isEmpty reports whether a submitted value counts as not given.
func isEmpty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return strings.TrimSpace(v) == ""
	}
	return false
}

// Messages of a number input's value.
const (
	notANumber       = "Enter a number."
	numberOutOfRange = "Enter a number between -1e300 and 1e300."
)

// maxNumberInput is the largest size of a number input's value: beyond it
// (1e400, say) a number cannot be stored, or is no sensible input.
const maxNumberInput = 1e300

// convertValue turns a submitted value into what the run gets for input in,
// or says what is wrong with it.
func convertValue(in Input, v any) (any, string) {
	if in.Type == InputNumber {
		n, msg := toNumber(v)
		if msg != "" {
			return nil, msg
		}
		return n, ""
	}
	text, ok := toText(v)
	if !ok {
		return nil, "Enter text."
	}
	switch in.Type {
	case InputChoice:
		for _, c := range in.Choices {
			if c == text {
				return text, ""
			}
		}
		return nil, "Choose one of: " + strings.Join(in.Choices, ", ") + "."
	case InputLongText:
		if len(text) > MaxLongTextBytes {
			return nil, "Use at most 64 KiB."
		}
	default:
		if len([]rune(text)) > MaxTextChars {
			return nil, fmt.Sprintf("Use at most %d characters.", MaxTextChars)
		}
	}
	return text, ""
}

// toNumber reads a JSON number, a Go number or a string holding a number;
// it says what is wrong with anything else, or with a number out of range
// (an infinity, or a literal like 1e400 that does not fit a float64).
func toNumber(v any) (float64, string) {
	var f float64
	switch v := v.(type) {
	case float64:
		f = v
	case float32:
		f = float64(v)
	case int:
		f = float64(v)
	case int64:
		f = float64(v)
	case int32:
		f = float64(v)
	case json.Number:
		return parseNumber(string(v))
	case string:
		return parseNumber(strings.TrimSpace(v))
	default:
		return 0, notANumber
	}
	return checkNumber(f)
}

// parseNumber reads a number's text; one too large for a float64 is out of
// range, not "not a number".
func parseNumber(s string) (float64, string) {
	f, err := strconv.ParseFloat(s, 64)
	if errors.Is(err, strconv.ErrRange) {
		return 0, numberOutOfRange
	}
	if err != nil {
		return 0, notANumber
	}
	return checkNumber(f)
}

// checkNumber refuses NaN and numbers beyond maxNumberInput.
func checkNumber(f float64) (float64, string) {
	switch {
	case math.IsNaN(f):
		return 0, notANumber
	case f > maxNumberInput || f < -maxNumberInput: // infinities included
		return 0, numberOutOfRange
	}
	return f, ""
}

// toText reads a string, or formats a number or a boolean as text.
func toText(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case int:
		return strconv.Itoa(v), true
	case int64:
		return strconv.FormatInt(v, 10), true
	case bool:
		return strconv.FormatBool(v), true
	}
	return "", false
}

// Spec decodes the version's content.
func (v Version) Spec(slug string) (Spec, error) {
	s := Spec{Slug: slug, Name: v.Name, Description: v.Description, Inputs: []Input{}}
	if err := json.Unmarshal([]byte(v.InputsJSON), &s.Inputs); err != nil {
		return Spec{}, fmt.Errorf("templates: decode inputs of %s version %d: %w", slug, v.Number, err)
	}
	if err := json.Unmarshal([]byte(v.PlanJSON), &s.Plan); err != nil {
		return Spec{}, fmt.Errorf("templates: decode plan of %s version %d: %w", slug, v.Number, err)
	}
	return s, nil
}

// RunInput checks values against the version's inputs (field by field,
// "inputs.name"; defaults filled in, numbers converted) and returns what
// runs.Service.Create needs to start it.
func (v Version) RunInput(slug string, values map[string]any) (runs.CreateInput, error) {
	spec, err := v.Spec(slug)
	if err != nil {
		return runs.CreateInput{}, err
	}
	inputs, err := spec.Values(values)
	if err != nil {
		return runs.CreateInput{}, err
	}
	// Each run's title is the goal with its inputs, or the template's name.
	p := spec.Plan
	if goal, err := plan.Render(p.Goal, inputs, nil); err == nil {
		if r := []rune(goal); len(r) > plan.MaxGoalChars {
			goal = string(r[:plan.MaxGoalChars-1]) + "…"
		}
		p.Goal = goal
	}
	if strings.TrimSpace(p.Goal) == "" {
		p.Goal = spec.Name
	}
	return runs.CreateInput{Plan: p, Inputs: inputs, Template: slug, TemplateVersion: v.Number}, nil
}
