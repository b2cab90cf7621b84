package plan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// tmplSnippetBytes is how much of a bad reference a TemplateSyntaxError quotes.
const tmplSnippetBytes = 40

// MissingVariableError reports a template reference that has no value to fill it.
type MissingVariableError struct {
	Name string // "inputs.topic" or "steps.draft.output"
}

// Error says which variable is missing.
func (e *MissingVariableError) Error() string {
	return "missing variable " + e.Name
}

// TemplateSyntaxError reports a {{...}} in a template that is malformed or unsupported.
type TemplateSyntaxError struct {
	Offset  int    // byte offset of the "{{" in the template
	Snippet string // the template text from Offset, shortened
	Reason  string // what is wrong with it
}

// Error says where the bad reference is and what is wrong with it.
func (e *TemplateSyntaxError) Error() string {
	return fmt.Sprintf("bad template reference at byte %d (%q): %s", e.Offset, e.Snippet, e.Reason)
}

// tmplPart is a piece of a parsed template: literal text, an input reference
// or a step output reference.
type tmplPart struct {
	text  string // literal text, when input and step are empty
	input string // x in {{inputs.x}}
	step  string // name in {{steps.name.output}}
}

// tmplParse splits a template into literal text and references; on a syntax
// error it returns the parts before the error as well as the error.
func tmplParse(tmpl string) ([]tmplPart, error) {
	var parts []tmplPart
	pos := 0
	for {
		open := strings.Index(tmpl[pos:], "{{")
		if open < 0 {
			if pos < len(tmpl) {
				parts = append(parts, tmplPart{text: tmpl[pos:]})
			}
			return parts, nil
		}
		open += pos
		if open > pos {
			parts = append(parts, tmplPart{text: tmpl[pos:open]})
		}
		closing := strings.Index(tmpl[open+2:], "}}")
		if closing < 0 {
			return parts, tmplSyntaxError(tmpl, open, len(tmpl), `"{{" is never closed by "}}"`)
		}
		end := open + 2 + closing + 2
		part, reason := tmplParseReference(strings.TrimSpace(tmpl[open+2 : end-2]))
		if reason != "" {
			return parts, tmplSyntaxError(tmpl, open, end, reason)
		}
		parts = append(parts, part)
		pos = end
	}
}

// tmplParseReference reads what is between "{{" and "}}", trimmed; it returns
// the reference, or a reason why it is not one.
func tmplParseReference(inner string) (tmplPart, string) {
	const supported = "only {{inputs.name}} and {{steps.name.output}} are supported"
	if inner == "" {
		return tmplPart{}, "nothing between {{ and }}; " + supported
	}
	if name, ok := strings.CutPrefix(inner, "inputs."); ok {
		if !tmplIsInputName(name) {
			return tmplPart{}, fmt.Sprintf("%q is not a valid input name: use letters, digits and _, not starting with a digit", name)
		}
		return tmplPart{input: name}, ""
	}
	if rest, ok := strings.CutPrefix(inner, "steps."); ok {
		name, ok := strings.CutSuffix(rest, ".output")
		if !ok || !tmplIsStepName(name) {
			return tmplPart{}, "a step output is written {{steps.name.output}}"
		}
		return tmplPart{step: name}, ""
	}
	return tmplPart{}, supported
}

// tmplSyntaxError builds the error for the bad reference at tmpl[start:end].
func tmplSyntaxError(tmpl string, start, end int, reason string) *TemplateSyntaxError {
	snippet := tmpl[start:end]
	if len(snippet) > tmplSnippetBytes {
		cut := tmplSnippetBytes
		for cut > 0 && !utf8.RuneStart(snippet[cut]) {
			cut--
		}
		snippet = snippet[:cut] + "…"
	}
	return &TemplateSyntaxError{Offset: start, Snippet: snippet, Reason: reason}
}

// tmplIsInputName reports whether s matches [A-Za-z_][A-Za-z0-9_]*.
func tmplIsInputName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// tmplIsStepName reports whether s could name a step in a reference; whether
// such a step exists is for Plan.Validate to say.
func tmplIsStepName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '_' && c != '-' && !('a' <= c && c <= 'z') && !('A' <= c && c <= 'Z') && !('0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// Render fills every {{inputs.x}} and {{steps.name.output}} in tmpl; syntax
// errors (*TemplateSyntaxError) are reported before missing values
// (*MissingVariableError).
func Render(tmpl string, inputs map[string]any, outputs map[string]string) (string, error) {
	if !strings.Contains(tmpl, "{{") {
		return tmpl, nil
	}
	parts, err := tmplParse(tmpl)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.Grow(len(tmpl))
	for _, part := range parts {
		switch {
		case part.input != "":
			value, ok := inputs[part.input]
			if !ok {
				return "", &MissingVariableError{Name: "inputs." + part.input}
			}
			text, err := tmplFormatValue(value)
			if err != nil {
				return "", fmt.Errorf("render inputs.%s: %w", part.input, err)
			}
			b.WriteString(text)
		case part.step != "":
			output, ok := outputs[part.step]
			if !ok {
				return "", &MissingVariableError{Name: "steps." + part.step + ".output"}
			}
			b.WriteString(output)
		default:
			b.WriteString(part.text)
		}
	}
	return b.String(), nil
}

// tmplFormatValue writes an input value as text: strings as they are, numbers
// and booleans as written in JSON, nil as nothing, anything else as JSON.
func tmplFormatValue(value any) (string, error) {
	switch v := value.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	case bool:
		return strconv.FormatBool(v), nil
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return fmt.Sprint(v), nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return strconv.FormatFloat(v, 'g', -1, 64), nil
		}
	case float32:
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return strconv.FormatFloat(float64(v), 'g', -1, 32), nil
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(value); err != nil {
		return "", err
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

// References returns the input names and step names that tmpl uses, each once,
// in order of first appearance; it reports the same syntax errors as Render.
func References(tmpl string) (inputs, steps []string, err error) {
	parts, err := tmplParse(tmpl)
	if err != nil {
		return nil, nil, err
	}
	seenInput := map[string]bool{}
	seenStep := map[string]bool{}
	for _, part := range parts {
		switch {
		case part.input != "" && !seenInput[part.input]:
			seenInput[part.input] = true
			inputs = append(inputs, part.input)
		case part.step != "" && !seenStep[part.step]:
			seenStep[part.step] = true
			steps = append(steps, part.step)
		}
	}
	return inputs, steps, nil
}
