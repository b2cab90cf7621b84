package web_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/apikeys"
	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/mail"
	"github.com/nofxhq/nofx/internal/teams"
)

// apiMember is a member as the API returns it.
type apiMember struct {
	UserID   int64     `json:"user_id"`
	Email    string    `json:"email"`
	Name     string    `json:"name"`
	Role     string    `json:"role"`
	JoinedAt time.Time `json:"joined_at"`
}

// apiInvite is an invitation as the API returns it.
type apiInvite struct {
	ID        int64     `json:"id"`
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	InvitedBy *int64    `json:"invited_by"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	Status    string    `json:"status"`
}

// apiInviteSent is the answer to creating or resending an invitation.
type apiInviteSent struct {
	Invite    apiInvite `json:"invite"`
	EmailSent bool      `json:"email_sent"`
}

// membersAPI is a team with a user in each role, and API keys of the team
// as its owner, an admin and a viewer.
type membersAPI struct {
	a       *app
	team    int64
	users   map[teams.Role]int64
	owner   *apiClient
	admin   *apiClient
	adminID int64 // the admin key's id
	viewer  *apiClient
}

func setupMembersAPI(t *testing.T) membersAPI {
	t.Helper()
	ctx := context.Background()
	a := newApp(t)
	f := membersAPI{a: a, users: map[teams.Role]int64{}}
	f.owner = a.newAPIClient("owner@acme.test", teams.RoleOwner)
	for _, role := range teams.Roles {
		email := string(role) + "@acme.test"
		if role != teams.RoleOwner {
			a.joinTeam("owner@acme.test", email, role)
		}
		u, err := auth.UserByEmail(ctx, a.DB, email)
		require.NoError(t, err)
		f.users[role] = u.ID
	}
	ms, err := teams.ForUser(ctx, a.DB, f.users[teams.RoleOwner])
	require.NoError(t, err)
	f.team = ms[0].ID
	key, secret, err := apikeys.Create(ctx, a.DB, f.team, "admin bot", teams.RoleAdmin, f.users[teams.RoleOwner], nil)
	require.NoError(t, err)
	f.admin, f.adminID = &apiClient{t: t, app: a, key: secret}, key.ID
	_, secret, err = apikeys.Create(ctx, a.DB, f.team, "viewer bot", teams.RoleViewer, f.users[teams.RoleOwner], nil)
	require.NoError(t, err)
	f.viewer = &apiClient{t: t, app: a, key: secret}
	return f
}

// audited returns the team's audit entries with action, newest first.
func (f membersAPI) audited(t *testing.T, action string) []audit.Entry {
	t.Helper()
	entries, _, err := audit.List(context.Background(), f.a.DB, f.team, audit.Filter{Action: action})
	require.NoError(t, err)
	return entries
}

func (f membersAPI) members(t *testing.T) []apiMember {
	t.Helper()
	res := f.viewer.do(http.MethodGet, "/api/v1/members", "")
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	return decode[struct {
		Members []apiMember `json:"members"`
	}](t, res).Members
}

func memberPath(userID int64, action string) string {
	return fmt.Sprintf("/api/v1/members/%d/%s", userID, action)
}

// requireAPIError checks status, the error code and, when field is set,
// that the error names that field.
func requireAPIError(t *testing.T, res response, status int, code, field string) {
	t.Helper()
	require.Equal(t, status, res.StatusCode, res.Body)
	require.Equal(t, code, apiErrorCode(t, res), res.Body)
	if field != "" {
		require.Contains(t, apiErrorFields(t, res), field, res.Body)
	}
}

func TestAPIMembers(t *testing.T) {
	t.Parallel()
	f := setupMembersAPI(t)
	member, viewer, owner := f.users[teams.RoleMember], f.users[teams.RoleViewer], f.users[teams.RoleOwner]

	list := f.members(t)
	require.Len(t, list, 4)
	require.Equal(t, apiMember{UserID: owner, Email: "owner@acme.test", Role: "owner", JoinedAt: list[0].JoinedAt}, list[0], "the owner first")
	require.False(t, list[0].JoinedAt.IsZero())
	require.Contains(t, f.viewer.do(http.MethodGet, "/api/v1/members", "").Body, `"joined_at"`)

	// An admin key changes a role; the answer is the member as it is now.
	res := f.admin.do(http.MethodPost, memberPath(member, "role"), `{"role":"viewer"}`)
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	changed := decode[struct {
		Member apiMember `json:"member"`
	}](t, res).Member
	require.Equal(t, member, changed.UserID)
	require.Equal(t, "member@acme.test", changed.Email)
	require.Equal(t, "viewer", changed.Role)
	entries := f.audited(t, "member.role_change")
	require.Len(t, entries, 1)
	require.Equal(t, "admin bot", entries[0].Actor, "the key is the actor")
	require.NotNil(t, entries[0].ActorKeyID)
	require.Equal(t, f.adminID, *entries[0].ActorKeyID)
	require.Equal(t, "member@acme.test", entries[0].Target)
	res = f.admin.do(http.MethodPost, memberPath(member, "role"), `{"role":"viewer"}`)
	require.Equal(t, http.StatusOK, res.StatusCode, "the same role again is no change: %s", res.Body)
	require.Len(t, f.audited(t, "member.role_change"), 1)

	// What the service refuses, with the field it names.
	for _, tc := range []struct {
		name   string
		c      *apiClient
		path   string
		body   string
		status int
		code   string
		field  string
	}{
		{"the owner is not demoted", f.admin, memberPath(owner, "role"), `{"role":"member"}`, http.StatusUnprocessableEntity, "validation_failed", "user_id"},
		{"nobody becomes owner this way", f.owner, memberPath(member, "role"), `{"role":"owner"}`, http.StatusUnprocessableEntity, "validation_failed", "role"},
		{"an unknown role", f.admin, memberPath(member, "role"), `{"role":"god"}`, http.StatusUnprocessableEntity, "validation_failed", "role"},
		{"no role", f.admin, memberPath(member, "role"), `{}`, http.StatusUnprocessableEntity, "validation_failed", "role"},
		{"the owner is not removed", f.admin, memberPath(owner, "remove"), ``, http.StatusUnprocessableEntity, "validation_failed", "user_id"},
		{"a viewer changes no role", f.viewer, memberPath(member, "role"), `{"role":"admin"}`, http.StatusForbidden, "forbidden", ""},
		{"a viewer removes nobody", f.viewer, memberPath(member, "remove"), ``, http.StatusForbidden, "forbidden", ""},
		{"malformed JSON", f.admin, memberPath(member, "role"), `{"role":`, http.StatusBadRequest, "bad_request", ""},
		{"an unknown field", f.admin, memberPath(member, "role"), `{"role":"admin","user_id":1}`, http.StatusBadRequest, "bad_request", ""},
		{"an unknown user", f.admin, memberPath(999999, "role"), `{"role":"admin"}`, http.StatusNotFound, "not_found", ""},
		{"a malformed user", f.admin, "/api/v1/members/abc/remove", ``, http.StatusNotFound, "not_found", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireAPIError(t, tc.c.do(http.MethodPost, tc.path, tc.body), tc.status, tc.code, tc.field)
		})
	}

	// Another team's owner finds nobody here.
	other := f.a.newAPIClient("owner@other.test", teams.RoleOwner)
	requireAPIError(t, other.do(http.MethodPost, memberPath(viewer, "role"), `{"role":"admin"}`), http.StatusNotFound, "not_found", "")
	requireAPIError(t, other.do(http.MethodPost, memberPath(viewer, "remove"), ``), http.StatusNotFound, "not_found", "")
	otherList := decode[struct {
		Members []apiMember `json:"members"`
	}](t, other.do(http.MethodGet, "/api/v1/members", ""))
	require.Len(t, otherList.Members, 1, "a key lists its own team")

	// Nothing above changed a role or removed anyone.
	roles := map[int64]string{}
	for _, m := range f.members(t) {
		roles[m.UserID] = m.Role
	}
	require.Equal(t, map[int64]string{owner: "owner", f.users[teams.RoleAdmin]: "admin", member: "viewer", viewer: "viewer"}, roles)

	// An admin key removes a member: 204, once.
	res = f.admin.do(http.MethodPost, memberPath(viewer, "remove"), "")
	require.Equal(t, http.StatusNoContent, res.StatusCode, res.Body)
	require.Empty(t, res.Body)
	require.Len(t, f.members(t), 3)
	require.Len(t, f.audited(t, "member.remove"), 1)
	requireAPIError(t, f.admin.do(http.MethodPost, memberPath(viewer, "remove"), ""), http.StatusNotFound, "not_found", "")
}

// failingMailer refuses every message, as an SMTP server that is down.
type failingMailer struct{}

func (failingMailer) Send(context.Context, mail.Message) error {
	return errors.New("smtp: connection refused")
}

func TestAPIInvites(t *testing.T) {
	t.Parallel()
	f := setupMembersAPI(t)

	// An admin key invites; the link goes by mail (here the outbox), never
	// in the answer.
	before := time.Now()
	res := f.admin.do(http.MethodPost, "/api/v1/invites", `{"email":"New@Example.com","role":"member"}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	created := decode[apiInviteSent](t, res)
	inv := created.Invite
	require.True(t, created.EmailSent)
	require.Positive(t, inv.ID)
	require.Equal(t, "new@example.com", inv.Email)
	require.Equal(t, "member", inv.Role)
	require.Equal(t, "pending", inv.Status)
	require.Nil(t, inv.InvitedBy, "an API key invited, not a user")
	require.WithinDuration(t, inv.CreatedAt.Add(7*24*time.Hour), inv.ExpiresAt, time.Second)
	require.WithinDuration(t, before, inv.CreatedAt, time.Minute)
	link := invitePath(t, f.a, "new@example.com")
	token := strings.TrimPrefix(link, "/invites/")
	require.NotContains(t, res.Body, token, "the token is only in the mail")
	require.Contains(t, res.Body, `"invited_by":null`)
	entries := f.audited(t, "invite.create")
	require.Len(t, entries, 1)
	require.Equal(t, "admin bot", entries[0].Actor)
	require.Equal(t, "new@example.com", entries[0].Target)

	res = f.admin.do(http.MethodGet, "/api/v1/invites", "")
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	require.NotContains(t, res.Body, token)
	list := decode[struct {
		Invites []apiInvite `json:"invites"`
	}](t, res).Invites
	require.Equal(t, []apiInvite{inv}, list)

	for _, tc := range []struct {
		name   string
		c      *apiClient
		body   string
		status int
		code   string
		field  string
	}{
		{"a bad email", f.admin, `{"email":"nope","role":"member"}`, http.StatusUnprocessableEntity, "validation_failed", "email"},
		{"no role", f.admin, `{"email":"x@example.com"}`, http.StatusUnprocessableEntity, "validation_failed", "role"},
		{"an owner", f.owner, `{"email":"x@example.com","role":"owner"}`, http.StatusUnprocessableEntity, "validation_failed", "role"},
		{"already a member", f.admin, `{"email":"viewer@acme.test","role":"member"}`, http.StatusUnprocessableEntity, "validation_failed", "email"},
		{"malformed JSON", f.admin, `email=x@example.com`, http.StatusBadRequest, "bad_request", ""},
		{"an unknown field", f.admin, `{"email":"x@example.com","role":"member","token":"t"}`, http.StatusBadRequest, "bad_request", ""},
		{"a viewer invites nobody", f.viewer, `{"email":"x@example.com","role":"viewer"}`, http.StatusForbidden, "forbidden", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireAPIError(t, tc.c.do(http.MethodPost, "/api/v1/invites", tc.body), tc.status, tc.code, tc.field)
		})
	}
	requireAPIError(t, f.viewer.do(http.MethodGet, "/api/v1/invites", ""), http.StatusForbidden, "forbidden", "")
	for _, action := range []string{"revoke", "resend"} {
		requireAPIError(t, f.viewer.do(http.MethodPost, fmt.Sprintf("/api/v1/invites/%d/%s", inv.ID, action), ""), http.StatusForbidden, "forbidden", "")
	}

	// Another team's owner finds no such invitation.
	other := f.a.newAPIClient("owner@other.test", teams.RoleOwner)
	for _, action := range []string{"revoke", "resend"} {
		requireAPIError(t, other.do(http.MethodPost, fmt.Sprintf("/api/v1/invites/%d/%s", inv.ID, action), ""), http.StatusNotFound, "not_found", "")
	}
	requireAPIError(t, f.admin.do(http.MethodPost, "/api/v1/invites/999999/resend", ""), http.StatusNotFound, "not_found", "")
	requireAPIError(t, f.admin.do(http.MethodPost, "/api/v1/invites/abc/revoke", ""), http.StatusNotFound, "not_found", "")

	// Resend mails a new link and the old one stops working.
	res = f.admin.do(http.MethodPost, fmt.Sprintf("/api/v1/invites/%d/resend", inv.ID), "")
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	resent := decode[apiInviteSent](t, res)
	require.True(t, resent.EmailSent)
	require.Equal(t, inv.ID, resent.Invite.ID)
	require.Equal(t, "pending", resent.Invite.Status)
	require.False(t, resent.Invite.ExpiresAt.Before(inv.ExpiresAt))
	newLink := invitePath(t, f.a, "new@example.com")
	require.NotEqual(t, link, newLink)
	require.NotContains(t, res.Body, strings.TrimPrefix(newLink, "/invites/"))
	require.Equal(t, http.StatusNotFound, f.a.client().get(link).StatusCode, "the old link is no longer known")
	require.Len(t, f.audited(t, "invite.resend"), 1)

	// Revoke: 204, gone from the list, and it cannot be revoked or resent again.
	res = f.admin.do(http.MethodPost, fmt.Sprintf("/api/v1/invites/%d/revoke", inv.ID), "")
	require.Equal(t, http.StatusNoContent, res.StatusCode, res.Body)
	require.Empty(t, res.Body)
	require.Contains(t, f.admin.do(http.MethodGet, "/api/v1/invites", "").Body, `{"invites":[]}`)
	require.Equal(t, http.StatusGone, f.a.client().get(newLink).StatusCode)
	require.Len(t, f.audited(t, "invite.revoke"), 1)
	for _, action := range []string{"revoke", "resend"} {
		requireAPIError(t, f.admin.do(http.MethodPost, fmt.Sprintf("/api/v1/invites/%d/%s", inv.ID, action), ""), http.StatusNotFound, "not_found", "")
	}
}

func TestAPIInviteEmailNotSent(t *testing.T) {
	t.Parallel()
	f := setupMembersAPI(t)
	f.a.App.Invites.Mailer = failingMailer{}

	// The invitation is saved, as on the page: the answer says its email
	// was not sent, and resending can try again.
	res := f.admin.do(http.MethodPost, "/api/v1/invites", `{"email":"late@example.com","role":"viewer"}`)
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	created := decode[apiInviteSent](t, res)
	require.False(t, created.EmailSent)
	require.Equal(t, "pending", created.Invite.Status)

	res = f.admin.do(http.MethodPost, fmt.Sprintf("/api/v1/invites/%d/resend", created.Invite.ID), "")
	require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
	require.False(t, decode[apiInviteSent](t, res).EmailSent)

	list := decode[struct {
		Invites []apiInvite `json:"invites"`
	}](t, f.admin.do(http.MethodGet, "/api/v1/invites", ""))
	require.Len(t, list.Invites, 1)
}
