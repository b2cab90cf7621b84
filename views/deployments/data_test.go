package deployments

import (
	"testing"

	"github.com/stretchr/testify/require"

	dep "github.com/nofxhq/nofx/internal/deployments"
	"github.com/nofxhq/nofx/internal/templates"
)

func TestExampleBody(t *testing.T) {
	t.Parallel()
	inputs := `[{"name":"title","type":"text"},{"name":"count","type":"number"},{"name":"limit","type":"number","default":"5"},` +
		`{"name":"tone","type":"choice","choices":["plain","warm"]},{"name":"note","type":"long_text","default":"Hi"}]`
	data := func(inputMap string) Data {
		d := Data{Versions: []templates.Version{{Number: 2, InputsJSON: `[{"name":"other","type":"text"}]`}, {Number: 1, InputsJSON: inputs}}}
		d.Envs = []Env{{Name: "staging"}, {Name: "production", Deployment: &dep.Overview{Deployment: dep.Deployment{Version: 1, InputMapJSON: inputMap}}}}
		return d
	}
	for _, tc := range []struct {
		name, env, inputMap, want string
	}{
		{"by name: defaults, first choice, 1 for a number, words", "production", `{}`,
			`{"count":1,"limit":5,"note":"Hi","title":"Hello from a webhook","tone":"plain"}`},
		{"nothing deployed: the newest version", "staging", `{}`, `{"other":"Hello from a webhook"}`},
		{"where the input map reads them", "production", `{"title":"pull_request.title","count":"pull_request.commits","tone":"tone"}`,
			`{"limit":5,"note":"Hi","pull_request":{"commits":1,"title":"Hello from a webhook"},"tone":"plain"}`},
		{"of two clashing paths the first placed stays", "production", `{"title":"limit.title"}`,
			`{"count":1,"limit":{"title":"Hello from a webhook"},"note":"Hi","tone":"plain"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.JSONEq(t, tc.want, data(tc.inputMap).exampleBody(tc.env))
		})
	}
}
