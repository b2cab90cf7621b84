// Package access decides what an actor (a user or an API key, acting in one
// team with one role) may do. Services check it, so that the HTML pages and
// the JSON API cannot disagree.
package access

import (
	"errors"

	"github.com/nofxhq/nofx/internal/teams"
)

// ErrForbidden is returned when the actor's role does not allow an action on
// a resource of its own team. (Another team's resource is ErrNotFound.)
var ErrForbidden = errors.New("your role in this team does not allow that")

// Permission names one action in one area.
type Permission string

// The permissions, by area.
const (
	TeamRead          Permission = "team:read"
	TeamUpdate        Permission = "team:update"
	TeamDelete        Permission = "team:delete"
	MembersRead       Permission = "members:read"
	MembersInvite     Permission = "members:invite"
	MembersUpdate     Permission = "members:update"
	MembersRemove     Permission = "members:remove"
	OwnershipTransfer Permission = "team:transfer"
	RunsRead          Permission = "runs:read"
	RunsCreate        Permission = "runs:create"
	RunsCancel        Permission = "runs:cancel"
	RunsRetry         Permission = "runs:retry"
	RunsApprove       Permission = "runs:approve"
	TemplatesRead     Permission = "templates:read"
	TemplatesWrite    Permission = "templates:write"
	TemplatesDelete   Permission = "templates:delete"
	TemplatesDeploy   Permission = "templates:deploy"
	BillingRead       Permission = "billing:read"
	BillingManage     Permission = "billing:manage"
	AuditRead         Permission = "audit:read"
	APIKeysManage     Permission = "apikeys:manage"
)

// ownerOnly are the permissions an admin lacks.
var ownerOnly = map[Permission]bool{TeamDelete: true, BillingManage: true, OwnershipTransfer: true}

// memberCan are the permissions a member has: reading everything, and
// creating, cancelling and retrying runs and writing templates.
var memberCan = map[Permission]bool{
	TeamRead: true, MembersRead: true, RunsRead: true, TemplatesRead: true, BillingRead: true, AuditRead: true,
	RunsCreate: true, RunsCancel: true, RunsRetry: true, TemplatesWrite: true,
}

// viewerCan are the permissions a viewer has: reading.
var viewerCan = map[Permission]bool{
	TeamRead: true, MembersRead: true, RunsRead: true, TemplatesRead: true, BillingRead: true, AuditRead: true,
}

// Allowed reports whether role grants perm.
func Allowed(role teams.Role, perm Permission) bool {
	switch role {
	case teams.RoleOwner:
		return true
	case teams.RoleAdmin:
		return !ownerOnly[perm]
	case teams.RoleMember:
		return memberCan[perm]
	case teams.RoleViewer:
		return viewerCan[perm]
	}
	return false
}

// Actor is who acts: a user or an API key, in one team, with a role there.
type Actor struct {
	UserID   int64 // 0 for an API key
	APIKeyID int64 // 0 for a user
	TeamID   int64
	Role     teams.Role
}

// Can returns ErrForbidden unless the actor's role grants perm.
func (a Actor) Can(perm Permission) error {
	if Allowed(a.Role, perm) {
		return nil
	}
	return ErrForbidden
}
