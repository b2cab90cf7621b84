package web_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/config"
	"github.com/nofxhq/nofx/internal/teams"
)

func TestSignupPolicy(t *testing.T) {
	t.Parallel()
	countUsers := func(a *app) int {
		n, err := auth.CountUsers(context.Background(), a.DB)
		require.NoError(t, err)
		return n
	}

	t.Run("closed", func(t *testing.T) {
		t.Parallel()
		a := limited(t, func(c *config.Config) { c.Signup = config.SignupClosed })
		c := a.client()
		res := c.get("/signup")
		require.Equal(t, http.StatusForbidden, res.StatusCode)
		require.Contains(t, res.Body, "Sign-ups are closed")
		token := c.csrf("/login")
		login := c.get("/login").Doc(t)
		require.Zero(t, login.Find(`.auth-alt a[href="/signup"]`).Length(), "the log-in page does not offer sign-up")
		res = c.postForm("/signup", url.Values{"_csrf": {token}, "email": {"first@example.com"}, "password": {password}})
		require.Equal(t, http.StatusForbidden, res.StatusCode)
		require.Zero(t, countUsers(a), "not even the first account: the CLI makes it")
	})

	t.Run("invite", func(t *testing.T) {
		t.Parallel()
		a := limited(t, func(c *config.Config) { c.Signup = config.SignupInvite })
		owner := a.client()
		owner.signUp("owner@example.com", password) // the first account of an empty instance
		require.Equal(t, 1, countUsers(a))

		stranger := a.client()
		require.Equal(t, http.StatusForbidden, stranger.get("/signup").StatusCode)
		token := stranger.csrf("/login")
		res := stranger.postForm("/signup", url.Values{"_csrf": {token}, "email": {"stranger@example.com"}, "password": {password}})
		require.Equal(t, http.StatusForbidden, res.StatusCode)
		res = stranger.postForm("/signup", url.Values{"_csrf": {token}, "email": {"stranger@example.com"}, "password": {password}, "next": {"/invites/not-a-token"}})
		require.Equal(t, http.StatusForbidden, res.StatusCode, "a made-up invitation does not open sign-up")
		require.Equal(t, 1, countUsers(a))

		key := a.keyClient(a.teamOf("owner@example.com").ID, teams.RoleOwner)
		require.Equal(t, http.StatusCreated, key.do(http.MethodPost, "/api/v1/invites", `{"email":"guest@example.com","role":"member"}`).StatusCode)
		path := invitePath(t, a, "guest@example.com")
		guest := a.client()
		require.Equal(t, http.StatusOK, guest.get("/signup?next="+url.QueryEscape(path)).StatusCode)
		res = guest.submit("/signup?next="+url.QueryEscape(path), "/signup", url.Values{"email": {"guest@example.com"}, "password": {password}, "next": {path}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
		require.Equal(t, path, res.Header.Get("Location"))
		require.Equal(t, 2, countUsers(a))
	})

	t.Run("open by default", func(t *testing.T) {
		t.Parallel()
		a := limited(t, nil)
		a.client().signUp("one@example.com", password)
		a.client().signUp("two@example.com", password)
		require.Equal(t, 2, countUsers(a))
	})
}
