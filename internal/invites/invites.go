// Package invites asks people by email to join a team with a role: each
// invitation carries a single-use random token, stored only as a hash, that
// expires after a week.
package invites

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/billing"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/mail"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/validation"
)

// TTL is how long an invitation can be accepted.
const TTL = 7 * 24 * time.Hour

// Why an invitation link cannot be used.
var (
	ErrUnknown       = errors.New("invites: no invitation has this token")
	ErrExpired       = errors.New("invites: the invitation has expired")
	ErrRevoked       = errors.New("invites: the invitation was revoked")
	ErrUsed          = errors.New("invites: the invitation was already accepted")
	ErrWrongEmail    = errors.New("invites: the invitation is for another email address")
	ErrAlreadyMember = errors.New("invites: the user is already a member of the team")
)

// ErrNotSent is returned, wrapped, when an invitation was saved but its
// email could not be sent.
var ErrNotSent = errors.New("invites: the invitation email could not be sent")

// Invite is an invitation to join a team.
type Invite struct {
	ID         int64      `db:"id"`
	TeamID     int64      `db:"team_id"`
	TeamName   string     `db:"team_name"`
	Email      string     `db:"email"`
	Role       teams.Role `db:"role"`
	InvitedBy  *int64     `db:"invited_by"`
	CreatedAt  time.Time  `db:"created_at"`
	ExpiresAt  time.Time  `db:"expires_at"`
	AcceptedAt *time.Time `db:"accepted_at"`
	AcceptedBy *int64     `db:"accepted_by"`
	RevokedAt  *time.Time `db:"revoked_at"`

	// Link and Kept, from Invite and Resend only: the invitation's link, and
	// whether its email was kept in the outbox (no mail server is set up),
	// so that the inviter must pass the link on.
	Link string `db:"-"`
	Kept bool   `db:"-"`
}

// Expired reports whether the invitation can no longer be accepted because
// of its age.
func (i Invite) Expired(now time.Time) bool { return !now.Before(i.ExpiresAt) }

// usable returns why i cannot be accepted now, or nil.
func (i Invite) usable(now time.Time) error {
	switch {
	case i.AcceptedAt != nil:
		return ErrUsed
	case i.RevokedAt != nil:
		return ErrRevoked
	case i.Expired(now):
		return ErrExpired
	}
	return nil
}

// Service creates, lists, revokes, resends and accepts invitations.
type Service struct {
	DB     *db.DB
	Mailer mail.Mailer
	// BaseURL starts the links in invitation emails (https://nofx.example.com,
	// from NOFX_BASE_URL); when empty, the request's own address carried by
	// the context (WithBaseURL) is used.
	BaseURL string
}

type baseURLKey struct{}

// WithBaseURL returns a context whose invitation links start with base.
func WithBaseURL(ctx context.Context, base string) context.Context {
	return context.WithValue(ctx, baseURLKey{}, base)
}

func (s *Service) link(ctx context.Context, token string) string {
	base := s.BaseURL
	if v, ok := ctx.Value(baseURLKey{}).(string); ok && base == "" {
		base = v
	}
	return strings.TrimSuffix(base, "/") + "/invites/" + token
}

const inviteColumns = `i.id, i.team_id, t.name AS team_name, i.email, i.role, i.invited_by, i.created_at, i.expires_at,
	i.accepted_at, i.accepted_by, i.revoked_at`

// checkRole refuses a role that is unknown, the owner's, or above the
// inviter's own.
func checkRole(errs validation.Errors, a access.Actor, role teams.Role) {
	if _, err := teams.ParseRole(string(role)); err != nil {
		errs.Add("role", "Choose admin, member or viewer.")
		return
	}
	if role == teams.RoleOwner {
		errs.Add("role", "An invitation cannot make an owner; transfer ownership after they join.")
		return
	}
	if !a.Role.AtLeast(role) {
		errs.Add("role", "You cannot invite someone with a role above your own.")
	}
}

// Invite asks email to join the actor's team with role, replacing any
// pending invitation for that address, and mails the link.
func (s *Service) Invite(ctx context.Context, a access.Actor, email string, role teams.Role) (Invite, error) {
	if err := a.Can(access.MembersInvite); err != nil {
		return Invite{}, err
	}
	email = auth.NormalizeEmail(email)
	errs := validation.Errors{}
	if !auth.ValidEmail(email) {
		errs.Add("email", "Enter an email address like name@example.com.")
	}
	checkRole(errs, a, role)
	if err := errs.Err(); err != nil {
		return Invite{}, err
	}
	token, hash, err := auth.NewToken()
	if err != nil {
		return Invite{}, err
	}
	var (
		inv Invite
		msg mail.Message
	)
	err = db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		var n int
		if err := db.Get(ctx, tx, &n, `SELECT COUNT(*) FROM memberships m JOIN users u ON u.id = m.user_id
			WHERE m.team_id = ? AND u.email = ?`, a.TeamID, email); err != nil {
			return fmt.Errorf("invites: check membership: %w", err)
		}
		if n > 0 {
			return validation.Errors{"email": "This person is already a member of the team."}
		}
		now := db.Now()
		if _, err := db.Exec(ctx, tx, `UPDATE invites SET revoked_at = ?
			WHERE team_id = ? AND email = ? AND accepted_at IS NULL AND revoked_at IS NULL`, now, a.TeamID, email); err != nil {
			return fmt.Errorf("invites: replace pending: %w", err)
		}
		if err := billing.CheckMembers(ctx, tx, a.TeamID, false); err != nil {
			return err // the plan's seats, invitations included, are taken
		}
		var invitedBy *int64
		if a.UserID != 0 {
			invitedBy = &a.UserID
		}
		var id int64
		if err := db.Get(ctx, tx, &id, `INSERT INTO invites (team_id, email, role, token_hash, invited_by, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`, a.TeamID, email, role, hash, invitedBy, now, now.Add(TTL)); err != nil {
			return fmt.Errorf("invites: create: %w", err)
		}
		var err error
		if inv, err = byID(ctx, tx, a.TeamID, id); err != nil {
			return err
		}
		if err := audit.Record(ctx, tx, audit.For(a, "invite.create", email, "invited as "+string(role))); err != nil {
			return err
		}
		if msg, err = s.message(ctx, tx, a, inv, token); err != nil {
			return err
		}
		return s.sendInTx(ctx, tx, msg)
	})
	if err != nil {
		return Invite{}, err
	}
	s.sent(ctx, &inv, token)
	return inv, s.sendAfterCommit(ctx, msg)
}

// sent fills in inv's link and whether its email stays in the outbox.
func (s *Service) sent(ctx context.Context, inv *Invite, token string) {
	_, kept := mail.OutboxOf(s.Mailer)
	inv.Link, inv.Kept = s.link(ctx, token), kept
}

// sendInTx writes msg to the outbox in tx, when the mailer is the outbox.
func (s *Service) sendInTx(ctx context.Context, tx *sqlx.Tx, msg mail.Message) error {
	if o, ok := mail.OutboxOf(s.Mailer); ok {
		return o.Write(ctx, tx, msg)
	}
	return nil
}

// sendAfterCommit sends msg through a mailer that is not the outbox.
func (s *Service) sendAfterCommit(ctx context.Context, msg mail.Message) error {
	if _, ok := mail.OutboxOf(s.Mailer); ok {
		return nil
	}
	if err := s.Mailer.Send(ctx, msg); err != nil {
		return fmt.Errorf("%w: %w", ErrNotSent, err)
	}
	return nil
}

func (s *Service) message(ctx context.Context, q db.Queryer, a access.Actor, inv Invite, token string) (mail.Message, error) {
	from := "Someone"
	if a.UserID != 0 {
		u, err := auth.UserByID(ctx, q, a.UserID)
		if err != nil {
			return mail.Message{}, fmt.Errorf("invites: inviter: %w", err)
		}
		from = u.DisplayName()
	}
	body := fmt.Sprintf(`%s invited you to join the team %q on NOFX as %s.

Accept the invitation:
%s

The link works once and expires on %s. If you did not expect this email, you can ignore it.
`, from, inv.TeamName, inv.Role, s.link(ctx, token), inv.ExpiresAt.Format("2 January 2006 15:04 MST"))
	return mail.Message{To: inv.Email, Subject: "Join " + inv.TeamName + " on NOFX", Body: body}, nil
}

func byID(ctx context.Context, q db.Queryer, teamID, id int64) (Invite, error) {
	var inv Invite
	err := db.Get(ctx, q, &inv, `SELECT `+inviteColumns+` FROM invites i JOIN teams t ON t.id = i.team_id
		WHERE i.id = ? AND i.team_id = ?`, id, teamID)
	if err != nil {
		return Invite{}, fmt.Errorf("invites: get %d: %w", id, err)
	}
	return inv, nil
}

// List returns the team's invitations that are neither accepted nor
// revoked, newest first; expired ones are included, to be resent.
func (s *Service) List(ctx context.Context, a access.Actor) ([]Invite, error) {
	if err := a.Can(access.MembersInvite); err != nil {
		return nil, err
	}
	var out []Invite
	err := db.Select(ctx, s.DB, &out, `SELECT `+inviteColumns+` FROM invites i JOIN teams t ON t.id = i.team_id
		WHERE i.team_id = ? AND i.accepted_at IS NULL AND i.revoked_at IS NULL ORDER BY i.id DESC`, a.TeamID)
	if err != nil {
		return nil, fmt.Errorf("invites: list: %w", err)
	}
	return out, nil
}

// pending returns the actor's team's invitation id when it is neither
// accepted nor revoked; otherwise (or in another team) db.ErrNotFound.
func pending(ctx context.Context, q db.Queryer, a access.Actor, id int64) (Invite, error) {
	inv, err := byID(ctx, q, a.TeamID, id)
	if err != nil {
		return Invite{}, err
	}
	if inv.AcceptedAt != nil || inv.RevokedAt != nil {
		return Invite{}, fmt.Errorf("invites: %d is no longer pending: %w", id, db.ErrNotFound)
	}
	return inv, nil
}

// Revoke withdraws a pending invitation of the actor's team.
func (s *Service) Revoke(ctx context.Context, a access.Actor, id int64) error {
	if err := a.Can(access.MembersInvite); err != nil {
		return err
	}
	return db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		inv, err := pending(ctx, tx, a, id)
		if err != nil {
			return err
		}
		if err := db.ExecOne(ctx, tx, `UPDATE invites SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL AND accepted_at IS NULL`,
			db.Now(), id); err != nil {
			return fmt.Errorf("invites: revoke %d: %w", id, err)
		}
		return audit.Record(ctx, tx, audit.For(a, "invite.revoke", inv.Email, "revoked the invitation as "+string(inv.Role)))
	})
}

// Resend gives a pending invitation a new token and a new week, and mails
// the new link; the old link stops working.
func (s *Service) Resend(ctx context.Context, a access.Actor, id int64) (Invite, error) {
	if err := a.Can(access.MembersInvite); err != nil {
		return Invite{}, err
	}
	token, hash, err := auth.NewToken()
	if err != nil {
		return Invite{}, err
	}
	var (
		inv Invite
		msg mail.Message
	)
	err = db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		var err error
		if inv, err = pending(ctx, tx, a, id); err != nil {
			return err
		}
		errs := validation.Errors{}
		checkRole(errs, a, inv.Role)
		if err := errs.Err(); err != nil {
			return err
		}
		inv.ExpiresAt = db.Now().Add(TTL)
		if err := db.ExecOne(ctx, tx, `UPDATE invites SET token_hash = ?, expires_at = ? WHERE id = ?`, hash, inv.ExpiresAt, id); err != nil {
			return fmt.Errorf("invites: resend %d: %w", id, err)
		}
		if err := audit.Record(ctx, tx, audit.For(a, "invite.resend", inv.Email, "sent a new link")); err != nil {
			return err
		}
		if msg, err = s.message(ctx, tx, a, inv, token); err != nil {
			return err
		}
		return s.sendInTx(ctx, tx, msg)
	})
	if err != nil {
		return Invite{}, err
	}
	s.sent(ctx, &inv, token)
	return inv, s.sendAfterCommit(ctx, msg)
}

func byToken(ctx context.Context, q db.Queryer, token string) (Invite, error) {
	var inv Invite
	err := db.Get(ctx, q, &inv, `SELECT `+inviteColumns+` FROM invites i JOIN teams t ON t.id = i.team_id
		WHERE i.token_hash = ?`, auth.HashToken(token))
	if errors.Is(err, db.ErrNotFound) {
		return Invite{}, ErrUnknown
	}
	if err != nil {
		return Invite{}, fmt.Errorf("invites: by token: %w", err)
	}
	return inv, nil
}

// Lookup returns the invitation with token when it can still be accepted;
// otherwise ErrUnknown, ErrExpired, ErrRevoked or ErrUsed.
func (s *Service) Lookup(ctx context.Context, token string) (Invite, error) {
	inv, err := byToken(ctx, s.DB, token)
	if err != nil {
		return Invite{}, err
	}
	if err := inv.usable(db.Now()); err != nil {
		return Invite{}, err
	}
	return inv, nil
}

// Accept makes userID, whose email must be the invited one, a member of the
// invitation's team with its role. An invitation is accepted once.
func (s *Service) Accept(ctx context.Context, token string, userID int64) (Invite, error) {
	var inv Invite
	err := db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		var err error
		if inv, err = byToken(ctx, tx, token); err != nil {
			return err
		}
		now := db.Now()
		if err := inv.usable(now); err != nil {
			return err
		}
		user, err := auth.UserByID(ctx, tx, userID)
		if err != nil {
			return fmt.Errorf("invites: accepting user: %w", err)
		}
		if auth.NormalizeEmail(user.Email) != auth.NormalizeEmail(inv.Email) {
			return ErrWrongEmail
		}
		if _, err := teams.MembershipOf(ctx, tx, inv.TeamID, userID); err == nil {
			return ErrAlreadyMember
		} else if !errors.Is(err, db.ErrNotFound) {
			return err
		}
		if err := billing.CheckMembers(ctx, tx, inv.TeamID, true); err != nil {
			return err // the plan lost seats since the invitation was sent
		}
		if err := db.ExecOne(ctx, tx, `UPDATE invites SET accepted_at = ?, accepted_by = ?
			WHERE id = ? AND accepted_at IS NULL AND revoked_at IS NULL`, now, userID, inv.ID); err != nil {
			if errors.Is(err, db.ErrNotFound) {
				return ErrUsed
			}
			return fmt.Errorf("invites: accept %d: %w", inv.ID, err)
		}
		if err := teams.AddMember(ctx, tx, inv.TeamID, userID, inv.Role); err != nil {
			if db.IsUniqueViolation(err) {
				return ErrAlreadyMember
			}
			return err
		}
		a := access.Actor{UserID: userID, TeamID: inv.TeamID, Role: inv.Role}
		return audit.Record(ctx, tx, audit.For(a, "invite.accept", inv.Email, "joined as "+string(inv.Role)))
	})
	if err != nil {
		return Invite{}, err
	}
	return inv, nil
}
