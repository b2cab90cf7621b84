// Package plan is the plan language of runs and templates: a plan (a goal
// and a DAG of steps) read strictly from JSON and validated, the prompt
// templates its steps render with the run's inputs and earlier outputs, and
// the inputs themselves, whose numbers keep every digit.
package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nofxhq/nofx/internal/validation"
)

// KindLLM is a step that sends its rendered prompt to an LLM provider.
const KindLLM = "llm"

// KindText is a step whose output is its prompt rendered as a template.
const KindText = "text"

// KindApproval is a step that waits for a person to approve or reject it.
const KindApproval = "approval"

// MaxSteps is the largest number of steps a plan may have.
const MaxSteps = 50

// DefaultMaxAttempts is how many times a step is tried when the plan does not say.
const DefaultMaxAttempts = 3

// MaxStepAttempts is the largest max_attempts a step may ask for.
const MaxStepAttempts = 10

// DefaultTimeout is how long one attempt of a step may take when the plan does not say.
const DefaultTimeout = 60 * time.Second

// MinStepTimeout is the shortest timeout a step may ask for.
const MinStepTimeout = time.Second

// MaxStepTimeout is the longest timeout a step may ask for.
const MaxStepTimeout = time.Hour

// DefaultPatience is how long a step may wait on an open circuit when the plan does not say.
const DefaultPatience = 10 * time.Minute

// MinStepPatience is the shortest patience a step may ask for.
const MinStepPatience = time.Second

// MaxStepPatience is the longest patience a step may ask for.
const MaxStepPatience = 24 * time.Hour

// MaxPromptBytes is the largest prompt a step may carry, in bytes.
const MaxPromptBytes = 64 << 10

// MaxGoalChars is the longest goal a plan may have, in characters.
const MaxGoalChars = 2000

// MaxFallbacks is the largest number of fallback models an llm step may list.
const MaxFallbacks = 5

// MaxOptionsBytes is the largest a step's options may be once encoded as JSON.
const MaxOptionsBytes = 4 << 10

// planDefaultTimeoutText is DefaultTimeout as Normalize writes it into a plan.
const planDefaultTimeoutText = "60s"

// planStepNameRE is the shape of a step name.
var planStepNameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// Plan is what a run executes: a goal and a small DAG of steps.
type Plan struct {
	Goal  string     `json:"goal"`
	Steps []StepSpec `json:"steps"`
}

// StepSpec is one step of a plan.
type StepSpec struct {
	Name        string         `json:"name"`
	Kind        string         `json:"kind"`                   // "llm", "text" or "approval"
	Provider    string         `json:"provider,omitempty"`     // llm only
	Model       string         `json:"model,omitempty"`        // llm only
	Prompt      string         `json:"prompt,omitempty"`       // llm: the prompt; text: the template rendered as output; approval: the message shown to the approver (optional)
	Needs       []string       `json:"needs,omitempty"`        // names of steps that must succeed first
	MaxAttempts int            `json:"max_attempts,omitempty"` // 1..MaxStepAttempts; approval steps always 1
	Timeout     string         `json:"timeout,omitempty"`      // Go duration string like "60s"
	Patience    string         `json:"patience,omitempty"`     // how long the step may wait on an open circuit, like "10m"
	Options     map[string]any `json:"options,omitempty"`      // provider options, llm only
	Fallback    []Fallback     `json:"fallback,omitempty"`     // llm only: tried in order after the primary model
}

// Fallback is another provider and model an llm step may use when its own fails.
type Fallback struct {
	Provider string `json:"provider"`
	Model    string `json:"model"`
}

// Parse decodes a plan strictly from JSON, without validating it; a
// problem with the JSON comes back as validation.Errors under the "plan"
// key, except a number out of range (such as 1e400), which is keyed by its
// field, such as "steps[0].options.latency_ms".
func Parse(data []byte) (Plan, error) {
	var p Plan
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return Plan{}, validation.Errors{"plan": "The plan is empty; send a JSON object."}
	}
	if trimmed[0] != '{' {
		return Plan{}, validation.Errors{"plan": "The plan must be a JSON object."}
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			if errs := OutOfRangeNumbers(trimmed); errs != nil {
				return Plan{}, errs
			}
		}
		return Plan{}, validation.Errors{"plan": planDecodeMessage(err)}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Plan{}, validation.Errors{"plan": "The plan has extra data after its JSON object."}
	}
	return p, nil
}

// planDecodeMessage turns an encoding/json error into a sentence for a person.
func planDecodeMessage(err error) string {
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("The plan is not valid JSON: %s (at byte %d).", syntaxErr.Error(), syntaxErr.Offset)
	case errors.As(err, &typeErr):
		got := typeErr.Value
		if rest, ok := strings.CutPrefix(got, "number "); ok {
			got = rest
		} else {
			got = planJSONArticle(got)
		}
		if typeErr.Field == "" {
			return "The plan must be a JSON object, not " + got + "."
		}
		return fmt.Sprintf("Field %q must be %s, not %s.", typeErr.Field, planJSONKindOf(typeErr.Type), got)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "The plan is not valid JSON: it ends too soon."
	}
	if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return "The plan has an unknown field " + field + "."
	}
	return "The plan could not be read: " + strings.TrimPrefix(err.Error(), "json: ") + "."
}

// planJSONArticle puts "a" or "an" before a JSON type name.
func planJSONArticle(name string) string {
	switch name {
	case "array", "object":
		return "an " + name
	case "bool":
		return "true or false"
	}
	return "a " + name
}

// planJSONKindOf names the JSON type that decodes into t.
func planJSONKindOf(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "a " + t.String()
}

// Normalize trims the plan's text fields and fills in default attempts and
// timeouts; approval steps always get exactly one attempt.
func (p *Plan) Normalize() {
	p.Goal = strings.TrimSpace(p.Goal)
	for i := range p.Steps {
		s := &p.Steps[i]
		s.Name = strings.TrimSpace(s.Name)
		s.Kind = strings.TrimSpace(s.Kind)
		s.Provider = strings.TrimSpace(s.Provider)
		s.Model = strings.TrimSpace(s.Model)
		s.Timeout = strings.TrimSpace(s.Timeout)
		s.Patience = strings.TrimSpace(s.Patience)
		for j := range s.Needs {
			s.Needs[j] = strings.TrimSpace(s.Needs[j])
		}
		for j := range s.Fallback {
			s.Fallback[j].Provider = strings.TrimSpace(s.Fallback[j].Provider)
			s.Fallback[j].Model = strings.TrimSpace(s.Fallback[j].Model)
		}
		if s.MaxAttempts == 0 {
			s.MaxAttempts = DefaultMaxAttempts
		}
		if s.Kind == KindApproval {
			s.MaxAttempts = 1
		}
		if s.Timeout == "" {
			s.Timeout = planDefaultTimeoutText
		}
	}
}

// TimeoutDuration is how long one attempt of the step may take, DefaultTimeout
// when the timeout is unset or unreadable.
func (s StepSpec) TimeoutDuration() time.Duration {
	d, err := time.ParseDuration(strings.TrimSpace(s.Timeout))
	if err != nil || d <= 0 {
		return DefaultTimeout
	}
	return d
}

// PatienceDuration is how long the step may wait on an open circuit before
// it fails, DefaultPatience when the patience is unset or unreadable.
func (s StepSpec) PatienceDuration() time.Duration {
	d, err := time.ParseDuration(strings.TrimSpace(s.Patience))
	if err != nil || d <= 0 {
		return DefaultPatience
	}
	return d
}

// planStepField is the validation key for a field of the i-th step.
func planStepField(i int, field string) string {
	return fmt.Sprintf("steps[%d].%s", i, field)
}

// Validate reports every problem with the plan, keyed by the field it
// concerns (such as "goal", "steps" or "steps[2].needs"); it returns nil when
// the plan is valid, so its Err() is nil too. Zero max_attempts and an empty
// timeout count as the defaults, so it accepts a plan before or after Normalize.
func (p Plan) Validate() validation.Errors {
	errs := validation.Errors{}
	if utf8.RuneCountInString(p.Goal) > MaxGoalChars {
		errs.Add("goal", fmt.Sprintf("Use at most %d characters.", MaxGoalChars))
	}
	switch {
	case len(p.Steps) == 0:
		errs.Add("steps", "Add at least one step.")
	case len(p.Steps) > MaxSteps:
		errs.Add("steps", fmt.Sprintf("Use at most %d steps, not %d.", MaxSteps, len(p.Steps)))
	}
	if len(p.Steps) > MaxSteps {
		return errs // too many to be worth checking one by one
	}

	index := p.planIndex()
	for i, s := range p.Steps {
		if first := index[s.Name]; first != i && s.Name != "" {
			errs.Add(planStepField(i, "name"), fmt.Sprintf("%q is already the name of steps[%d]; give each step its own name.", s.Name, first))
		}
	}
	for i, s := range p.Steps {
		planValidateStep(errs, i, s)
		planValidateNeeds(errs, i, s, index)
	}
	planValidateCycles(errs, p, index)
	planValidateReferences(errs, p, index)

	if len(errs) == 0 {
		return nil
	}
	return errs
}

// planValidateStep checks the fields of one step that need no other step.
func planValidateStep(errs validation.Errors, i int, s StepSpec) {
	switch {
	case s.Name == "":
		errs.Add(planStepField(i, "name"), "Give the step a name.")
	case !planStepNameRE.MatchString(s.Name):
		errs.Add(planStepField(i, "name"), "Start with a lowercase letter and use only a-z, 0-9, _ and -, at most 63 characters.")
	}

	switch s.Kind {
	case "":
		errs.Add(planStepField(i, "kind"), "Choose a kind: llm, text or approval.")
	case KindLLM:
		if s.Provider == "" {
			errs.Add(planStepField(i, "provider"), "An llm step needs a provider.")
		}
		if s.Model == "" {
			errs.Add(planStepField(i, "model"), "An llm step needs a model.")
		}
		if s.Prompt == "" {
			errs.Add(planStepField(i, "prompt"), "An llm step needs a prompt.")
		}
		if len(s.Fallback) > MaxFallbacks {
			errs.Add(planStepField(i, "fallback"), fmt.Sprintf("Use at most %d fallbacks.", MaxFallbacks))
		}
		for j, f := range s.Fallback {
			if f.Provider == "" {
				errs.Add(planStepField(i, fmt.Sprintf("fallback[%d].provider", j)), "Give the fallback a provider.")
			}
			if f.Model == "" {
				errs.Add(planStepField(i, fmt.Sprintf("fallback[%d].model", j)), "Give the fallback a model.")
			}
		}
	case KindText, KindApproval:
		if s.Kind == KindText && s.Prompt == "" {
			errs.Add(planStepField(i, "prompt"), "A text step needs a prompt: the template it renders.")
		}
		onlyLLM := func(what string) string {
			return fmt.Sprintf("Only llm steps take %s; remove it from this %s step.", what, s.Kind)
		}
		if s.Provider != "" {
			errs.Add(planStepField(i, "provider"), onlyLLM("a provider"))
		}
		if s.Model != "" {
			errs.Add(planStepField(i, "model"), onlyLLM("a model"))
		}
		if len(s.Options) > 0 {
			errs.Add(planStepField(i, "options"), onlyLLM("options"))
		}
		if len(s.Fallback) > 0 {
			errs.Add(planStepField(i, "fallback"), onlyLLM("fallbacks"))
		}
	default:
		errs.Add(planStepField(i, "kind"), fmt.Sprintf("Use llm, text or approval, not %q.", s.Kind))
	}

	if s.MaxAttempts != 0 && (s.MaxAttempts < 1 || s.MaxAttempts > MaxStepAttempts) {
		errs.Add(planStepField(i, "max_attempts"), fmt.Sprintf("Use a number from 1 to %d.", MaxStepAttempts))
	}
	if timeout := strings.TrimSpace(s.Timeout); timeout != "" {
		d, err := time.ParseDuration(timeout)
		switch {
		case err != nil:
			errs.Add(planStepField(i, "timeout"), `Use a duration like "60s" or "5m".`)
		case d < MinStepTimeout || d > MaxStepTimeout:
			errs.Add(planStepField(i, "timeout"), "Use a duration from 1s to 1h.")
		}
	}
	if patience := strings.TrimSpace(s.Patience); patience != "" {
		d, err := time.ParseDuration(patience)
		switch {
		case err != nil:
			errs.Add(planStepField(i, "patience"), `Use a duration like "10m" or "1h".`)
		case d < MinStepPatience || d > MaxStepPatience:
			errs.Add(planStepField(i, "patience"), "Use a duration from 1s to 24h.")
		}
	}
	if len(s.Prompt) > MaxPromptBytes {
		errs.Add(planStepField(i, "prompt"), "Use at most 64 KiB.")
	}
	if len(s.Options) > 0 && CheckNumbers(errs, planStepField(i, "options"), s.Options) == 0 {
		encoded, err := json.Marshal(s.Options)
		switch {
		case err != nil:
			errs.Add(planStepField(i, "options"), "Options must be plain JSON values.")
		case len(encoded) > MaxOptionsBytes:
			errs.Add(planStepField(i, "options"), "Options must be at most 4 KiB as JSON.")
		}
	}
}

// planValidateNeeds checks that a step needs only other, existing steps, each once.
func planValidateNeeds(errs validation.Errors, i int, s StepSpec, index map[string]int) {
	key := planStepField(i, "needs")
	seen := map[string]bool{}
	for _, need := range s.Needs {
		switch {
		case need == "":
			errs.Add(key, "Remove the empty step name.")
		case need == s.Name:
			errs.Add(key, "A step cannot need itself.")
		case seen[need]:
			errs.Add(key, fmt.Sprintf("%q is listed more than once.", need))
		default:
			if _, ok := index[need]; !ok {
				errs.Add(key, fmt.Sprintf("There is no step named %q.", need))
			}
		}
		seen[need] = true
	}
}

// planValidateCycles reports each cycle in the needs graph on the step, within
// the cycle, that comes first in the plan.
func planValidateCycles(errs validation.Errors, p Plan, index map[string]int) {
	const (
		unvisited = iota
		onPath
		done
	)
	state := make([]int, len(p.Steps))
	var path []int
	var visit func(i int)
	visit = func(i int) {
		state[i] = onPath
		path = append(path, i)
		for _, need := range p.Steps[i].Needs {
			j, ok := index[need]
			if !ok || j == i {
				continue // reported by planValidateNeeds
			}
			switch state[j] {
			case unvisited:
				visit(j)
			case onPath:
				cycle := path[slices.Index(path, j):]
				planReportCycle(errs, p, cycle)
			}
		}
		path = path[:len(path)-1]
		state[i] = done
	}
	for i := range p.Steps {
		if state[i] == unvisited {
			visit(i)
		}
	}
}

// planReportCycle reports a cycle of step indexes, each needing the next and
// the last needing the first, on its earliest step.
func planReportCycle(errs validation.Errors, p Plan, cycle []int) {
	start := 0
	for k, i := range cycle {
		if i < cycle[start] {
			start = k
		}
	}
	names := make([]string, 0, len(cycle)+1)
	for k := range cycle {
		names = append(names, p.Steps[cycle[(start+k)%len(cycle)]].Name)
	}
	names = append(names, names[0])
	errs.Add(planStepField(cycle[start], "needs"), "This step forms a cycle: "+strings.Join(names, " → ")+". Remove one of those needs.")
}

// planValidateReferences checks each prompt's template syntax and that every
// step output it uses comes from a step it needs, directly or transitively.
func planValidateReferences(errs validation.Errors, p Plan, index map[string]int) {
	for i, s := range p.Steps {
		if s.Prompt == "" || len(s.Prompt) > MaxPromptBytes {
			continue
		}
		key := planStepField(i, "prompt")
		_, steps, err := References(s.Prompt)
		if err != nil {
			errs.Add(key, "Fix the template: "+err.Error()+".")
			continue
		}
		if len(steps) == 0 {
			continue
		}
		ancestors := p.planAncestors(i, index)
		for _, name := range steps {
			ref := "{{steps." + name + ".output}}"
			switch _, exists := index[name]; {
			case name == s.Name:
				errs.Add(key, fmt.Sprintf("%s is this step's own output, which does not exist yet.", ref))
			case !exists:
				errs.Add(key, fmt.Sprintf("%s names a step that does not exist.", ref))
			case !ancestors[name]:
				errs.Add(key, fmt.Sprintf("%s may not exist yet: add %q to this step's needs, directly or through another step.", ref, name))
			}
		}
	}
}

// planAncestors returns the names of every step the i-th step needs, directly
// or transitively; it tolerates unknown names and cycles.
func (p Plan) planAncestors(i int, index map[string]int) map[string]bool {
	seen := map[string]bool{}
	stack := append([]string(nil), p.Steps[i].Needs...)
	for len(stack) > 0 {
		name := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		j, ok := index[name]
		if !ok || seen[name] {
			continue
		}
		seen[name] = true
		stack = append(stack, p.Steps[j].Needs...)
	}
	return seen
}

func (p Plan) planIndex() map[string]int {
	index := make(map[string]int, len(p.Steps))
	for i, s := range p.Steps {
		if _, ok := index[s.Name]; !ok {
			index[s.Name] = i
		}
	}
	return index
}

// InputsUsed returns the sorted, unique input names that the plan's prompts
// reference as {{inputs.x}}; malformed references are skipped.
func (p Plan) InputsUsed() []string {
	seen := map[string]bool{}
	for _, s := range p.Steps {
		parts, _ := tmplParse(s.Prompt)
		for _, part := range parts {
			if part.input != "" {
				seen[part.input] = true
			}
		}
	}
	names := make([]string, 0, len(seen))
	for name := range seen {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
