package web_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/teams"
)

// andLoad runs action and waits for the page it leads to to load.
func andLoad(action chromedp.Action[chromedp.Void]) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.WaitEvent(page.LoadEventFired, nil, action)(ctx, t)
		return err
	})
}

// TestBrowserCreateTeam signs up, creates a team from the top bar's link
// (an empty name first, then a real one), lands on the new team's page,
// finds the starter templates there, and switches back to the personal team
// with the team switcher.
func TestBrowserCreateTeam(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := newBrowser(t)

	browserStep(ctx, t, "sign up and open New team",
		chromedp.Navigate(a.URL+"/signup"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=signup-form]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=signup-form] input[name=email]`), "crew@example.com"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=signup-form] input[name=password]`), password),
		chromedp.Click(chromedp.CSS(`[data-testid=signup-form] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=dashboard]`)),
		waitFor(textContains(`[data-testid=team-name]`, "crew's team")),
		clickAndLoad(`[data-testid=new-team-link]`),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=new-team-form]`)),
		waitFor(`document.activeElement && document.activeElement.id === 'team-name'`),
	)
	browserStep(ctx, t, "an empty name is named next to the field",
		clickAndLoad(`[data-testid=create-team]`),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=error-name]`)),
		waitFor(`document.querySelector('#team-name').getAttribute('aria-invalid') === 'true'`),
		waitFor(`document.querySelector('#team-name').closest('.field').contains(document.querySelector('[data-testid=error-name]'))`),
		waitFor(textContains(`[data-testid=error-name]`, "Enter a name for the team")),
	)
	saveScreenshot(ctx, t, "team-new-error")

	browserStep(ctx, t, "type a name, submit, land on the new team's page",
		chromedp.SendKeys(chromedp.CSS(`#team-name`), "Night Shift"),
		clickAndLoad(`[data-testid=create-team]`),
		waitFor(`location.pathname === '/team'`),
		waitFor(textContains(`main h1`, "Night Shift")),
		waitFor(textContains(`[data-testid=flash]`, "Team Night Shift created.")),
		waitFor(`document.querySelectorAll('[data-testid=team-switcher] option').length === 2`),
		waitFor(`document.querySelector('#team-switch').selectedOptions[0].textContent.trim() === 'Night Shift'`),
	)
	saveScreenshot(ctx, t, "team-created")

	browserStep(ctx, t, "the new team has the starter templates",
		chromedp.Navigate(a.URL+"/templates"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=templates-table]`)),
		waitFor(`document.querySelectorAll('[data-testid=templates-table] tbody tr').length === 3`),
		waitFor(`!!document.querySelector('a[href="/templates/fan-out/run"]')`),
	)

	user, err := auth.UserByEmail(context.Background(), a.DB, "crew@example.com")
	require.NoError(t, err)
	ms, err := teams.ForUser(context.Background(), a.DB, user.ID)
	require.NoError(t, err)
	require.Len(t, ms, 2)
	require.True(t, ms[0].Personal)
	browserStep(ctx, t, "switch back to the personal team with the switcher",
		// SetValue fires "change", on which the switcher submits itself
		// (static/js/app.js).
		andLoad(chromedp.SetValue(chromedp.CSS(`#team-switch`), fmt.Sprint(ms[0].ID))),
		waitFor(`location.pathname === '/runs'`),
		chromedp.Navigate(a.URL+"/team"),
		waitFor(textContains(`main h1`, "crew's team")),
		waitFor(`document.querySelector('#team-switch').selectedOptions[0].textContent.trim() === "crew's team"`),
	)
	heading, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`main h1`)))
	require.NoError(t, err)
	require.Equal(t, "crew's team", strings.TrimSpace(heading))
}
