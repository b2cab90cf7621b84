package templates

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"

	"github.com/nofxhq/nofx/internal/plan"
	"github.com/nofxhq/nofx/internal/validation"
)

// Limits of a spec.
const (
	MaxNameChars        = 100
	MaxDescriptionChars = 2000
	MaxInputs           = 30
	MaxLabelChars       = 100
	MaxChoices          = 50
	// MaxTextChars is the longest value of a text input, in characters.
	MaxTextChars = 2000
	// MaxLongTextBytes is the largest value of a long text input, in bytes.
	MaxLongTextBytes = 64 << 10
)

// slugRE is the shape of a template slug.
var slugRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// ValidSlug reports whether s has the shape of a template slug.
func ValidSlug(s string) bool { return slugRE.MatchString(s) }

// inputNameRE is the shape of an input name: the rule of {{inputs.x}} in
// runs/render.go (tmplIsInputName), with a length cap.
var inputNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// inputJSON is Input as it is decoded, with a default that may be a string
// or a number.
type inputJSON struct {
	Name     string          `json:"name"`
	Label    string          `json:"label"`
	Type     string          `json:"type"`
	Required bool            `json:"required"`
	Default  json.RawMessage `json:"default"`
	Choices  []string        `json:"choices"`
}

// inputDecodeError is a problem with one input's JSON, said for a person.
type inputDecodeError struct{ msg string }

func (e *inputDecodeError) Error() string { return e.msg }

// UnmarshalJSON decodes an input strictly; its default may be a JSON string
// or a number, kept as the number's decimal text.
func (in *Input) UnmarshalJSON(data []byte) error {
	var raw inputJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return &inputDecodeError{decodeMessage(err, "input")}
	}
	*in = Input{Name: raw.Name, Label: raw.Label, Type: raw.Type, Required: raw.Required, Choices: raw.Choices}
	def := bytes.TrimSpace(raw.Default)
	switch {
	case len(def) == 0 || string(def) == "null":
	case def[0] == '"':
		if err := json.Unmarshal(def, &in.Default); err != nil {
			return &inputDecodeError{"An input's default is not a valid JSON string."}
		}
	case def[0] == '-' || ('0' <= def[0] && def[0] <= '9'):
		in.Default = string(def)
	default:
		return &inputDecodeError{fmt.Sprintf("The default of input %q must be a string or a number.", raw.Name)}
	}
	return nil
}

// Parse decodes a spec strictly from JSON (unknown fields are an error), as
// the JSON view and the API import it; problems come back as
// validation.Errors under "json"; a number out of range (such as 1e400) is
// named by its field, such as "plan.steps[0].max_attempts".
func Parse(data []byte) (Spec, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return Spec{}, validation.Errors{"json": "The template is empty; paste a JSON object."}
	}
	if trimmed[0] != '{' {
		return Spec{}, validation.Errors{"json": "The template must be a JSON object."}
	}
	var s Spec
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			if msg := outOfRangeMessage(trimmed); msg != "" {
				return Spec{}, validation.Errors{"json": msg}
			}
		}
		return Spec{}, validation.Errors{"json": decodeMessage(err, "template")}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Spec{}, validation.Errors{"json": "The template has extra data after its JSON object."}
	}
	return s, nil
}

// outOfRangeMessage names the first field of a template's JSON, in order
// of path, that holds a number too large to decode (such as 1e400), and
// says why; it is "" when there is none.
func outOfRangeMessage(data []byte) string {
	found := plan.OutOfRangeNumbers(data)
	if len(found) == 0 {
		return ""
	}
	paths := make([]string, 0, len(found))
	for path := range found {
		paths = append(paths, path)
	}
	sort.Strings(paths)
	return fmt.Sprintf("Field %q: %s", paths[0], found[paths[0]])
}

// decodeMessage turns an encoding/json error into a sentence for a person,
// about what (the "template" or an "input").
func decodeMessage(err error, what string) string {
	var (
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		inputErr  *inputDecodeError
	)
	switch {
	case errors.As(err, &inputErr):
		return inputErr.msg
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("The %s is not valid JSON: %s (at byte %d).", what, syntaxErr.Error(), syntaxErr.Offset)
	case errors.As(err, &typeErr):
		got := strings.TrimPrefix(typeErr.Value, "number ")
		if typeErr.Field == "" {
			return fmt.Sprintf("The %s must be a JSON object, not %s.", what, got)
		}
		return fmt.Sprintf("Field %q must be %s, not %s.", typeErr.Field, kindOf(typeErr.Type.Kind().String()), got)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Sprintf("The %s is not valid JSON: it ends too soon.", what)
	}
	if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Sprintf("The %s has an unknown field %s.", what, field)
	}
	return fmt.Sprintf("The %s could not be read: %s.", what, strings.TrimPrefix(err.Error(), "json: "))
}

// kindOf names the JSON type that decodes into a Go kind.
func kindOf(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "a whole number"
	case "float32", "float64":
		return "a number"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	}
	return "an object"
}

// Export encodes the spec as indented JSON, the format Parse reads.
func (s Spec) Export() []byte {
	if s.Inputs == nil {
		s.Inputs = []Input{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		// A spec is plain strings, numbers and the JSON values of its
		// options, which were decoded from JSON.
		panic("templates: export spec: " + err.Error())
	}
	return buf.Bytes()
}

// Normalize trims the spec's text fields, fills each input's label from its
// name when empty, and normalizes the plan.
func (s *Spec) Normalize() {
	s.Slug = strings.TrimSpace(s.Slug)
	s.Name = strings.TrimSpace(s.Name)
	s.Description = strings.TrimSpace(s.Description)
	if s.Inputs == nil {
		s.Inputs = []Input{}
	}
	for i := range s.Inputs {
		in := &s.Inputs[i]
		in.Name = strings.TrimSpace(in.Name)
		in.Label = strings.TrimSpace(in.Label)
		in.Type = strings.TrimSpace(in.Type)
		in.Default = strings.TrimSpace(in.Default)
		for j := range in.Choices {
			in.Choices[j] = strings.TrimSpace(in.Choices[j])
		}
		if in.Label == "" {
			in.Label = in.Name
		}
	}
	s.Plan.Normalize()
}

// inputField is the validation key for a field of the i-th input.
func inputField(i int, field string) string {
	return fmt.Sprintf("inputs[%d].%s", i, field)
}

// validateSpec checks the spec's own fields (not its plan) and its inputs.
func validateSpec(errs validation.Errors, s Spec) {
	switch {
	case s.Slug == "":
		errs.Add("slug", "Give the template a slug, such as weekly-report.")
	case !ValidSlug(s.Slug):
		errs.Add("slug", "Start with a lowercase letter and use only a-z, 0-9 and -, at most 63 characters.")
	}
	switch n := len([]rune(s.Name)); {
	case n == 0:
		errs.Add("name", "Give the template a name.")
	case n > MaxNameChars:
		errs.Add("name", fmt.Sprintf("Use at most %d characters.", MaxNameChars))
	}
	if len([]rune(s.Description)) > MaxDescriptionChars {
		errs.Add("description", fmt.Sprintf("Use at most %d characters.", MaxDescriptionChars))
	}
	if len(s.Inputs) > MaxInputs {
		errs.Add("inputs", fmt.Sprintf("Use at most %d inputs, not %d.", MaxInputs, len(s.Inputs)))
		return
	}
	seen := map[string]int{}
	for i, in := range s.Inputs {
		switch {
		case in.Name == "":
			errs.Add(inputField(i, "name"), "Give the input a name.")
		case !inputNameRE.MatchString(in.Name):
			errs.Add(inputField(i, "name"), "Use letters, digits and _, not starting with a digit, at most 63 characters.")
		default:
			if first, dup := seen[in.Name]; dup {
				errs.Add(inputField(i, "name"), fmt.Sprintf("%q is already the name of inputs[%d]; give each input its own name.", in.Name, first))
			} else {
				seen[in.Name] = i
			}
		}
		if len([]rune(in.Label)) > MaxLabelChars {
			errs.Add(inputField(i, "label"), fmt.Sprintf("Use at most %d characters.", MaxLabelChars))
		}
		validateInputType(errs, i, in)
	}
}

// validateInputType checks an input's type, choices and default.
func validateInputType(errs validation.Errors, i int, in Input) {
	switch in.Type {
	case InputText, InputLongText, InputNumber:
		if len(in.Choices) > 0 {
			errs.Add(inputField(i, "choices"), "Only choice inputs take choices; remove them or make this a choice.")
		}
	case InputChoice:
		validateChoices(errs, i, in.Choices)
	case "":
		errs.Add(inputField(i, "type"), "Choose a type: "+strings.Join(InputTypes, ", ")+".")
		return
	default:
		errs.Add(inputField(i, "type"), fmt.Sprintf("Use one of %s, not %q.", strings.Join(InputTypes, ", "), in.Type))
		return
	}
	if in.Default == "" {
		return
	}
	if _, msg := convertValue(in, in.Default); msg != "" {
		switch in.Type {
		case InputNumber:
			if msg == numberOutOfRange {
				msg = "The default of a number input must be a number between -1e300 and 1e300."
			} else {
				msg = "The default of a number input must be a number."
			}
		case InputChoice:
			msg = "The default must be one of the choices."
		default:
			msg = "The default is too long: " + strings.ToLower(msg[:1]) + msg[1:]
		}
		errs.Add(inputField(i, "default"), msg)
	}
}

// validateChoices checks a choice input's choices: at least one, none
// empty, each once.
func validateChoices(errs validation.Errors, i int, choices []string) {
	key := inputField(i, "choices")
	switch {
	case len(choices) == 0:
		errs.Add(key, "Add at least one choice.")
	case len(choices) > MaxChoices:
		errs.Add(key, fmt.Sprintf("Use at most %d choices.", MaxChoices))
	}
	seen := map[string]bool{}
	for _, c := range choices {
		switch {
		case c == "":
			errs.Add(key, "Remove the empty choice.")
		case seen[c]:
			errs.Add(key, fmt.Sprintf("%q is listed more than once.", c))
		case len([]rune(c)) > MaxLabelChars:
			errs.Add(key, fmt.Sprintf("Use at most %d characters per choice.", MaxLabelChars))
		}
		seen[c] = true
	}
}

// checkInputs reports every {{inputs.x}} a prompt uses that is not
// declared (errs), and every declared input no prompt uses (warnings).
func checkInputs(errs, warnings validation.Errors, s Spec) {
	declared := map[string]bool{}
	for _, in := range s.Inputs {
		declared[in.Name] = true
	}
	used := map[string]bool{}
	// The goal becomes each run's title, rendered with the inputs.
	if names, steps, err := plan.References(s.Plan.Goal); err != nil {
		errs.Add("goal", "Fix the template: "+err.Error()+".")
	} else {
		if len(steps) > 0 {
			errs.Add("goal", "The goal may use inputs, not step outputs: it is set before any step runs.")
		}
		for _, name := range names {
			used[name] = true
			if !declared[name] {
				errs.Add("goal", fmt.Sprintf("{{inputs.%s}} is not a declared input: add it under Inputs.", name))
			}
		}
	}
	for i, step := range s.Plan.Steps {
		names, _, err := plan.References(step.Prompt)
		if err != nil {
			continue // the plan's own validation reports it
		}
		for _, name := range names {
			used[name] = true
			if !declared[name] {
				errs.Add(fmt.Sprintf("steps[%d].prompt", i), fmt.Sprintf("{{inputs.%s}} is not a declared input: add it under Inputs.", name))
			}
		}
	}
	for i, in := range s.Inputs {
		if in.Name != "" && !used[in.Name] {
			warnings.Add(inputField(i, "name"), "No prompt uses this input.")
		}
	}
}
