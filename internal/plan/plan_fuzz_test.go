package plan

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/validation"
)

// planFuzzSeeds are plans, good and bad, that FuzzParse starts from.
var planFuzzSeeds = []string{
	`{"goal":"Write a post","steps":[{"name":"draft","kind":"llm","provider":"simulated","model":"echo","prompt":"Write about {{inputs.topic}}","needs":[],"max_attempts":3,"timeout":"60s"}]}`,
	`{"goal":"g","steps":[{"name":"a","kind":"text","prompt":"{{inputs.x}}"},{"name":"b","kind":"approval","needs":["a"],"prompt":"ok? {{steps.a.output}}"},{"name":"c","kind":"llm","provider":"simulated","model":"echo","prompt":"{{ steps.b.output }}","needs":["b"],"options":{"latency_ms":5,"fail_rate":0.5,"fail_status":529},"fallback":[{"provider":"simulated","model":"echo"}]}]}`,
	`{"steps":[{"name":"a","kind":"text","prompt":"x","needs":["b"]},{"name":"b","kind":"text","prompt":"y","needs":["a"]}]}`,
	`{"steps":[{"name":"a","kind":"text","prompt":"x","needs":["a","a",""]}]}`,
	`{"steps":[{"name":"a","kind":"text","prompt":"{{steps.a.output}} {{steps.zz.output}} {{steps.b.output}}"},{"name":"b","kind":"text","prompt":"{{"}]}`,
	`{"steps":[{"name":" a ","kind":" text ","prompt":"x","timeout":" 5s ","max_attempts":0}]}`,
	`{"steps":[{"name":"a","kind":"llm","provider":" ","model":"m","prompt":"x"}]}`,
	`{"steps":[{"name":"a","kind":"text","prompt":"x","timeout":"-1s","max_attempts":-1}]}`,
	`{"steps":[{"name":"a","kind":"text","prompt":"x","timeout":"9223372036854775807ns","max_attempts":9223372036854775807}]}`,
	`{"steps":[{"name":"a","kind":"llm","provider":"p","model":"m","prompt":"x","options":{"n":1e400}}]}`,
	`{"steps":[{"name":"a","kind":"llm","provider":"p","model":"m","prompt":"x","options":{"n":1e308,"m":-0,"s":"\u0000\ud800"}}]}`,
	`{"steps":[{"name":"a","kind":"llm","provider":"p","model":"m","prompt":"x","max_attempts":1e400}]}`,
	`{"prompt":"x","inputs":{"n":1e400}}`,
	"{\"goal\":\"\xff\xfe\",\"steps\":[{\"name\":\"\xff\",\"kind\":\"text\",\"prompt\":\"\xff{{inputs.\xff}}\"}]}", // not UTF-8
	`{"steps":[{"name":"A","kind":"LLM"}]}`,
	`{"steps":null}`,
	`{"steps":[null]}`,
	`{"steps":{}}`,
	`{}`,
	`{} {}`,
	`{"goal":"x"`,
	`[]`,
	`null`,
	``,
	`   `,
	`{"steps":[{"name":"a","kind":"text","prompt":"x","unknown":1}]}`,
	`{"steps":[{"name":"a","kind":"text","prompt":"x","options":{"a":{"b":[1,2,{"c":null}]}}}]}`,
}

func FuzzParse(f *testing.F) {
	for _, seed := range planFuzzSeeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			var verrs validation.Errors
			require.True(t, errors.As(err, &verrs), "a parse error is validation.Errors: %v", err)
			require.NotEmpty(t, verrs)
			return
		}
		errs := p.Validate()
		p.InputsUsed()
		for _, s := range p.Steps {
			d := s.TimeoutDuration()
			require.Positive(t, d)
		}

		// What parses is written back as JSON that parses to the same plan,
		// with the same problems.
		again := planRoundTrip(t, p)
		require.Equal(t, errs, again.Validate())

		// Normalizing is idempotent, and a normalized plan survives being
		// stored and read back: valid stays valid.
		p.Normalize()
		normalized := p.Validate()
		stored := planRoundTrip(t, p)
		require.Equal(t, normalized, stored.Validate())
		stored.Normalize()
		require.Equal(t, planJSON(t, p), planJSON(t, stored))
		if normalized == nil {
			for _, s := range p.Steps {
				d := s.TimeoutDuration()
				require.True(t, d >= MinStepTimeout && d <= MaxStepTimeout, "a valid step's timeout %s is in range", d)
				require.True(t, s.MaxAttempts >= 1 && s.MaxAttempts <= MaxStepAttempts)
			}
		}
	})
}

// planRoundTrip writes p as JSON and parses it again; the JSON of both is the same.
func planRoundTrip(t *testing.T, p Plan) Plan {
	t.Helper()
	data := planJSON(t, p)
	again, err := Parse(data)
	require.NoError(t, err, "the JSON of a parsed plan parses: %s", data)
	require.Equal(t, string(data), string(planJSON(t, again)), "parse → write → parse is stable")
	return again
}

// planJSON writes p as JSON.
func planJSON(t *testing.T, p Plan) []byte {
	t.Helper()
	data, err := json.Marshal(p)
	require.NoError(t, err)
	return data
}
