package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/teams"
)

func TestMembersPage(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	ctx := context.Background()
	shared, err := teams.Create(ctx, a.DB, "Shared", "shared", false)
	require.NoError(t, err)
	join := func(email string, role teams.Role) (*client, int64) {
		c := a.client()
		c.signUp(email, password)
		u, err := auth.UserByEmail(ctx, a.DB, email)
		require.NoError(t, err)
		require.NoError(t, teams.AddMember(ctx, a.DB, shared.ID, u.ID, role))
		c.submit("/runs", "/teams/switch", url.Values{"team_id": {fmt.Sprint(shared.ID)}})
		return c, u.ID
	}
	owner, ownerID := join("own@example.com", teams.RoleOwner)
	admin, adminID := join("adm@example.com", teams.RoleAdmin)
	viewer, viewerID := join("view@example.com", teams.RoleViewer)
	role := func(id int64) teams.Role {
		m, err := teams.MembershipOf(ctx, a.DB, shared.ID, id)
		require.NoError(t, err)
		return m.Role
	}

	doc := owner.get("/team/members").Doc(t)
	require.Equal(t, 3, doc.Find(`[data-testid=members] tbody tr`).Length())
	require.Equal(t, 1, doc.Find(`[data-testid=delete-form]`).Length())
	require.Zero(t, viewer.get("/team/members").Doc(t).Find(`[data-testid=delete-form], [data-testid=transfer-form]`).Length())

	// Role changes: forbidden to a viewer, refused on the owner, done by an admin.
	path := fmt.Sprintf("/team/members/%d/role", adminID)
	require.Equal(t, http.StatusForbidden, viewer.submit("/team/members", path, url.Values{"role": {"viewer"}}).StatusCode)
	res := admin.submit("/team/members", fmt.Sprintf("/team/members/%d/role", ownerID), url.Values{"role": {"member"}})
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.NotEmpty(t, res.Doc(t).Find(`[data-testid=error-member]`).Text())
	res = admin.submit("/team/members", fmt.Sprintf("/team/members/%d/role", viewerID), url.Values{"role": {"member"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, teams.RoleMember, role(viewerID))
	require.Equal(t, http.StatusNotFound, admin.submit("/team/members", "/team/members/999999/role", url.Values{"role": {"member"}}).StatusCode)

	// The owner cannot leave; a confirmation that is not the name is refused.
	require.Equal(t, http.StatusUnprocessableEntity, owner.submit("/team/members", "/team/leave", url.Values{"team_id": {fmt.Sprint(shared.ID)}}).StatusCode)
	res = owner.submit("/team/members", "/team/delete", url.Values{"confirm": {"shared"}})
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.NotEmpty(t, res.Doc(t).Find(`[data-testid=error-confirm]`).Text())

	// Transfer: the admin becomes owner, the owner an admin.
	require.Equal(t, http.StatusForbidden, admin.submit("/team/members", "/team/transfer", url.Values{"user_id": {fmt.Sprint(adminID)}}).StatusCode)
	require.Equal(t, http.StatusUnprocessableEntity, owner.submit("/team/members", "/team/transfer", url.Values{}).StatusCode)
	require.Equal(t, http.StatusSeeOther, owner.submit("/team/members", "/team/transfer", url.Values{"user_id": {fmt.Sprint(adminID)}}).StatusCode)
	require.Equal(t, teams.RoleOwner, role(adminID))
	require.Equal(t, teams.RoleAdmin, role(ownerID))

	// Remove, and leave: the leaver lands in another team.
	require.Equal(t, http.StatusSeeOther, owner.submit("/team/members", fmt.Sprintf("/team/members/%d/remove", viewerID), url.Values{}).StatusCode)
	_, err = teams.MembershipOf(ctx, a.DB, shared.ID, viewerID)
	require.ErrorIs(t, err, db.ErrNotFound)
	res = owner.submit("/team/members", "/team/leave", url.Values{"team_id": {fmt.Sprint(shared.ID)}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "/runs", res.Header.Get("Location"))
	require.Equal(t, http.StatusOK, owner.get("/runs").StatusCode)

	// Delete by the new owner, typing the name.
	res = admin.submit("/team/members", "/team/delete", url.Values{"confirm": {"Shared"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	_, err = teams.ByID(ctx, a.DB, shared.ID)
	require.ErrorIs(t, err, db.ErrNotFound)
	require.Equal(t, http.StatusOK, admin.get("/runs").StatusCode, "the session moves to the user's personal team")
}
