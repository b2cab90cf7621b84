package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/mail"
	"github.com/nofxhq/nofx/internal/teams"
)

var inviteLinkRE = regexp.MustCompile(`(https?://[^/\s]+)(/invites/[A-Za-z0-9_-]+)`)

// invitePath returns the path of the link in the newest outbox mail to to.
func invitePath(t *testing.T, a *app, to string) string {
	t.Helper()
	msgs, err := mail.List(context.Background(), a.DB, 100)
	require.NoError(t, err)
	for _, m := range msgs {
		if m.To == to {
			match := inviteLinkRE.FindStringSubmatch(m.Body)
			require.NotNil(t, match, "no invitation link in %q", m.Body)
			require.Equal(t, a.URL, match[1], "the link points at this site")
			return match[2]
		}
	}
	t.Fatalf("no mail to %s in the outbox", to)
	return ""
}

// inviteFixture is a team owner (the site admin) and their team.
type inviteFixture struct {
	a     *app
	owner *client
	team  teams.Membership
}

func setupInvites(t *testing.T) inviteFixture {
	t.Helper()
	a := newApp(t)
	owner := a.client()
	owner.signUp("owner@example.com", password)
	u, err := auth.UserByEmail(context.Background(), a.DB, "owner@example.com")
	require.NoError(t, err)
	ms, err := teams.ForUser(context.Background(), a.DB, u.ID)
	require.NoError(t, err)
	return inviteFixture{a: a, owner: owner, team: ms[0]}
}

// Without a mail server the email stays in the outbox, so the page shows
// the inviter its link to pass on.
func (f inviteFixture) invite(t *testing.T, email, role string) string {
	t.Helper()
	res := f.owner.submit("/team/invites", "/team/invites", url.Values{"email": {email}, "role": {role}})
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	path := invitePath(t, f.a, email)
	requireKeptLink(t, res, email, path)
	return path
}

// requireKeptLink checks that the page says no email went to email, and
// shows the link to path to copy.
func requireKeptLink(t *testing.T, res response, email, path string) {
	t.Helper()
	kept := res.Doc(t).Find(`[data-testid=invite-kept]`)
	require.Contains(t, kept.Text(), "No mail server is set up")
	require.Contains(t, kept.Find("h2").Text(), email)
	link := strings.TrimSpace(kept.Find(`[data-testid=invite-link]`).Text())
	require.True(t, strings.HasSuffix(link, path), "%q links to %s", link, path)
	require.True(t, strings.HasPrefix(link, "http"), "a whole address to send: %q", link)
	require.Equal(t, 1, kept.Find(`[data-testid=invite-link-copy]`).Length())
}

func TestInviteByEmailAndAcceptAfterSignUp(t *testing.T) {
	t.Parallel()
	f := setupInvites(t)
	ctx := context.Background()
	link := f.invite(t, "new@example.com", "admin")

	page := f.owner.get("/team/invites")
	require.Equal(t, http.StatusOK, page.StatusCode)
	require.Contains(t, page.Doc(t).Find(`[data-testid="invites"]`).Text(), "new@example.com")

	// The site admin reads the mail in the outbox.
	outbox := f.owner.get("/admin/outbox")
	require.Equal(t, http.StatusOK, outbox.StatusCode)
	require.Contains(t, outbox.Doc(t).Find(`[data-testid="outbox-body"]`).Text(), link)

	// Signed out, the link shows the team and the role, and how to sign in.
	guest := f.a.client()
	res := guest.get(link)
	require.Equal(t, http.StatusOK, res.StatusCode)
	doc := res.Doc(t)
	require.Equal(t, f.team.Name, doc.Find(`[data-testid="invite-team"]`).Text())
	require.Equal(t, "admin", doc.Find(`[data-testid="invite-role"]`).Text())
	href, _ := doc.Find(`[data-testid="invite-login"]`).Attr("href")
	require.Equal(t, "/login?"+url.Values{"next": {link}, "email": {"new@example.com"}}.Encode(), href)
	require.Equal(t, "new@example.com", guest.get(href).Doc(t).Find(`input[name=email]`).AttrOr("value", ""), "log-in has the email filled in")

	// Signing up from the link comes back to it, where it accepts.
	signupHref, _ := doc.Find(`[data-testid="invite-signup"]`).Attr("href")
	require.Equal(t, "/signup?"+url.Values{"next": {link}, "email": {"new@example.com"}}.Encode(), signupHref)
	require.Equal(t, "new@example.com", guest.get(signupHref).Doc(t).Find(`input[name=email]`).AttrOr("value", ""), "sign-up has the email filled in")
	res = guest.submit(signupHref, "/signup", url.Values{"email": {"New@Example.com"}, "password": {password}, "next": {link}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	require.Equal(t, link, res.Header.Get("Location"), "sign-up returns to the invitation")
	res = guest.get(link)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, 1, res.Doc(t).Find(`[data-testid="accept-invite"]`).Length())
	res = guest.submit(link, link+"/accept", url.Values{})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	require.Equal(t, "/runs", res.Header.Get("Location"))
	runsPage := guest.get("/runs").Doc(t)
	require.Contains(t, flashText(runsPage), "it is now your current team")
	require.Equal(t, f.team.Name, runsPage.Find(`#team-switch option[selected]`).Text(), "accepting switches to the team, as creating one does")

	u, err := auth.UserByEmail(ctx, f.a.DB, "new@example.com")
	require.NoError(t, err)
	m, err := teams.MembershipOf(ctx, f.a.DB, f.team.ID, u.ID)
	require.NoError(t, err)
	require.Equal(t, teams.RoleAdmin, m.Role)

	// The link worked once.
	res = guest.get(link)
	require.Equal(t, http.StatusGone, res.StatusCode)
	require.Contains(t, res.Doc(t).Find(`[data-testid="invite-error"]`).Text(), "already been accepted")
}

func TestInviteWrongEmailCannotAccept(t *testing.T) {
	t.Parallel()
	f := setupInvites(t)
	link := f.invite(t, "right@example.com", "member")

	other := f.a.client()
	other.signUp("wrong@example.com", password)
	res := other.get(link)
	require.Equal(t, http.StatusOK, res.StatusCode)
	doc := res.Doc(t)
	require.Contains(t, doc.Find(`[data-testid="invite-problem"]`).Text(), "right@example.com")
	require.Zero(t, doc.Find(`[data-testid="accept-invite"]`).Length())

	res = other.submit("/account", link+"/accept", url.Values{})
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	require.Contains(t, res.Body, "another email address")

	u, err := auth.UserByEmail(context.Background(), f.a.DB, "wrong@example.com")
	require.NoError(t, err)
	_, err = teams.MembershipOf(context.Background(), f.a.DB, f.team.ID, u.ID)
	require.ErrorIs(t, err, db.ErrNotFound)
}

func TestUnusableInviteLinksExplainWhy(t *testing.T) {
	t.Parallel()
	f := setupInvites(t)
	ctx := context.Background()
	guest := f.a.client()

	revoked := f.invite(t, "revoked@example.com", "viewer")
	var id int64
	require.NoError(t, db.Get(ctx, f.a.DB, &id, `SELECT id FROM invites WHERE email = ?`, "revoked@example.com"))
	res := f.owner.submit("/team/invites", fmt.Sprintf("/team/invites/%d/revoke", id), url.Values{})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)

	expired := f.invite(t, "expired@example.com", "member")
	_, err := db.Exec(ctx, f.a.DB, `UPDATE invites SET expires_at = ? WHERE email = ?`, db.Now().Add(-time.Hour), "expired@example.com")
	require.NoError(t, err)

	// Resending gives a new link; the old one stops working.
	old := f.invite(t, "resent@example.com", "member")
	require.NoError(t, db.Get(ctx, f.a.DB, &id, `SELECT id FROM invites WHERE email = ?`, "resent@example.com"))
	res = f.owner.submit("/team/invites", fmt.Sprintf("/team/invites/%d/resend", id), url.Values{})
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	fresh := invitePath(t, f.a, "resent@example.com")
	requireKeptLink(t, res, "resent@example.com", fresh)
	require.NotEqual(t, old, fresh)
	require.Equal(t, http.StatusOK, guest.get(fresh).StatusCode)

	for _, tc := range []struct {
		path   string
		status int
		says   string
	}{
		{revoked, http.StatusGone, "withdrawn"},
		{expired, http.StatusGone, "expired"},
		{old, http.StatusNotFound, "not valid"},
		{"/invites/made-up-token", http.StatusNotFound, "not valid"},
	} {
		res := guest.get(tc.path)
		require.Equal(t, tc.status, res.StatusCode, tc.path)
		require.Contains(t, strings.ToLower(res.Doc(t).Find(`[data-testid="invite-error"]`).Text()), tc.says, tc.path)
	}
}

func TestMemberCannotInvite(t *testing.T) {
	t.Parallel()
	f := setupInvites(t)
	ctx := context.Background()
	member := f.a.client()
	member.signUp("member@example.com", password)
	u, err := auth.UserByEmail(ctx, f.a.DB, "member@example.com")
	require.NoError(t, err)
	require.NoError(t, teams.AddMember(ctx, f.a.DB, f.team.ID, u.ID, teams.RoleMember))
	member.submit("/runs", "/teams/switch", url.Values{"team_id": {fmt.Sprint(f.team.ID)}})

	require.Equal(t, http.StatusForbidden, member.get("/team/invites").StatusCode)
	res := member.submit("/account", "/team/invites", url.Values{"email": {"x@example.com"}, "role": {"viewer"}})
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	msgs, err := mail.List(ctx, f.a.DB, 10)
	require.NoError(t, err)
	require.Empty(t, msgs)

	// Nobody is invited as an owner.
	res = f.owner.submit("/team/invites", "/team/invites", url.Values{"email": {"x@example.com"}, "role": {"owner"}})
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.NotEmpty(t, res.Doc(t).Find(`[data-testid="error-role"]`).Text())
}
