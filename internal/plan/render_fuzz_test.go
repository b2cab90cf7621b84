package plan

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func FuzzRenderRoundTrip(f *testing.F) {
	for _, seed := range []struct {
		tmpl, input, output string
		number              float64
	}{
		{"Write about {{inputs.topic}}.", "Go", "", 1},
		{"{{steps.draft.output}}\n\nReview: {{ inputs.tone }}", "dry", "the draft", 0},
		{"{{inputs.a}}{{inputs.a}}{{steps.s-1.output}}{{steps.s_2.output}}", "{{inputs.a}}", "{{steps.s-1.output}}", -0.5},
		{"no references at all", "", "", 0},
		{"{{", "", "", 0},
		{"}}{{}}", "", "", 0},
		{"{{ }}", "", "", 0},
		{"{{{inputs.x}}}", "", "", 0},
		{"{{inputs.x}}}", "", "", 0},
		{"{{inputs.1x}}", "", "", 0},
		{"{{inputs.}}", "", "", 0},
		{"{{steps.draft}}", "", "", 0},
		{"{{steps..output}}", "", "", 0},
		{"{{steps.a.b.output}}", "", "", 0},
		{"{{input.x}}", "", "", 0},
		{"{{inputs.x}", "", "", 0},
		{"{{\tinputs.x\u00a0}}", "", "", 0},
		{"héllo {{inputs.ñ}} " + strings.Repeat("é", 30) + "{{", "", "", 0},
		{"\xff{{inputs.\xfe}}", "\xff", "\xfe", 0},
		{"{{inputs.n}}", "", "", math.Inf(1)},
		{"{{inputs.n}}", "", "", math.NaN()},
		{"{{inputs.n}}", "", "", 1e308},
	} {
		f.Add(seed.tmpl, seed.input, seed.output, seed.number)
	}
	f.Fuzz(func(t *testing.T, tmpl, input, output string, number float64) {
		inputNames, stepNames, refErr := References(tmpl)

		// Render and References agree on syntax, and a template without
		// references is its own rendering.
		rendered, err := Render(tmpl, nil, nil)
		var syntaxErr *TemplateSyntaxError
		if refErr != nil {
			require.ErrorAs(t, refErr, &syntaxErr)
			require.Error(t, err)
			require.Equal(t, refErr.Error(), err.Error())
			require.True(t, syntaxErr.Offset >= 0 && syntaxErr.Offset < len(tmpl))
			require.True(t, strings.HasPrefix(tmpl[syntaxErr.Offset:], "{{"))
			return
		}
		if len(inputNames)+len(stepNames) == 0 {
			require.NoError(t, err)
			require.Equal(t, tmpl, rendered)
		} else {
			var missing *MissingVariableError
			require.ErrorAs(t, err, &missing)
		}

		// Parse → render → parse: filling every reference with itself gives
		// the canonical template, which uses the same references and is its
		// own rendering.
		self := map[string]any{}
		for _, name := range inputNames {
			self[name] = "{{inputs." + name + "}}"
		}
		selfOut := map[string]string{}
		for _, name := range stepNames {
			selfOut[name] = "{{steps." + name + ".output}}"
		}
		canonical, err := Render(tmpl, self, selfOut)
		require.NoError(t, err)
		inputs2, steps2, err := References(canonical)
		require.NoError(t, err)
		require.Equal(t, inputNames, inputs2)
		require.Equal(t, stepNames, steps2)
		again, err := Render(canonical, self, selfOut)
		require.NoError(t, err)
		require.Equal(t, canonical, again)

		// Values are pasted in as they are, never read as templates
		// themselves.
		values := map[string]any{}
		var pairs []string
		for _, name := range inputNames {
			values[name] = input
			pairs = append(pairs, "{{inputs."+name+"}}", input)
		}
		outputs := map[string]string{}
		for _, name := range stepNames {
			outputs[name] = output
			pairs = append(pairs, "{{steps."+name+".output}}", output)
		}
		got, err := Render(tmpl, values, outputs)
		require.NoError(t, err)
		if len(pairs) > 0 {
			require.Equal(t, strings.NewReplacer(pairs...).Replace(canonical), got)
		}

		// Any JSON-ish value renders or fails cleanly.
		for _, name := range inputNames {
			values[name] = []any{number, map[string]any{"n": number, "s": input}, json.Number(input), float32(number), int64(number)}
		}
		if _, err := Render(tmpl, values, outputs); err != nil {
			var missing *MissingVariableError
			require.False(t, errors.As(err, &missing), "every value is there: %v", err)
		}
		for _, name := range inputNames {
			values[name] = number
		}
		_, err = Render(tmpl, values, outputs)
		require.NoError(t, err, "a number renders")
	})
}
