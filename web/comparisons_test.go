package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/db"
)

// The run page's compare form, sent with problems, comes back with what was
// typed and each problem next to its field; nothing is started.
func TestCompareFormShowsProblemsNextToFields(t *testing.T) {
	onBothDatabases(t, func(t *testing.T, a *app) {
		owner := a.client()
		owner.signUp("owner@example.com", password)
		c := &apiClient{t: t, app: a, key: a.keyFor("owner@example.com")}
		res := c.do(http.MethodPost, "/api/v1/runs", `{"prompt":"hello","provider":"simulated","model":"echo"}`)
		require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
		run := decode[apiRun](t, res).ID
		c.waitRun(run, "succeeded")
		page := fmt.Sprintf("/runs/%d", run)
		action := owner.get(page).Doc(t).Find(`form.compare-form`).AttrOr("action", "")
		require.NotEmpty(t, action, "the run page offers to compare its LLM step")

		// Row 2 has a provider and no model; row 3 a model on no provider.
		res = owner.submit(page, action, url.Values{"provider_1": {"simulated"}, "model_2": {"lorem"}})
		require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
		form := res.Doc(t).Find(`form.compare-form`)
		require.Equal(t, "Choose a model.", form.Find(`[data-testid$="-model_1"]`).Text())
		require.Equal(t, "Choose a provider.", form.Find(`[data-testid$="-provider_2"]`).Text())
		require.Equal(t, "simulated", form.Find(`select[name="provider_1"] option[selected]`).AttrOr("value", ""), "what was typed is kept")
		require.Equal(t, "lorem", form.Find(`input[name="model_2"]`).AttrOr("value", ""))

		res = owner.submit(page, action, url.Values{})
		require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
		require.Contains(t, res.Doc(t).Find(`form.compare-form [role="alert"]`).Text(), "Give 1 to 4 provider and model pairs.")

		var n int
		require.NoError(t, db.Get(t.Context(), a.DB, &n, `SELECT COUNT(*) FROM comparisons`))
		require.Zero(t, n, "nothing was started")
	})
}
