package plan

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// renderTestInputs are the inputs the render tests fill templates from.
var renderTestInputs = map[string]any{
	"topic":    "owls",
	"count":    float64(3),
	"ratio":    2.5,
	"big":      1e21,
	"n":        7,
	"num":      json.Number("12.50"),
	"yes":      true,
	"nothing":  nil,
	"list":     []any{"a", 1.0},
	"obj":      map[string]any{"q": "<b>&"},
	"empty":    "",
	"_private": "p",
}

// renderTestOutputs are the step outputs the render tests fill templates from.
var renderTestOutputs = map[string]string{
	"draft":     "A draft.",
	"fact-find": "facts",
	"blank":     "",
}

func TestRender(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, tmpl, want string
	}{
		{"no references", "plain text", "plain text"},
		{"empty template", "", ""},
		{"input", "Write about {{inputs.topic}}.", "Write about owls."},
		{"whitespace inside the braces", "{{ inputs.topic }}|{{\tinputs.topic\n}}", "owls|owls"},
		{"step output", "Edit: {{steps.draft.output}}", "Edit: A draft."},
		{"step name with a dash", "{{ steps.fact-find.output }}", "facts"},
		{"several references", "{{inputs.topic}}{{inputs.topic}} {{steps.draft.output}}", "owlsowls A draft."},
		{"whole float", "{{inputs.count}}", "3"},
		{"fraction", "{{inputs.ratio}}", "2.5"},
		{"large float", "{{inputs.big}}", "1e+21"},
		{"int", "{{inputs.n}}", "7"},
		{"json.Number keeps its text", "{{inputs.num}}", "12.50"},
		{"bool", "{{inputs.yes}}", "true"},
		{"nil is empty", "[{{inputs.nothing}}]", "[]"},
		{"empty string", "[{{inputs.empty}}]", "[]"},
		{"empty output", "[{{steps.blank.output}}]", "[]"},
		{"array as JSON", "{{inputs.list}}", `["a",1]`},
		{"object as JSON, HTML left alone", "{{inputs.obj}}", `{"q":"<b>&"}`},
		{"underscore input name", "{{inputs._private}}", "p"},
		{"single braces pass through", `{ "json": 1 } and {inputs.topic}`, `{ "json": 1 } and {inputs.topic}`},
		{"closing braces alone pass through", `{"a": {"b": 1}} }}`, `{"a": {"b": 1}} }}`},
		{"reference next to JSON braces", `{"topic": "{{inputs.topic}}"}`, `{"topic": "owls"}`},
		{"unicode around a reference", "é{{inputs.topic}}ü", "éowlsü"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Render(tc.tmpl, renderTestInputs, renderTestOutputs)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestRenderDoesNotRenderValuesAgain(t *testing.T) {
	t.Parallel()
	got, err := Render("{{inputs.x}}", map[string]any{"x": "{{inputs.y}}"}, nil)
	require.NoError(t, err)
	require.Equal(t, "{{inputs.y}}", got)
}

func TestRenderMissingVariable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, tmpl, missing string
	}{
		{"input", "about {{ inputs.tone }}", "inputs.tone"},
		{"input names are case-sensitive", "{{inputs.Topic}}", "inputs.Topic"},
		{"step output", "{{steps.review.output}}", "steps.review.output"},
		{"first missing one", "{{inputs.topic}} {{steps.nope.output}} {{inputs.nope}}", "steps.nope.output"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Render(tc.tmpl, renderTestInputs, renderTestOutputs)
			var missing *MissingVariableError
			require.ErrorAs(t, err, &missing)
			require.Equal(t, tc.missing, missing.Name)
			require.EqualError(t, err, "missing variable "+tc.missing)
		})
	}
	_, err := Render("{{inputs.topic}}", nil, nil)
	require.EqualError(t, err, "missing variable inputs.topic")
}

func TestRenderSyntaxErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, tmpl string
		offset     int
		snippet    string
		reason     string
	}{
		{"bare name", "hi {{ foo }}", 3, "{{ foo }}", "only {{inputs.name}} and {{steps.name.output}}"},
		{"empty", "{{}}", 0, "{{}}", "nothing between"},
		{"blank", "{{   }}", 0, "{{   }}", "nothing between"},
		{"input without a name", "{{inputs.}}", 0, "{{inputs.}}", `"" is not a valid input name`},
		{"input name starting with a digit", "{{inputs.1st}}", 0, "{{inputs.1st}}", `"1st" is not a valid input name`},
		{"input name with a dash", "{{inputs.a-b}}", 0, "{{inputs.a-b}}", "not a valid input name"},
		{"input with a path", "{{inputs.a.b}}", 0, "{{inputs.a.b}}", "not a valid input name"},
		{"input with spaces inside", "{{ inputs . a }}", 0, "{{ inputs . a }}", "only {{inputs.name}}"},
		{"step without output", "{{steps.draft}}", 0, "{{steps.draft}}", "{{steps.name.output}}"},
		{"step with another field", "{{steps.draft.error}}", 0, "{{steps.draft.error}}", "{{steps.name.output}}"},
		{"step without a name", "{{steps..output}}", 0, "{{steps..output}}", "{{steps.name.output}}"},
		{"step name with a dot", "{{steps.a.b.output}}", 0, "{{steps.a.b.output}}", "{{steps.name.output}}"},
		{"go template syntax", "{{ .Topic }}", 0, "{{ .Topic }}", "only"},
		{"filter syntax", "{{ inputs.topic | upper }}", 0, "{{ inputs.topic | upper }}", "not a valid input name"},
		{"triple braces", "{{{inputs.topic}}}", 0, "{{{inputs.topic}}", "only"},
		{"unclosed", "ok {{inputs.topic}} then {{inputs.topic", 25, "{{inputs.topic", "never closed"},
		{"unclosed at the end", "{{", 0, "{{", "never closed"},
		{"long snippet is shortened", "{{ " + strings.Repeat("é", 40) + " }}", 0, "{{ " + strings.Repeat("é", 18) + "…", "only"},
		{"syntax error after a missing variable", "{{inputs.nope}} {{ bad }}", 16, "{{ bad }}", "only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Render(tc.tmpl, renderTestInputs, renderTestOutputs)
			var syntaxErr *TemplateSyntaxError
			require.ErrorAs(t, err, &syntaxErr)
			require.Equal(t, tc.offset, syntaxErr.Offset)
			require.Equal(t, tc.snippet, syntaxErr.Snippet)
			require.Contains(t, syntaxErr.Reason, tc.reason)
			require.Contains(t, err.Error(), "at byte")

			_, _, refErr := References(tc.tmpl)
			require.Equal(t, err, refErr, "References reports the same error")
		})
	}
}

func TestRenderUnencodableInput(t *testing.T) {
	t.Parallel()
	_, err := Render("{{inputs.ch}}", map[string]any{"ch": make(chan int)}, nil)
	require.Error(t, err)
	require.Contains(t, err.Error(), "inputs.ch")
	var missing *MissingVariableError
	require.False(t, errors.As(err, &missing))
}

func TestReferences(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, tmpl    string
		inputs, steps []string
	}{
		{"none", "plain { text }", nil, nil},
		{"inputs and steps in order of first use", "{{steps.b.output}} {{inputs.y}} {{ inputs.x }} {{steps.a.output}} {{inputs.y}} {{steps.b.output}}",
			[]string{"y", "x"}, []string{"b", "a"}},
		{"only inputs", "{{inputs.topic}}", []string{"topic"}, nil},
		{"only steps", "{{ steps.fact-find.output }}", nil, []string{"fact-find"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			inputs, steps, err := References(tc.tmpl)
			require.NoError(t, err)
			require.Equal(t, tc.inputs, inputs)
			require.Equal(t, tc.steps, steps)
		})
	}
	inputs, steps, err := References("{{inputs.a}} {{ oops }}")
	var syntaxErr *TemplateSyntaxError
	require.ErrorAs(t, err, &syntaxErr)
	require.Nil(t, inputs)
	require.Nil(t, steps)
}

func FuzzRender(f *testing.F) {
	for _, seed := range []string{
		"", "plain", "{{inputs.topic}}", "{{ steps.draft.output }}", "{{", "}}", "{{}}", "{{{inputs.topic}}}",
		"{ \"json\": 1 }", "{{inputs.}}", "{{steps..output}}", "é{{ inputs.count }}ü", "{{inputs.topic", "\xff{{\xfe}}",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, tmpl string) {
		got, err := Render(tmpl, renderTestInputs, renderTestOutputs)
		var syntaxErr *TemplateSyntaxError
		var missing *MissingVariableError
		switch {
		case err == nil:
			if !strings.Contains(tmpl, "{{") {
				require.Equal(t, tmpl, got)
			}
		case errors.As(err, &syntaxErr):
			require.GreaterOrEqual(t, syntaxErr.Offset, 0)
			require.Less(t, syntaxErr.Offset, len(tmpl))
			require.True(t, strings.HasPrefix(tmpl[syntaxErr.Offset:], "{{"))
		case errors.As(err, &missing):
			require.NotEmpty(t, missing.Name)
		default:
			t.Fatalf("unexpected error type %T: %v", err, err)
		}
		_, _, refErr := References(tmpl)
		require.Equal(t, syntaxErr != nil, refErr != nil, "References and Render agree on syntax errors")
	})
}
