package audit

import (
	"context"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/db"
)

// Service reads a team's audit log as its members may: the page, its
// filters and its export. (Changes write their entries with Record, in
// their own transactions.)
type Service struct {
	DB *db.DB
}

// List is ListFor on the read connections.
func (s *Service) List(ctx context.Context, a access.Actor, f Filter) ([]Entry, int64, error) {
	return ListFor(ctx, s.DB.Reader(), a, f)
}

// Actions lists the actions the actor's team's log holds, for its filter.
func (s *Service) Actions(ctx context.Context, a access.Actor) ([]string, error) {
	if err := a.Can(access.AuditRead); err != nil {
		return nil, err
	}
	return Actions(ctx, s.DB.Reader(), a.TeamID)
}
