package pages

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/validation"
	"github.com/nofxhq/nofx/views/team"
	"github.com/nofxhq/nofx/web/httpx"
)

// MembersPage lists the current team's members with the actions the
// viewer's role allows.
func (s *Pages) MembersPage(c echo.Context) error {
	return s.renderMembers(c, http.StatusOK, team.MembersData{})
}

// renderMembers shows the members page; d carries a form that came back.
func (s *Pages) renderMembers(c echo.Context, status int, d team.MembersData) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	m := httpx.Who(c).Team
	if d.Members, err = s.members.List(c.Request().Context(), a); err != nil {
		return err
	}
	d.Team, d.Me = *m, a.UserID
	d.CanUpdate = access.Allowed(a.Role, access.MembersUpdate)
	d.CanRemove = access.Allowed(a.Role, access.MembersRemove)
	d.CanTransfer = access.Allowed(a.Role, access.OwnershipTransfer)
	d.CanDelete = access.Allowed(a.Role, access.TeamDelete)
	return s.Render(c, status, Page{Title: "Members · " + m.Name, Nav: "team", Content: team.Members(d)})
}

// memberAction runs op on the member named in the path (the route has
// checked the role); validation errors come back on the page with 422.
func (s *Pages) memberAction(c echo.Context, form string, op func(a access.Actor, userID int64) error) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	userID, err := httpx.PathID(c, "user")
	if err != nil {
		return err
	}
	if err := op(a, userID); err != nil {
		var verrs validation.Errors
		if errors.As(err, &verrs) {
			return s.renderMembers(c, http.StatusUnprocessableEntity, team.MembersData{Form: form, ErrorUser: userID, Errors: verrs})
		}
		return err
	}
	return nil
}

// ChangeMemberRole gives a member another role.
func (s *Pages) ChangeMemberRole(c echo.Context) error {
	done := false
	err := s.memberAction(c, "role", func(a access.Actor, userID int64) error {
		if err := s.members.ChangeRole(c.Request().Context(), a, userID, c.FormValue("role")); err != nil {
			return err
		}
		done = true
		return nil
	})
	if err != nil || !done {
		return err
	}
	s.addFlash(c, "success", "The member's role is changed.")
	return redirect(c, "/team/members")
}

// RemoveMember takes a member out of the team.
func (s *Pages) RemoveMember(c echo.Context) error {
	done := false
	err := s.memberAction(c, "remove", func(a access.Actor, userID int64) error {
		if err := s.members.Remove(c.Request().Context(), a, userID); err != nil {
			return err
		}
		done = true
		return nil
	})
	if err != nil || !done {
		return err
	}
	s.addFlash(c, "success", "The member is removed from the team.")
	return redirect(c, "/team/members")
}

// LeaveTeam takes the signed-in user out of the current team, which the
// form names, and moves them to another of their teams.
func (s *Pages) LeaveTeam(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	if c.FormValue("team_id") != strconv.FormatInt(a.TeamID, 10) {
		return s.renderMembers(c, http.StatusUnprocessableEntity, team.MembersData{Form: "leave",
			Errors: validation.Errors{"team_id": "Use the Leave button on this team's members page."}})
	}
	err = s.members.Leave(c.Request().Context(), a)
	var verrs validation.Errors
	if errors.As(err, &verrs) {
		return s.renderMembers(c, http.StatusUnprocessableEntity, team.MembersData{Form: "leave", Errors: verrs})
	}
	if err != nil {
		return err
	}
	s.addFlash(c, "success", "You left "+httpx.Who(c).Team.Name+".")
	return redirect(c, "/runs")
}

// TransferOwnership makes another member the owner; the owner becomes an admin.
func (s *Pages) TransferOwnership(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	to, _ := strconv.ParseInt(c.FormValue("user_id"), 10, 64) // a bad value is 0: "choose a member"
	err = s.members.TransferOwnership(c.Request().Context(), a, to)
	var verrs validation.Errors
	if errors.As(err, &verrs) {
		return s.renderMembers(c, http.StatusUnprocessableEntity, team.MembersData{Form: "transfer", Errors: verrs})
	}
	if err != nil {
		return err
	}
	s.addFlash(c, "success", "Ownership is transferred; you are now an admin of this team.")
	return redirect(c, "/team/members")
}

// DeleteTeam deletes the current team once its name is typed.
func (s *Pages) DeleteTeam(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	confirm := c.FormValue("confirm")
	err = s.members.Delete(c.Request().Context(), a, confirm)
	var verrs validation.Errors
	if errors.As(err, &verrs) {
		return s.renderMembers(c, http.StatusUnprocessableEntity, team.MembersData{Form: "delete", Errors: verrs, Confirm: confirm})
	}
	if err != nil {
		return err
	}
	s.addFlash(c, "success", "The team "+httpx.Who(c).Team.Name+" is deleted.")
	return redirect(c, "/runs")
}
