// Package members lists and changes who belongs to a team and with which
// role: role changes, removals, leaving, ownership transfer and deleting the
// team. It lives apart from package teams because it checks access, which
// itself depends on teams.
package members

import (
	"context"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/apikeys"
	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/validation"
)

// Service changes the memberships of the actor's team; each operation is
// one transaction with its audit row.
type Service struct {
	DB *db.DB
}

// ownerProtected is the validation error for an operation the owner is
// exempt from.
func ownerProtected(message string) error {
	return validation.Errors{"user_id": message}
}

// member returns userID's membership of teamID with the user's email, or
// db.ErrNotFound when they are not a member.
func member(ctx context.Context, q db.Queryer, teamID, userID int64) (teams.Member, error) {
	var m teams.Member
	err := db.Get(ctx, q, &m, `SELECT u.id AS user_id, u.email, u.name, m.role, m.created_at
		FROM memberships m JOIN users u ON u.id = m.user_id
		WHERE m.team_id = ? AND m.user_id = ?`, teamID, userID)
	if err != nil {
		return teams.Member{}, fmt.Errorf("members: member %d of team %d: %w", userID, teamID, err)
	}
	return m, nil
}

// List returns the members of the actor's team, the owner first.
func (s *Service) List(ctx context.Context, actor access.Actor) ([]teams.Member, error) {
	if err := actor.Can(access.MembersRead); err != nil {
		return nil, err
	}
	return teams.Members(ctx, s.DB, actor.TeamID)
}

// Get returns userID's membership of the actor's team, or db.ErrNotFound
// when they are not a member of it.
func (s *Service) Get(ctx context.Context, actor access.Actor, userID int64) (teams.Member, error) {
	if err := actor.Can(access.MembersRead); err != nil {
		return teams.Member{}, err
	}
	return member(ctx, s.DB, actor.TeamID, userID)
}

// ChangeRole gives userID the role named role in the actor's team. The
// owner's role cannot change, nobody becomes owner this way (that is
// TransferOwnership), and nobody grants a role above their own.
func (s *Service) ChangeRole(ctx context.Context, actor access.Actor, userID int64, role string) error {
	if err := actor.Can(access.MembersUpdate); err != nil {
		return err
	}
	r, err := teams.ParseRole(role)
	if err != nil {
		return validation.Errors{"role": "Choose admin, member or viewer."}
	}
	if r == teams.RoleOwner {
		return validation.Errors{"role": "A team has one owner: use “Transfer ownership” instead."}
	}
	if !actor.Role.AtLeast(r) {
		return access.ErrForbidden
	}
	return db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		m, err := member(ctx, tx, actor.TeamID, userID)
		if err != nil {
			return err
		}
		if m.Role == teams.RoleOwner {
			return ownerProtected("The owner's role cannot change; transfer ownership first.")
		}
		if m.Role == r {
			return nil
		}
		if err := db.ExecOne(ctx, tx, `UPDATE memberships SET role = ? WHERE team_id = ? AND user_id = ? AND role <> 'owner'`,
			r, actor.TeamID, userID); err != nil {
			return fmt.Errorf("members: change role of %d: %w", userID, err)
		}
		return audit.Record(ctx, tx, audit.For(actor, "member.role_change", m.Email, fmt.Sprintf("%s → %s", m.Role, r)))
	})
}

// Remove takes userID out of the actor's team and revokes the API keys they
// made there. The owner cannot be removed, and removing yourself is Leave.
func (s *Service) Remove(ctx context.Context, actor access.Actor, userID int64) error {
	if err := actor.Can(access.MembersRemove); err != nil {
		return err
	}
	if actor.UserID != 0 && userID == actor.UserID {
		return validation.Errors{"user_id": "To remove yourself, leave the team."}
	}
	return db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		m, err := member(ctx, tx, actor.TeamID, userID)
		if err != nil {
			return err
		}
		if m.Role == teams.RoleOwner {
			return ownerProtected("The owner cannot be removed; transfer ownership first.")
		}
		if err := deleteMembership(ctx, tx, actor, userID); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.For(actor, "member.remove", m.Email, "was "+string(m.Role)))
	})
}

// Leave takes the acting user out of their team and revokes the API keys
// they made there; the owner cannot leave.
func (s *Service) Leave(ctx context.Context, actor access.Actor) error {
	if actor.UserID == 0 {
		return access.ErrForbidden // an API key is not a member
	}
	return db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		m, err := member(ctx, tx, actor.TeamID, actor.UserID)
		if err != nil {
			return err
		}
		if m.Role == teams.RoleOwner {
			return ownerProtected("The owner cannot leave; transfer ownership first, or delete the team.")
		}
		if err := deleteMembership(ctx, tx, actor, actor.UserID); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.For(actor, "member.leave", m.Email, "was "+string(m.Role)))
	})
}

// deleteMembership takes userID out of the actor's team and revokes the API
// keys they made there, each with its audit entry, in tx: a key acts for
// its creator, so it goes when they go.
func deleteMembership(ctx context.Context, tx *sqlx.Tx, actor access.Actor, userID int64) error {
	err := db.ExecOne(ctx, tx, `DELETE FROM memberships WHERE team_id = ? AND user_id = ? AND role <> 'owner'`, actor.TeamID, userID)
	if err != nil {
		return fmt.Errorf("members: remove %d from team %d: %w", userID, actor.TeamID, err)
	}
	keys, err := apikeys.RevokeCreatedBy(ctx, tx, actor.TeamID, userID)
	if err != nil {
		return err
	}
	for _, k := range keys {
		summary := fmt.Sprintf("key %d; its creator left the team", k.ID)
		if err := audit.Record(ctx, tx, audit.For(actor, "api_key.revoke", k.Name, summary)); err != nil {
			return err
		}
	}
	return nil
}

// TransferOwnership makes toUserID, a member of the actor's team, its owner;
// the old owner becomes an admin. A personal team keeps its owner.
func (s *Service) TransferOwnership(ctx context.Context, actor access.Actor, toUserID int64) error {
	if err := actor.Can(access.OwnershipTransfer); err != nil {
		return err
	}
	if toUserID == 0 {
		return validation.Errors{"user_id": "Choose the member who becomes the owner."}
	}
	return db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		t, err := teams.ByID(ctx, tx, actor.TeamID)
		if err != nil {
			return err
		}
		if t.Personal {
			return validation.Errors{"user_id": "A personal team cannot change owner."}
		}
		to, err := member(ctx, tx, actor.TeamID, toUserID)
		if errors.Is(err, db.ErrNotFound) {
			return validation.Errors{"user_id": "Choose a member of this team."}
		}
		if err != nil {
			return err
		}
		if to.Role == teams.RoleOwner {
			return validation.Errors{"user_id": "That member is already the owner."}
		}
		if _, err := db.Exec(ctx, tx, `UPDATE memberships SET role = 'admin' WHERE team_id = ? AND role = 'owner'`, actor.TeamID); err != nil {
			return fmt.Errorf("members: demote owner of team %d: %w", actor.TeamID, err)
		}
		if err := db.ExecOne(ctx, tx, `UPDATE memberships SET role = 'owner' WHERE team_id = ? AND user_id = ?`, actor.TeamID, toUserID); err != nil {
			return fmt.Errorf("members: make %d owner of team %d: %w", toUserID, actor.TeamID, err)
		}
		return audit.Record(ctx, tx, audit.For(actor, "team.transfer", to.Email, "owner now "+to.Email+"; the old owner is an admin"))
	})
}

// Delete deletes the actor's team, with its memberships, runs and keys,
// once confirmName is exactly the team's name. Personal teams stay.
func (s *Service) Delete(ctx context.Context, actor access.Actor, confirmName string) error {
	if err := actor.Can(access.TeamDelete); err != nil {
		return err
	}
	return db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		t, err := teams.ByID(ctx, tx, actor.TeamID)
		if err != nil {
			return err
		}
		if t.Personal {
			return validation.Errors{"confirm": "A personal team cannot be deleted."}
		}
		if confirmName != t.Name {
			return validation.Errors{"confirm": "Type the team's name exactly to delete it."}
		}
		// The entry is written first: it names the team, which then loses
		// its row (the entry keeps its summary, its team_id becomes NULL).
		if err := audit.Record(ctx, tx, audit.For(actor, "team.delete", t.Slug, "deleted team "+t.Name)); err != nil {
			return err
		}
		if err := db.ExecOne(ctx, tx, `DELETE FROM teams WHERE id = ?`, t.ID); err != nil {
			return fmt.Errorf("members: delete team %d: %w", t.ID, err)
		}
		return nil
	})
}

// ForUser lists the teams userID belongs to, with the role held in each.
func (s *Service) ForUser(ctx context.Context, userID int64) ([]teams.Membership, error) {
	return teams.ForUser(ctx, s.DB.Reader(), userID)
}

// Membership is userID's membership of teamID; db.ErrNotFound when the
// user is not a member.
func (s *Service) Membership(ctx context.Context, teamID, userID int64) (teams.Membership, error) {
	return teams.MembershipOf(ctx, s.DB.Reader(), teamID, userID)
}
