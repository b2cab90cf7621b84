package pages

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/billing"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/invites"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/validation"
	view "github.com/nofxhq/nofx/views/invites"
	"github.com/nofxhq/nofx/web/httpx"
)

func (s *Pages) InvitesPage(c echo.Context) error {
	return s.renderInvites(c, http.StatusOK, view.Form{}, nil)
}

// renderInvites shows the invitations page with form, which may carry what
// was typed and its problems, and kept, an invitation whose email stayed
// in the outbox, with its link.
func (s *Pages) renderInvites(c echo.Context, status int, form view.Form, kept *invites.Invite) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	list, err := s.invites.List(c.Request().Context(), a)
	if err != nil {
		return err
	}
	var roles []teams.Role
	for _, r := range grantableRoles(a.Role) {
		if r != teams.RoleOwner {
			roles = append(roles, r)
		}
	}
	d := view.Data{Team: *httpx.Who(c).Team, Invites: list, Now: db.Now(), Roles: roles, Form: form, Kept: kept}
	return s.Render(c, status, Page{Title: "Invitations", Nav: "team", Content: view.Page(d)})
}

func (s *Pages) CreateInvite(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	form := view.Form{Email: c.FormValue("email"), Role: c.FormValue("role")}
	c = httpx.InviteLinks(c, s.baseURL(c))
	inv, err := s.invites.Invite(c.Request().Context(), a, form.Email, teams.Role(form.Role))
	var verrs validation.Errors
	if errors.As(err, &verrs) {
		form.Errors = verrs
		return s.renderInvites(c, http.StatusUnprocessableEntity, form, nil)
	}
	var overPlan *billing.LimitError
	if errors.As(err, &overPlan) {
		form.Limit = overPlan.Error()
		return s.renderInvites(c, http.StatusPaymentRequired, form, nil)
	}
	if errors.Is(err, invites.ErrNotSent) {
		s.log.Error("invitation email not sent", "error", err)
		s.addFlash(c, "error", "The invitation to "+inv.Email+" was saved, but its email could not be sent. Try Resend later.")
		return redirect(c, "/team/invites")
	}
	if err != nil {
		return err
	}
	if inv.Kept {
		return s.renderInvites(c, http.StatusOK, view.Form{}, &inv) // the link, shown once
	}
	s.addFlash(c, "success", "Invitation sent to "+inv.Email+".")
	return redirect(c, "/team/invites")
}

func (s *Pages) RevokeInvite(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	id, err := httpx.PathID(c, "id")
	if err != nil {
		return err
	}
	if err := s.invites.Revoke(c.Request().Context(), a, id); err != nil {
		return err
	}
	s.addFlash(c, "success", "Invitation revoked: its link no longer works.")
	return redirect(c, "/team/invites")
}

func (s *Pages) ResendInvite(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	id, err := httpx.PathID(c, "id")
	if err != nil {
		return err
	}
	c = httpx.InviteLinks(c, s.baseURL(c))
	inv, err := s.invites.Resend(c.Request().Context(), a, id)
	if errors.Is(err, invites.ErrNotSent) {
		s.log.Error("invitation email not sent", "error", err)
		s.addFlash(c, "error", "A new link was made, but its email could not be sent. Try again later.")
		return redirect(c, "/team/invites")
	}
	if err != nil {
		return err
	}
	if inv.Kept {
		return s.renderInvites(c, http.StatusOK, view.Form{}, &inv)
	}
	s.addFlash(c, "success", "A new invitation link was sent to "+inv.Email+"; the old one no longer works.")
	return redirect(c, "/team/invites")
}

// inviteProblem renders the page for an invitation link that cannot be
// used, when err says why; it returns false for other errors.
func (s *Pages) inviteProblem(c echo.Context, err error) (bool, error) {
	var status int
	var title, msg string
	switch {
	case errors.Is(err, invites.ErrUnknown):
		status, title, msg = http.StatusNotFound, "Invitation not found", "This invitation link is not valid. Check that you copied all of it, or ask for a new invitation."
	case errors.Is(err, invites.ErrExpired):
		status, title, msg = http.StatusGone, "Invitation expired", "This invitation has expired. Ask the person who invited you to send it again."
	case errors.Is(err, invites.ErrRevoked):
		status, title, msg = http.StatusGone, "Invitation withdrawn", "This invitation was withdrawn or replaced by a newer one. Use the newest email you received, or ask for a new invitation."
	case errors.Is(err, invites.ErrUsed):
		status, title, msg = http.StatusGone, "Invitation already used", "This invitation has already been accepted. Each link works once."
	default:
		return false, nil
	}
	return true, s.Render(c, status, Page{Title: title, Content: view.Unusable(title, msg)})
}

// wrongEmailMessage explains why a signed-in user cannot accept.
func wrongEmailMessage(inv invites.Invite, email string) string {
	return "This invitation is for " + inv.Email + ", but you are signed in as " + email +
		". Log out and sign in (or sign up) with " + inv.Email + " to accept it."
}

// InvitationPage is where an invitation link leads: public, it shows the
// team and the role, and how to accept.
func (s *Pages) InvitationPage(c echo.Context) error {
	ctx := c.Request().Context()
	token := c.Param("token")
	inv, err := s.invites.Lookup(ctx, token)
	if handled, rerr := s.inviteProblem(c, err); handled {
		return rerr
	}
	if err != nil {
		return err
	}
	show := view.Show{Invite: inv, Token: token}
	if u := httpx.Who(c).User; u != nil {
		show.SignedInAs = u.Email
		switch {
		case auth.NormalizeEmail(u.Email) != inv.Email:
			show.Problem = wrongEmailMessage(inv, u.Email)
		default:
			if _, err := s.members.Membership(ctx, inv.TeamID, u.ID); err == nil {
				show.Problem = "You are already a member of " + inv.TeamName + "."
			} else if !errors.Is(err, db.ErrNotFound) {
				return err
			}
		}
	}
	return s.Render(c, http.StatusOK, Page{Title: "Join " + inv.TeamName, Content: view.Invitation(show)})
}

// AcceptInvite makes the signed-in user a member of the invitation's team.
func (s *Pages) AcceptInvite(c echo.Context) error {
	u := httpx.Who(c).User
	if u == nil {
		return echo.NewHTTPError(http.StatusUnauthorized, "Log in first.")
	}
	inv, err := s.invites.Accept(c.Request().Context(), c.Param("token"), u.ID)
	if handled, rerr := s.inviteProblem(c, err); handled {
		return rerr
	}
	switch {
	case errors.Is(err, invites.ErrWrongEmail):
		return echo.NewHTTPError(http.StatusForbidden, "This invitation is for another email address. Sign in with the address it was sent to.")
	case errors.Is(err, invites.ErrAlreadyMember):
		s.addFlash(c, "info", "You are already a member of that team.")
		return redirect(c, "/runs")
	case err != nil:
		return err
	}
	s.log.Info("invitation accepted", "user_id", u.ID, "team_id", inv.TeamID, "role", inv.Role)
	if err := s.auth.SwitchTeam(c.Request().Context(), httpx.Who(c).SessionToken, u.ID, inv.TeamID); err != nil {
		return err
	}
	s.addFlash(c, "success", "You joined "+inv.TeamName+" as "+string(inv.Role)+"; it is now your current team.")
	return redirect(c, "/runs")
}
