package auth

import (
	"context"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/validation"
)

// MaxTeamNameLen is the longest team name, in characters.
const MaxTeamNameLen = 100

// slugAttempts is how many times CreateTeam starts over when another team
// takes its slug between the check and the insert (PostgreSQL only: SQLite
// transactions take the write lock when they begin).
const slugAttempts = 3

// CreateTeam creates a shared team named name with userID as its owner, in
// one transaction with its starter templates (SeedTeam) and its audit row.
//
// It lives on the auth service, next to SignUp, because both create a team
// and seed it through the SeedTeam hook: teams cannot import templates, and
// templates cannot be imported here (templates → runs → auth). Only users
// create teams: an API key acts inside one team, so callers reject keys.
func (s *Service) CreateTeam(ctx context.Context, userID int64, name string) (teams.Team, error) {
	name = strings.TrimSpace(name)
	if err := validateTeamName(name); err != nil {
		return teams.Team{}, err
	}
	var (
		team teams.Team
		err  error
	)
	for range slugAttempts {
		err = db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
			t, err := s.createTeam(ctx, tx, userID, name)
			team = t
			return err
		})
		if !db.IsUniqueViolation(err) {
			break
		}
	}
	if err != nil {
		return teams.Team{}, err
	}
	return team, nil
}

// createTeam does CreateTeam's work inside tx.
func (s *Service) createTeam(ctx context.Context, tx *sqlx.Tx, userID int64, name string) (teams.Team, error) {
	if _, err := UserByID(ctx, tx, userID); err != nil {
		return teams.Team{}, err
	}
	team, err := teams.CreateShared(ctx, tx, userID, name)
	if err != nil {
		return teams.Team{}, err
	}
	owner := access.Actor{UserID: userID, TeamID: team.ID, Role: teams.RoleOwner}
	if s.SeedTeam != nil {
		if err := s.SeedTeam(ctx, tx, team.ID, owner); err != nil {
			return teams.Team{}, err
		}
	}
	if err := audit.Record(ctx, tx, audit.For(owner, "team.create", team.Slug, "created team "+team.Name)); err != nil {
		return teams.Team{}, err
	}
	return team, nil
}

// validateTeamName checks a trimmed team name.
func validateTeamName(name string) error {
	errs := validation.Errors{}
	switch {
	case name == "":
		errs.Add("name", "Enter a name for the team.")
	case utf8.RuneCountInString(name) > MaxTeamNameLen:
		errs.Add("name", fmt.Sprintf("Use at most %d characters.", MaxTeamNameLen))
	case !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl):
		errs.Add("name", "Use a name on one line, without control characters.")
	}
	return errs.Err()
}
