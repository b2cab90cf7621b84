// Package auth owns users, their passwords and their browser sessions.
package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/teams"
	"github.com/nofxhq/nofx/internal/validation"
)

// Password length limits, in characters.
const (
	MinPasswordLen = 10
	MaxPasswordLen = 256
)

// MaxNameChars is the longest display name.
const MaxNameChars = 100

// ErrInvalidCredentials is a failed log-in: it never says which of the email
// or the password was wrong.
var ErrInvalidCredentials = errors.New("wrong email or password")

// Service signs users up and in, and keeps their sessions.
type Service struct {
	DB *db.DB
	// SeedTeam, when set, fills a new team (a personal one at sign-up, or
	// one made with CreateTeam) in the transaction that creates it (q),
	// acting as its owner: the app seeds the starter templates with it.
	// (auth cannot import templates: runs imports auth.)
	SeedTeam func(ctx context.Context, q db.Queryer, teamID int64, owner access.Actor) error
	// Hasher runs every password hash and check; nil is a default Hasher
	// shared by the process (one slot per CPU).
	Hasher *Hasher
	// Lockout refuses log-ins to an email after too many failures; the
	// zero Lockout is off.
	Lockout Lockout
	// Now is the clock; tests set it. Nil means db.Now.
	Now func() time.Time
}

// SignUp holds what a new user gives.
type SignUp struct {
	Email    string
	Name     string
	Password string
	// SiteAdmin makes the user a site admin even when others exist (the CLI).
	SiteAdmin bool
}

// NormalizeEmail trims an address and lowercases it; emails are unique
// whatever their letter case.
func NormalizeEmail(email string) string {
	return strings.ToLower(strings.TrimSpace(email))
}

// ValidEmail reports whether email (normalized) is a plain address such as
// name@example.com: no display name, a dot in the domain, at most 254 bytes.
func ValidEmail(email string) bool {
	if email == "" || len(email) > 254 {
		return false
	}
	addr, err := mail.ParseAddress(email)
	return err == nil && addr.Address == email && strings.Contains(email[strings.LastIndexByte(email, '@')+1:], ".")
}

func validateEmail(errs validation.Errors, email string) {
	switch {
	case email == "":
		errs.Add("email", "Enter your email address.")
	case len(email) > 254:
		errs.Add("email", "That email address is too long.")
	case !ValidEmail(email):
		errs.Add("email", "Enter an email address like name@example.com.")
	}
}

func validatePassword(errs validation.Errors, field, password string) {
	n := len([]rune(password))
	switch {
	case n < MinPasswordLen:
		errs.Add(field, fmt.Sprintf("Use at least %d characters.", MinPasswordLen))
	case n > MaxPasswordLen:
		errs.Add(field, fmt.Sprintf("Use at most %d characters.", MaxPasswordLen))
	}
}

// SignUp creates a user and their personal team, of which they are the
// owner. The first user of an instance becomes its site admin.
func (s *Service) SignUp(ctx context.Context, in SignUp) (User, teams.Team, error) {
	email := NormalizeEmail(in.Email)
	name := strings.TrimSpace(in.Name)
	errs := validation.Errors{}
	validateEmail(errs, email)
	validatePassword(errs, "password", in.Password)
	if len([]rune(name)) > MaxNameChars {
		errs.Add("name", fmt.Sprintf("Use at most %d characters.", MaxNameChars))
	}
	if err := errs.Err(); err != nil {
		return User{}, teams.Team{}, err
	}
	hash, err := s.Hasher.Hash(ctx, in.Password)
	if err != nil {
		return User{}, teams.Team{}, err
	}

	emailTaken := validation.Errors{"email": "An account with this email already exists. Log in instead."}
	var (
		user User
		team teams.Team
	)
	err = db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		if s.DB.Dialect == db.Postgres {
			// Serialise sign-ups so that exactly one first user becomes site admin.
			if _, err := tx.ExecContext(ctx, `LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE`); err != nil {
				return fmt.Errorf("auth: lock users: %w", err)
			}
		}
		if _, err := UserByEmail(ctx, tx, email); err == nil {
			return emailTaken
		} else if !errors.Is(err, db.ErrNotFound) {
			return err
		}
		count, err := CountUsers(ctx, tx)
		if err != nil {
			return err
		}
		now := db.Now()
		user = User{Email: email, Name: name, PasswordHash: hash, IsSiteAdmin: in.SiteAdmin || count == 0, CreatedAt: now, UpdatedAt: now}
		if err := insertUser(ctx, tx, &user); err != nil {
			if db.IsUniqueViolation(err) {
				return emailTaken
			}
			return err
		}
		if team, err = teams.CreatePersonal(ctx, tx, user.ID, email); err != nil {
			return err
		}
		if s.SeedTeam != nil {
			if err := s.SeedTeam(ctx, tx, team.ID, access.Actor{UserID: user.ID, TeamID: team.ID, Role: teams.RoleOwner}); err != nil {
				return err
			}
		}
		summary := "signed up"
		if user.IsSiteAdmin {
			summary = "signed up as site admin"
		}
		return audit.Record(ctx, tx, audit.For(access.Actor{UserID: user.ID, TeamID: team.ID}, "user.signup", email, summary))
	})
	if err != nil {
		return User{}, teams.Team{}, err
	}
	return user, team, nil
}

// StartSession signs userID in and returns the new session's token. The
// session that came before it, if any, is ended: the id is rotated at log-in.
func (s *Service) StartSession(ctx context.Context, userID int64, previousToken, ip, userAgent string) (string, error) {
	var token string
	err := db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		if previousToken != "" {
			if err := deleteSession(ctx, tx, previousToken); err != nil {
				return err
			}
		}
		memberships, err := teams.ForUser(ctx, tx, userID)
		if err != nil {
			return err
		}
		var teamID sql.NullInt64
		if len(memberships) > 0 {
			teamID = sql.NullInt64{Int64: memberships[0].ID, Valid: true}
		}
		if token, err = createSession(ctx, tx, userID, teamID, ip, userAgent); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.For(access.Actor{UserID: userID}, "user.login", "", ""))
	})
	return token, err
}

// ResolveSession returns the live session for token and its user; an
// unknown or expired token is db.ErrNotFound. Use keeps the session alive.
// The session is read through the readers, and keeping it alive waits for
// a moment the writer can write (a locked SQLite file), so that reading
// pages goes on meanwhile.
func (s *Service) ResolveSession(ctx context.Context, token string) (Session, User, error) {
	sess, err := sessionByToken(ctx, s.DB.Reader(), token)
	if err != nil {
		return Session{}, User{}, err
	}
	user, err := UserByID(ctx, s.DB.Reader(), sess.UserID)
	if err != nil {
		return Session{}, User{}, err
	}
	if now := db.Now(); now.Sub(sess.LastSeenAt) > sessionTouchEvery {
		_, err := db.Exec(ctx, s.DB, `UPDATE sessions SET last_seen_at = ?, expires_at = ? WHERE token_hash = ?`,
			now, now.Add(SessionTTL), sess.TokenHash)
		if err != nil && !db.Unavailable(err) {
			return Session{}, User{}, fmt.Errorf("auth: touch session: %w", err)
		}
	}
	return sess, user, nil
}

// EndSession signs userID's session with token out.
func (s *Service) EndSession(ctx context.Context, userID int64, token string) error {
	return db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		if err := deleteSession(ctx, tx, token); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.For(access.Actor{UserID: userID}, "user.logout", "", ""))
	})
}

// SwitchTeam makes teamID the session's current team; a team the user is
// not a member of is db.ErrNotFound.
func (s *Service) SwitchTeam(ctx context.Context, token string, userID, teamID int64) error {
	if _, err := teams.MembershipOf(ctx, s.DB, teamID, userID); err != nil {
		return err
	}
	return db.ExecOne(ctx, s.DB, `UPDATE sessions SET team_id = ? WHERE token_hash = ? AND user_id = ?`,
		teamID, HashToken(token), userID)
}

// ChangePassword replaces the user's password after checking the current
// one, and signs out every other session of theirs.
func (s *Service) ChangePassword(ctx context.Context, userID int64, keepToken, current, next string) error {
	user, err := UserByID(ctx, s.DB, userID)
	if err != nil {
		return err
	}
	errs := validation.Errors{}
	problem, err := s.checkCurrentPassword(ctx, user, current)
	if err != nil {
		return err
	}
	if problem != "" {
		errs.Add("current_password", problem)
	}
	validatePassword(errs, "new_password", next)
	if err := errs.Err(); err != nil {
		return err
	}
	hash, err := s.Hasher.Hash(ctx, next)
	if err != nil {
		return err
	}
	return db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		if err := updatePasswordHash(ctx, tx, userID, hash); err != nil {
			return err
		}
		_, err := db.Exec(ctx, tx, `DELETE FROM sessions WHERE user_id = ? AND token_hash <> ?`, userID, HashToken(keepToken))
		if err != nil {
			return fmt.Errorf("auth: end other sessions: %w", err)
		}
		return audit.Record(ctx, tx, audit.For(access.Actor{UserID: userID}, "user.password_change", "", "other sessions signed out"))
	})
}

// Profile is what a user may change about themselves on the account page.
type Profile struct {
	Name  string
	Email string
	// CurrentPassword is needed to change the email, with which one signs
	// in: a session left open must not be enough to take the account.
	CurrentPassword string
	// KeepToken is the session that asks; a new email signs out the others,
	// as a new password does.
	KeepToken string
}

// UpdateProfile changes the user's display name and email. Problems are
// validation errors on "name", "email" and "current_password"; nothing is
// written unless all is well.
func (s *Service) UpdateProfile(ctx context.Context, userID int64, in Profile) (User, error) {
	user, err := UserByID(ctx, s.DB, userID)
	if err != nil {
		return User{}, err
	}
	name, email := strings.TrimSpace(in.Name), NormalizeEmail(in.Email)
	errs := validation.Errors{}
	if len([]rune(name)) > MaxNameChars {
		errs.Add("name", fmt.Sprintf("Use at most %d characters.", MaxNameChars))
	}
	validateEmail(errs, email)
	emailChanged := email != user.Email
	if emailChanged && errs["email"] == "" {
		if in.CurrentPassword == "" {
			errs.Add("current_password", "Enter your current password to change your email.")
		} else if problem, err := s.checkCurrentPassword(ctx, user, in.CurrentPassword); err != nil {
			return User{}, err
		} else if problem != "" {
			errs.Add("current_password", problem)
		}
	}
	if err := errs.Err(); err != nil {
		return User{}, err
	}
	if name == user.Name && !emailChanged {
		return user, nil
	}
	var changes []string
	if name != user.Name {
		changes = append(changes, "name changed")
	}
	if emailChanged {
		changes = append(changes, "email changed from "+user.Email+" to "+email+"; other sessions signed out")
	}
	err = db.WithTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		err := db.ExecOne(ctx, tx, `UPDATE users SET name = ?, email = ?, updated_at = ? WHERE id = ?`, name, email, db.Now(), userID)
		if db.IsUniqueViolation(err) {
			return validation.Errors{"email": "Another account uses this email."}
		}
		if err != nil {
			return fmt.Errorf("auth: update profile of user %d: %w", userID, err)
		}
		if emailChanged {
			if _, err := db.Exec(ctx, tx, `DELETE FROM sessions WHERE user_id = ? AND token_hash <> ?`, userID, HashToken(in.KeepToken)); err != nil {
				return fmt.Errorf("auth: end other sessions: %w", err)
			}
		}
		entry := audit.For(access.Actor{UserID: userID}, "user.profile_change", email, strings.Join(changes, "; "))
		entry.Actor = email
		return audit.Record(ctx, tx, entry)
	})
	if err != nil {
		return User{}, err
	}
	user.Name, user.Email = name, email
	return user, nil
}

// DeleteExpiredSessions removes sessions that ended before now.
func (s *Service) DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error) {
	res, err := db.Exec(ctx, s.DB, `DELETE FROM sessions WHERE expires_at <= ?`, now)
	if err != nil {
		return 0, fmt.Errorf("auth: delete expired sessions: %w", err)
	}
	return res.RowsAffected()
}

// CountUsers counts the instance's accounts.
func (s *Service) CountUsers(ctx context.Context) (int, error) { return CountUsers(ctx, s.DB.Reader()) }
