package api

// The JSON API of members, over the service the Members page uses.
// Ownership transfer, leaving and deleting a team stay on the pages.

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/invites"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/web/httpx"
)

// memberJSON is a team member in the API.
type memberJSON struct {
	UserID   int64      `json:"user_id"`
	Email    string     `json:"email"`
	Name     string     `json:"name"`
	Role     teams.Role `json:"role"`
	JoinedAt time.Time  `json:"joined_at"`
}

func toMemberJSON(m teams.Member) memberJSON {
	return memberJSON{UserID: m.UserID, Email: m.Email, Name: m.Name, Role: m.Role, JoinedAt: m.JoinedAt}
}

// changeRoleRequest is the body of POST /api/v1/members/{user}/role.
type changeRoleRequest struct {
	Role string `json:"role"`
}

func (s *API) ListMembers(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	list, err := s.members.List(c.Request().Context(), a)
	if err != nil {
		return err
	}
	out := make([]memberJSON, 0, len(list))
	for _, m := range list {
		out = append(out, toMemberJSON(m))
	}
	return c.JSON(http.StatusOK, membersResponse{Members: out})
}

func (s *API) ChangeMemberRole(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	userID, err := httpx.PathID(c, "user")
	if err != nil {
		return err
	}
	var req changeRoleRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	if err := s.members.ChangeRole(ctx, a, userID, req.Role); err != nil {
		return err
	}
	m, err := s.members.Get(ctx, a, userID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, memberResponse{Member: toMemberJSON(m)})
}

func (s *API) RemoveMember(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	userID, err := httpx.PathID(c, "user")
	if err != nil {
		return err
	}
	if err := s.members.Remove(c.Request().Context(), a, userID); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// inviteSent answers with inv and status once the invitation is saved: an
// email that could not be sent is logged and reported as email_sent false,
// as the page's flash does; any other error is returned.
func (s *API) inviteSent(c echo.Context, status int, inv invites.Invite, err error) error {
	sent := true
	if errors.Is(err, invites.ErrNotSent) {
		s.log.Error("invitation email not sent", "invite_id", inv.ID, "error", err)
		sent, err = false, nil
	}
	if err != nil {
		return err
	}
	return c.JSON(status, inviteResponse{Invite: toInviteJSON(inv, db.Now()), EmailSent: sent})
}
