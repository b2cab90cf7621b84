package api

// The JSON API of invitations, over the service the Invitations page uses.

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/invites"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/web/httpx"
)

// inviteJSON is an invitation in the API, never with its token.
type inviteJSON struct {
	ID        int64      `json:"id"`
	Email     string     `json:"email"`
	Role      teams.Role `json:"role"`
	InvitedBy *int64     `json:"invited_by"` // the inviting user; null when an API key invited
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	Status    string     `json:"status"` // pending, expired, accepted or revoked
}

func toInviteJSON(i invites.Invite, now time.Time) inviteJSON {
	status := "pending"
	switch {
	case i.AcceptedAt != nil:
		status = "accepted"
	case i.RevokedAt != nil:
		status = "revoked"
	case i.Expired(now):
		status = "expired"
	}
	return inviteJSON{ID: i.ID, Email: i.Email, Role: i.Role, InvitedBy: i.InvitedBy, CreatedAt: i.CreatedAt, ExpiresAt: i.ExpiresAt, Status: status}
}

// inviteResponse is an invitation just created or resent; email_sent is
// false when it was saved but its email could not be sent (resend later).
type inviteResponse struct {
	Invite    inviteJSON `json:"invite"`
	EmailSent bool       `json:"email_sent"`
}

// createInviteRequest is the body of POST /api/v1/invites.
type createInviteRequest struct {
	Email string `json:"email"`
	Role  string `json:"role"`
}

func (s *API) ListInvites(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	list, err := s.invites.List(c.Request().Context(), a)
	if err != nil {
		return err
	}
	now := db.Now()
	out := make([]inviteJSON, 0, len(list))
	for _, i := range list {
		out = append(out, toInviteJSON(i, now))
	}
	return c.JSON(http.StatusOK, invitesResponse{Invites: out})
}

func (s *API) CreateInvite(c echo.Context) error {
	a, err := httpx.Actor(c)
	if err != nil {
		return err
	}
	var req createInviteRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		return err
	}
	c = httpx.InviteLinks(c, s.baseURL(c))
	inv, err := s.invites.Invite(c.Request().Context(), a, req.Email, teams.Role(req.Role))
	return s.inviteSent(c, http.StatusCreated, inv, err)
}

func (s *API) RevokeInvite(c echo.Context) error {
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
	return c.NoContent(http.StatusNoContent)
}

func (s *API) ResendInvite(c echo.Context) error {
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
	return s.inviteSent(c, http.StatusOK, inv, err)
}
