package templates

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/nofxhq/nofx/internal/plan"
	"github.com/nofxhq/nofx/internal/templates"
)

// BuilderInput is one declared input as the builder's form holds it.
type BuilderInput struct {
	Name     string
	Label    string
	Type     string
	Required bool
	Default  string
	Choices  string // one per line
}

// BuilderStep is one step as the builder's form holds it: numbers and JSON
// stay as typed, so that a bad value can be shown back with its error.
type BuilderStep struct {
	Name        string
	Kind        string
	Provider    string
	Model       string
	Prompt      string
	MaxAttempts string
	Timeout     string
	Options     string // a JSON object
	Fallback    string // one "provider/model" per line
	Needs       []int  // positions of the steps this one needs
}

// Builder is the template builder form, with what is wrong with it.
type Builder struct {
	Editing     string // the slug of the template being edited; "" for a new one
	Slug        string
	Name        string
	Description string
	Goal        string
	Note        string
	Inputs      []BuilderInput
	Steps       []BuilderStep
	Providers   []string
	Models      map[string][]string // suggested models by provider
	Errors      map[string]string   // keyed as the templates service reports them
	Warnings    map[string]string
	Focus       string // the id of the field to focus after a change
	Preview     Preview
	Import      Import // the JSON section of a new template
}

// Import is the JSON import form: the text and what is wrong with it.
type Import struct {
	JSON  string
	Note  string
	Error string
}

// Preview is the builder's preview panel: sample values for the inputs and
// each step rendered with them.
type Preview struct {
	Shown    bool
	Inputs   []templates.Input
	Samples  map[string]string
	Steps    []templates.PreviewStep
	Errors   map[string]string
	Warnings map[string]string
}

// Action is the address the builder form saves to.
func (b Builder) Action() string {
	if b.Editing != "" {
		return "/templates/" + b.Editing
	}
	return "/templates"
}

// StepID is the id of a step's field in the form.
func StepID(i int, field string) string { return fmt.Sprintf("steps-%d-%s", i, field) }

// StepName is the form name of a step's field.
func StepName(i int, field string) string { return fmt.Sprintf("steps.%d.%s", i, field) }

// InputID is the id of an input's field in the form.
func InputID(i int, field string) string { return fmt.Sprintf("inputs-%d-%s", i, field) }

// InputName is the form name of an input's field.
func InputName(i int, field string) string { return fmt.Sprintf("inputs.%d.%s", i, field) }

func stepKey(i int, field string) string  { return fmt.Sprintf("steps[%d].%s", i, field) }
func inputKey(i int, field string) string { return fmt.Sprintf("inputs[%d].%s", i, field) }

// StepLabel names a step for buttons and legends, even before it has a name.
func StepLabel(steps []BuilderStep, i int) string {
	if name := strings.TrimSpace(steps[i].Name); name != "" {
		return name
	}
	return "step " + strconv.Itoa(i+1)
}

// inputLabel names an input for buttons and legends, even before it has a name.
func inputLabel(in BuilderInput, i int) string {
	if name := strings.TrimSpace(in.Name); name != "" {
		return name
	}
	return "input " + strconv.Itoa(i+1)
}

// needs reports whether step i needs step j.
func (s BuilderStep) needs(j int) bool {
	for _, n := range s.Needs {
		if n == j {
			return true
		}
	}
	return false
}

// kinds are the step kinds with their labels, in the order the form offers them.
var kinds = []struct{ value, label string }{
	{plan.KindLLM, "LLM call"},
	{plan.KindText, "Text (rendered template)"},
	{plan.KindApproval, "Approval (waits for a person)"},
}

// inputTypeLabels name the input types.
var inputTypeLabels = map[string]string{
	templates.InputText:     "Text",
	templates.InputLongText: "Long text",
	templates.InputNumber:   "Number",
	templates.InputChoice:   "Choice",
}

// InputTypeLabel names an input type as a person reads it.
func InputTypeLabel(t string) string {
	if l, ok := inputTypeLabels[t]; ok {
		return l
	}
	return t
}

// promptLabel is what a step's prompt field is called for its kind.
func promptLabel(kind string) string {
	switch kind {
	case plan.KindText:
		return "Template"
	case plan.KindApproval:
		return "Message to the approver"
	}
	return "Prompt"
}

// problem is one entry of the summary above the form.
type problem struct {
	Key     string
	Message string
	Href    string // the field it is about, when the form has one
}

// problems lists errs in a stable order, each linked to its field.
func problems(errs map[string]string) []problem {
	keys := make([]string, 0, len(errs))
	for k := range errs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]problem, 0, len(keys))
	for _, k := range keys {
		out = append(out, problem{Key: k, Message: errs[k], Href: fieldHref(k)})
	}
	return out
}

// fieldHref links a problem's key ("steps[1].prompt") to its field.
func fieldHref(key string) string {
	var i int
	var field string
	switch {
	case key == "slug" || key == "name" || key == "description" || key == "goal" || key == "note":
		return "#template-" + key
	case strings.HasPrefix(key, "steps["):
		if n, _ := fmt.Sscanf(strings.Replace(key, "].", "] ", 1), "steps[%d] %s", &i, &field); n == 2 {
			return "#" + StepID(i, fieldRoot(field))
		}
	case strings.HasPrefix(key, "inputs["):
		if n, _ := fmt.Sscanf(strings.Replace(key, "].", "] ", 1), "inputs[%d] %s", &i, &field); n == 2 {
			return "#" + InputID(i, fieldRoot(field))
		}
	}
	return ""
}

// describedBy joins the ids of a field's error and hint.
func describedBy(id string, err, hint bool) string {
	var ids []string
	if err {
		ids = append(ids, id+"-error")
	}
	if hint {
		ids = append(ids, id+"-hint")
	}
	return strings.Join(ids, " ")
}

// fieldRoot is the field a nested key is about: "options" for "options.x",
// "fallback" for "fallback[1].model".
func fieldRoot(field string) string {
	if i := strings.IndexAny(field, ".["); i >= 0 {
		return field[:i]
	}
	return field
}

// lookup returns the message for key, or for the first key nested under it.
func lookup(msgs map[string]string, key string) string {
	if m, ok := msgs[key]; ok {
		return m
	}
	var found string
	var foundKey string
	for k, m := range msgs {
		if (strings.HasPrefix(k, key+".") || strings.HasPrefix(k, key+"[")) && (foundKey == "" || k < foundKey) {
			found, foundKey = m, k
		}
	}
	return found
}

func (b Builder) err(key string) string  { return lookup(b.Errors, key) }
func (b Builder) warn(key string) string { return lookup(b.Warnings, key) }

// inputTypes are the input types the builder offers.
func inputTypes() []string { return templates.InputTypes }
