package templates_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/templates"
	"github.com/nofxhq/nofx/internal/validation"
)

func TestNumberInputsOutOfRange(t *testing.T) {
	t.Parallel()
	s := templates.Spec{Slug: "n", Name: "N", Inputs: []templates.Input{
		{Name: "n", Type: templates.InputNumber, Required: true},
		{Name: "text", Type: templates.InputText},
	}}
	s.Normalize()
	for _, tc := range []struct {
		name string
		v    any
		want string
	}{
		{"JSON 1e400", json.Number("1e400"), "between -1e300 and 1e300"},
		{"JSON -1e400", json.Number("-1e400"), "between -1e300 and 1e300"},
		{"long digit string", json.Number(strings.Repeat("9", 400)), "between -1e300 and 1e300"},
		{"form 1e400", "1e400", "between -1e300 and 1e300"},
		{"form digits", strings.Repeat("1", 350), "between -1e300 and 1e300"},
		{"form NaN", "NaN", "Enter a number."},
		{"form Inf", "Inf", "between -1e300 and 1e300"},
		{"form -Infinity", "-Infinity", "between -1e300 and 1e300"},
		{"Go NaN", math.NaN(), "Enter a number."},
		{"Go infinity", math.Inf(1), "between -1e300 and 1e300"},
		{"past the sensible range", 1e301, "between -1e300 and 1e300"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Values(map[string]any{"n": tc.v})
			var verrs validation.Errors
			require.ErrorAs(t, err, &verrs)
			require.Len(t, verrs, 1, verrs)
			require.Contains(t, verrs["inputs.n"], tc.want)
		})
	}

	// A huge number given to a text input is its text, kept exactly.
	got, err := s.Values(map[string]any{"n": json.Number("1e300"), "text": json.Number("1e400")})
	require.NoError(t, err)
	require.Equal(t, "1e400", got["text"])
	require.Equal(t, 1e300, got["n"])
}

func TestNumberDefaultsOutOfRange(t *testing.T) {
	t.Parallel()
	for _, def := range []string{`1e400`, `-1e400`, `"1e400"`, strings.Repeat("7", 400), `"Infinity"`} {
		t.Run(def, func(t *testing.T) {
			s := parse(t, `{"slug":"n","name":"N","inputs":[{"name":"n","type":"number","default":`+def+`}],
				"plan":{"goal":"g","steps":[{"name":"s","kind":"text","prompt":"{{inputs.n}}"}]}}`)
			errs, _ := checker().Check(&s)
			require.Contains(t, errs["inputs[0].default"], "between -1e300 and 1e300", errs)
		})
	}
	// A text input's default is text, however it reads.
	s := parse(t, `{"slug":"n","name":"N","inputs":[{"name":"n","type":"text","default":1e400}],
		"plan":{"goal":"g","steps":[{"name":"s","kind":"text","prompt":"{{inputs.n}}"}]}}`)
	errs, _ := checker().Check(&s)
	require.Empty(t, errs)
	require.Equal(t, "1e400", s.Inputs[0].Default)
}

func TestParseNamesOutOfRangeNumbers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, step, field string }{
		{"option", `{"name":"s","kind":"llm","provider":"simulated","model":"echo","prompt":"p","options":{"latency_ms":1e400}}`, "plan.steps[0].options.latency_ms"},
		{"max_attempts", `{"name":"s","kind":"text","prompt":"p","max_attempts":-1e400}`, "plan.steps[0].max_attempts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := templates.Parse([]byte(`{"slug":"n","name":"N","inputs":[],"plan":{"goal":"g","steps":[` + tc.step + `]}}`))
			var verrs validation.Errors
			require.ErrorAs(t, err, &verrs)
			require.Len(t, verrs, 1, verrs)
			require.Contains(t, verrs["json"], `Field "`+tc.field+`"`, verrs)
			require.Contains(t, verrs["json"], "out of range", verrs)
		})
	}
}

func TestStartRunKeyReusedWithOtherValues(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := setupService(t, d)
		slug := templates.StarterFanOut
		first, replayed, err := s.svc.StartRun(s.ctx, s.owner, slug, map[string]any{"topic": "tea"}, "form-1")
		require.NoError(t, err)
		require.False(t, replayed)

		// A new version of the template does not make the same request another.
		edited := templates.Starters()[2]
		edited.Description = "v2"
		_, _, err = s.svc.Save(s.ctx, s.owner, slug, edited, "")
		require.NoError(t, err)
		again, replayed, err := s.svc.StartRun(s.ctx, s.owner, slug, map[string]any{"topic": "tea"}, "form-1")
		require.NoError(t, err)
		require.True(t, replayed)
		require.Equal(t, first.ID, again.ID)

		before := s.count(t, `SELECT COUNT(*) FROM runs`)
		for _, values := range []map[string]any{
			{"topic": "coffee"},
			{"topic": "tea", "points": "3"}, // the default, but not what was sent
		} {
			_, _, err = s.svc.StartRun(s.ctx, s.owner, slug, values, "form-1")
			require.ErrorIs(t, err, runs.ErrIdempotencyKeyReused)
		}
		_, _, err = s.svc.StartRun(s.ctx, s.owner, templates.StarterSummary, map[string]any{"topic": "tea"}, "form-1")
		require.Error(t, err, "another template under the same key")
		_, _, err = s.svc.StartRun(s.ctx, s.owner, templates.StarterSummary, map[string]any{"text": "tea"}, "form-1")
		require.ErrorIs(t, err, runs.ErrIdempotencyKeyReused)
		require.Equal(t, before, s.count(t, `SELECT COUNT(*) FROM runs`), "nothing is written")

		// Out of range, nothing is written either.
		_, _, err = s.svc.StartRun(s.ctx, s.owner, slug, map[string]any{"topic": "tea", "points": json.Number("1e400")}, "")
		var verrs validation.Errors
		require.ErrorAs(t, err, &verrs)
		require.Contains(t, verrs, "inputs.points")
		require.Equal(t, before, s.count(t, `SELECT COUNT(*) FROM runs`))
	})
}
