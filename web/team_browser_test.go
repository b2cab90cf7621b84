package web_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/db"
)

var inviteLink = regexp.MustCompile(`/invites/[A-Za-z0-9_-]+`)

// TestBrowserInviteAcceptChangeRoleAudit: an owner invites a member, the
// member accepts in a second browser right after signing up, the owner
// changes their role, and both show in the audit log.
func TestBrowserInviteAcceptChangeRoleAudit(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	owner := newBrowser(t)
	guest := newBrowser(t)
	signUpIn := func(ctx context.Context, email string) []chromedp.Action[chromedp.Void] {
		return []chromedp.Action[chromedp.Void]{
			chromedp.WaitVisible(chromedp.CSS(`[data-testid=signup-form]`)),
			chromedp.SendKeys(chromedp.CSS(`[data-testid=signup-form] input[name=email]`), email),
			chromedp.SendKeys(chromedp.CSS(`[data-testid=signup-form] input[name=password]`), password),
			chromedp.Click(chromedp.CSS(`[data-testid=signup-form] button[type=submit]`)),
		}
	}

	// The owner signs up and invites guest@example.com as a member.
	require.NoError(t, chromedp.Do(owner, append([]chromedp.Action[chromedp.Void]{chromedp.Navigate(a.URL + "/signup")},
		append(signUpIn(owner, "owner@example.com"),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid=dashboard]`)),
			chromedp.Navigate(a.URL+"/team"),
			chromedp.Click(chromedp.CSS(`[data-testid=invites-link]`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid=invite-form]`)),
			chromedp.SendKeys(chromedp.CSS(`#invite-email`), "guest@example.com"),
			chromedp.Click(chromedp.CSS(`[data-testid=send-invite]`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid=invites]`)),
		)...)...), "invite")

	// The invitation waits in the outbox (no SMTP here), and the page says
	// so, with the link to pass on.
	require.NoError(t, chromedp.Do(owner, chromedp.WaitVisible(chromedp.CSS(`[data-testid=invite-kept] [data-testid=invite-link]`))), "see the link")
	var body string
	require.NoError(t, db.Get(context.Background(), a.DB, &body, `SELECT body FROM outbox WHERE to_address = ? ORDER BY id DESC LIMIT 1`, "guest@example.com"))
	link := inviteLink.FindString(body)
	require.NotEmpty(t, link, "the mail links to the invitation: %q", body)

	// The guest opens it, signs up from it, comes back and accepts.
	require.NoError(t, chromedp.Do(guest,
		chromedp.Navigate(a.URL+link),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=invitation]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=invite-signup]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=signup-form]`)),
		waitFor(`document.querySelector('[data-testid=signup-form] input[name=email]').value === 'guest@example.com'`), // filled in
		chromedp.SendKeys(chromedp.CSS(`[data-testid=signup-form] input[name=password]`), password),
		chromedp.Click(chromedp.CSS(`[data-testid=signup-form] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=accept-invite]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=accept-invite]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=dashboard]`)),
		waitFor(`document.querySelector('#team-switch option[selected]').textContent.indexOf("owner's team") >= 0`), // now the current team
	), "accept")

	guestUser, err := auth.UserByEmail(context.Background(), a.DB, "guest@example.com")
	require.NoError(t, err)

	// The owner makes the guest an admin.
	require.NoError(t, chromedp.Do(owner,
		chromedp.Navigate(a.URL+"/team/members"),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`[data-testid=role-select-%d]`, guestUser.ID))),
		chromedp.SetValue(chromedp.CSS(fmt.Sprintf(`[data-testid=role-select-%d]`, guestUser.ID)), "admin"),
		chromedp.Submit(chromedp.CSS(fmt.Sprintf(`[data-testid=role-select-%d]`, guestUser.ID))),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=flash]`)),
	), "change role")
	role, err := chromedp.Run(owner, chromedp.Value(chromedp.CSS(fmt.Sprintf(`[data-testid=role-select-%d]`, guestUser.ID))))
	require.NoError(t, err)
	require.Equal(t, "admin", role)

	// Both show in the audit log.
	require.NoError(t, chromedp.Do(owner,
		chromedp.Navigate(a.URL+"/team"),
		chromedp.Click(chromedp.CSS(`[data-testid=audit-link]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=audit-table]`)),
	), "audit log")
	actions, err := chromedp.Run(owner, chromedp.Text(chromedp.CSS(`[data-testid=audit-table]`)))
	require.NoError(t, err)
	for _, want := range []string{"invite.create", "invite.accept", "member.role_change"} {
		require.True(t, strings.Contains(actions, want), "the audit log shows %s:\n%s", want, actions)
	}
}
