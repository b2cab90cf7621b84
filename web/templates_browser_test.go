package web_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/apikeys"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/teams"
)

// setSelect chooses value in a select and fires its change event, as a
// person choosing from the list does.
func setSelect(selector, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](`(function () {
			var el = document.querySelector(`+jsString(selector)+`);
			el.value = `+jsString(value)+`;
			el.dispatchEvent(new Event('change', { bubbles: true }));
			return true;
		})()`)(ctx, t)
		return err
	})
}

// TestBrowserTemplateBuilder builds a two-step template in the builder
// (htmx adds a step and changes its kind without a reload, needs are
// ticked), previews it, saves it, deploys it on its deployments page,
// triggers it through the API, and sees its run succeed on the dashboard.
func TestBrowserTemplateBuilder(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := newBrowser(t)
	const email = "builder-browser@example.com"

	browserStep(ctx, t, "sign up and open the builder",
		chromedp.Navigate(a.URL+"/signup"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=signup-form]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=signup-form] input[name=email]`), email),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=signup-form] input[name=password]`), password),
		chromedp.Click(chromedp.CSS(`[data-testid=signup-form] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=dashboard]`)),
		chromedp.Navigate(a.URL+"/templates"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=templates-table]`)),
		clickAndLoad(`[data-testid=new-template]`),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=builder-form]`)),
	)
	_, err := chromedp.Run(ctx, chromedp.Evaluate[int](`window.__marker = 1`))
	require.NoError(t, err)

	browserStep(ctx, t, "name the template and declare an input",
		chromedp.SendKeys(chromedp.CSS(`#template-slug`), "release-note"),
		chromedp.SendKeys(chromedp.CSS(`#template-name`), "Release note"),
		chromedp.SendKeys(chromedp.CSS(`#template-goal`), "Write a release note"),
		chromedp.Click(chromedp.CSS(`[data-testid=add-input]`)),
		chromedp.WaitVisible(chromedp.CSS(`#inputs-0-name`)),
		waitFor(`document.activeElement && document.activeElement.id === 'inputs-0-name'`),
		chromedp.SendKeys(chromedp.CSS(`#inputs-0-name`), "topic"),
		chromedp.SendKeys(chromedp.CSS(`#inputs-0-label`), "Topic"),
	)
	browserStep(ctx, t, "write the first step, add a second as text, tick its needs",
		chromedp.SendKeys(chromedp.CSS(`#steps-0-name`), "draft"),
		chromedp.SendKeys(chromedp.CSS(`#steps-0-prompt`), "Draft a note about {{inputs.topic}}"),
		chromedp.Click(chromedp.CSS(`[data-testid=add-step]`)),
		chromedp.WaitVisible(chromedp.CSS(`#steps-1-name`)),
		waitFor(`document.activeElement && document.activeElement.id === 'steps-1-name'`),
		setSelect(`#steps-1-kind`, "text"),
		waitFor(`!document.querySelector('#steps-1-provider') && !!document.querySelector('#steps-1-prompt')`),
		waitFor(textContains(`label[for=steps-1-prompt]`, "Template")),
		chromedp.SendKeys(chromedp.CSS(`#steps-1-name`), "polish"),
		chromedp.SendKeys(chromedp.CSS(`#steps-1-prompt`), "Polished: {{steps.draft.output}}"),
		waitFor(textContains(`label:has(#steps-1-needs-0)`, "draft")),
		chromedp.Click(chromedp.CSS(`#steps-1-needs-0`)),
	)
	values, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[document.querySelector('#template-slug').value,
		document.querySelector('#inputs-0-name').value, document.querySelector('#steps-0-prompt').value, String(window.__marker)]`))
	require.NoError(t, err)
	require.Equal(t, []string{"release-note", "topic", "Draft a note about {{inputs.topic}}", "1"}, values,
		"what was typed survives the htmx changes, without a reload")

	browserStep(ctx, t, "preview it",
		chromedp.Click(chromedp.CSS(`[data-testid=preview-template]`)),
		waitFor(textContains(`[data-testid=preview-rendered-0]`, "Draft a note about sample Topic")),
		waitFor(textContains(`[data-testid=preview-rendered-1]`, "Polished: [output of draft]")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=preview-ok]`)),
	)
	saveScreenshot(ctx, t, "template-builder")

	browserStep(ctx, t, "save it",
		clickAndLoad(`[data-testid=save-template]`),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=template-page]`)),
		waitFor(textContains(`[data-testid=flash]`, "created")),
		waitFor(textContains(`[data-testid=template-step-polish]`, "needs draft")),
	)
	saveScreenshot(ctx, t, "template-page")

	browserStep(ctx, t, "deploy version 1 to production",
		clickAndLoad(`[data-testid=tab-deployments]`),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=deploy-form]`)),
		setSelect(`#deploy-environment`, "production"),
		setSelect(`#deploy-version`, "1"),
		clickAndLoad(`[data-testid=deploy]`),
		waitFor(textContains(`[data-testid=version-production]`, "Version 1")),
		waitFor(textContains(`[data-testid=status-production]`, "active")),
	)

	// Trigger it through the API, with a key of the team.
	user, err := auth.UserByEmail(context.Background(), a.DB, email)
	require.NoError(t, err)
	ms, err := teams.ForUser(context.Background(), a.DB, user.ID)
	require.NoError(t, err)
	_, secret, err := apikeys.Create(context.Background(), a.DB, ms[0].ID, "browser", teams.RoleOwner, user.ID, nil)
	require.NoError(t, err)
	api := &apiClient{t: t, app: a, key: secret}
	res := api.do(http.MethodPost, "/api/v1/deployments/release-note/production/runs", `{"inputs":{"topic":"tides"}}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	run := api.waitRun(decode[apiRun](t, res).ID, "succeeded", "failed")
	require.Equal(t, "succeeded", run.Status)

	row := fmt.Sprintf(`[data-testid=run-row-%d]`, run.ID)
	browserStep(ctx, t, "see the run on the dashboard",
		chromedp.Navigate(a.URL+"/runs"),
		chromedp.WaitVisible(chromedp.CSS(row)),
		waitFor(textContains(row, "release-note")),
		waitFor(textContains(row+` [data-testid=run-status]`, "succeeded")),
		clickAndLoad(row+` a.run-goal`),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=run-page]`)),
		waitFor(textContains(`[data-testid=run-status]`, "succeeded")),
		waitFor(textContains(`[data-testid=step-output-polish]`, "Polished: Draft a note about tides")),
	)

	browserStep(ctx, t, "run the production deployment by hand from its page",
		chromedp.Navigate(a.URL+"/templates/release-note/deployments"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=run-now-production]`)),
		clickAndLoad(`[data-testid=run-now-production]`),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=run-form-deployment]`)),
		chromedp.SendKeys(chromedp.CSS(`#input-topic`), "harbours"),
		clickAndLoad(`[data-testid=start-template-run]`),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=run-page]`)),
		waitFor(textContains(`[data-testid=run-deployment]`, "production")),
		waitFor(textContains(`[data-testid=run-deployment]`, "manual")),
		waitFor(textContains(`[data-testid=run-status]`, "succeeded")),
	)
}
