package auth

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nofxhq/nofx/internal/access"
	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/db"
)

// Lockout limits the failed log-ins of one email in a fixed window. It is
// counted in the database, so processes that share one cannot be used to
// multiply guesses. The zero Lockout is off.
type Lockout struct {
	// Failures is how many log-ins an email may fail in one window; after
	// that every log-in to it, even with the right password, is refused
	// until the window ends.
	Failures int
	// Window is how long a window lasts, from its first failure.
	Window time.Duration
}

// Off reports whether the lock-out limits nothing.
func (l Lockout) Off() bool { return l.Failures <= 0 || l.Window <= 0 }

// maxEmailKey bounds the email stored as a throttle key or an audit target:
// no valid address is longer.
const maxEmailKey = 254

// now is the current time as the database stores it.
func (s *Service) now() time.Time {
	if s.Now == nil {
		return db.Now()
	}
	return s.Now().UTC().Truncate(time.Microsecond)
}

// Authenticate returns the user with email and password, or
// ErrInvalidCredentials; a log-in to an email that is locked out (see
// Lockout) is refused the same way, without checking the password. It
// returns ErrBusy when the password cannot be checked now.
func (s *Service) Authenticate(ctx context.Context, email, password string) (User, error) {
	email = NormalizeEmail(email)
	key := truncate(email, maxEmailKey)
	var turn *attempt
	if !s.Lockout.Off() {
		a, err := s.takeAttempt(ctx, key)
		if err != nil {
			return User{}, err
		}
		if a.Failures > s.Lockout.Failures {
			return User{}, s.failedLogIn(ctx, key, "locked out")
		}
		turn = &a
	}

	user, err := UserByEmail(ctx, s.DB, email)
	known := err == nil
	if err != nil && !errors.Is(err, db.ErrNotFound) {
		return User{}, s.giveBack(ctx, turn, err)
	}
	hash := user.PasswordHash
	if !known {
		hash = dummyHash // the same work as a real check
	}
	ok, err := s.Hasher.Check(ctx, hash, password)
	if err != nil {
		// ErrBusy too, for an unknown email as for a known one, so that a
		// busy answer does not tell whether the account exists.
		return User{}, s.giveBack(ctx, turn, err)
	}
	switch {
	case !known:
		return User{}, s.failedLogIn(ctx, key, "no such account")
	case !ok:
		return User{}, s.failedLogIn(ctx, key, "wrong password")
	}
	if turn != nil {
		if err := clearAttempts(ctx, s.DB, key); err != nil {
			return User{}, err
		}
	}
	return user, nil
}

// checkCurrentPassword checks a signed-in user's password before a change
// that asks for it (a new password, a new email). A wrong one counts toward
// the email's lock-out as a failed log-in does, so that a session left open
// is no way around it; while the email is locked out even the right one is
// refused, unchecked. It returns the problem to show on the
// current_password field, "" when the password is right.
func (s *Service) checkCurrentPassword(ctx context.Context, user User, password string) (problem string, err error) {
	key := truncate(user.Email, maxEmailKey)
	var turn *attempt
	if !s.Lockout.Off() {
		a, err := s.takeAttempt(ctx, key)
		if err != nil {
			return "", err
		}
		if a.Failures > s.Lockout.Failures {
			if err := s.failedCheck(ctx, user, "locked out"); err != nil {
				return "", err
			}
			left := a.WindowStarted.Add(s.Lockout.Window).Sub(s.now())
			return "Too many wrong passwords for this account: try again in " + minutes(left) + ".", nil
		}
		turn = &a
	}
	ok, err := s.Hasher.Check(ctx, user.PasswordHash, password)
	if err != nil {
		return "", s.giveBack(ctx, turn, err)
	}
	if !ok {
		if err := s.failedCheck(ctx, user, "wrong current password"); err != nil {
			return "", err
		}
		return "That is not your current password.", nil
	}
	if turn != nil {
		if err := clearAttempts(ctx, s.DB, key); err != nil {
			return "", err
		}
	}
	return "", nil
}

// failedCheck audits a signed-in user's failed password check.
func (s *Service) failedCheck(ctx context.Context, user User, summary string) error {
	return audit.Record(ctx, s.DB, audit.For(access.Actor{UserID: user.ID}, "user.login_failed", truncate(user.Email, maxEmailKey), summary))
}

// minutes writes a wait in whole minutes, rounded up: "1 minute", "15 minutes".
func minutes(d time.Duration) string {
	n := int((d + time.Minute - 1) / time.Minute)
	if n <= 1 {
		return "1 minute"
	}
	return strconv.Itoa(n) + " minutes"
}

// failedLogIn records a failed log-in and returns ErrInvalidCredentials.
func (s *Service) failedLogIn(ctx context.Context, email, summary string) error {
	e := audit.Entry{Action: "user.login_failed", Target: email, Actor: "unknown", Summary: summary}
	if err := audit.Record(ctx, s.DB, e); err != nil {
		return err
	}
	return ErrInvalidCredentials
}

// attempt is a log-in counted against an email's window.
type attempt struct {
	Email         string    `db:"email"`
	Failures      int       `db:"failures"` // this attempt included
	WindowStarted time.Time `db:"window_started_at"`
}

// takeAttempt counts a log-in to email in its current window, before the
// password is checked, and returns the count with it: one statement, so
// that concurrent log-ins, in any process, each get their own number and at
// most Lockout.Failures of them are checked in a window. A window that has
// passed starts over at this attempt.
func (s *Service) takeAttempt(ctx context.Context, email string) (attempt, error) {
	now := s.now()
	a := attempt{Email: email}
	err := db.Get(ctx, s.DB, &a, `INSERT INTO login_throttles (email, failures, window_started_at) VALUES (?, 1, ?)
		ON CONFLICT (email) DO UPDATE SET
			failures = CASE WHEN login_throttles.window_started_at <= ? THEN 1 ELSE login_throttles.failures + 1 END,
			window_started_at = CASE WHEN login_throttles.window_started_at <= ? THEN excluded.window_started_at ELSE login_throttles.window_started_at END
		RETURNING email, failures, window_started_at`,
		email, now, now.Add(-s.Lockout.Window), now.Add(-s.Lockout.Window))
	if err != nil {
		return attempt{}, fmt.Errorf("auth: count log-in attempt: %w", err)
	}
	return a, nil
}

// giveBack uncounts an attempt (a nil one is none) whose password was never
// checked, and returns err, the reason.
func (s *Service) giveBack(ctx context.Context, a *attempt, err error) error {
	if a == nil {
		return err
	}
	// The request may have ended (that can be why): give back regardless.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, uerr := db.Exec(ctx, s.DB, `UPDATE login_throttles SET failures = failures - 1
		WHERE email = ? AND window_started_at = ? AND failures > 0`, a.Email, a.WindowStarted)
	if uerr != nil {
		return errors.Join(err, fmt.Errorf("auth: uncount log-in attempt: %w", uerr))
	}
	return err
}

// clearAttempts forgets the failed log-ins of email.
func clearAttempts(ctx context.Context, q db.Queryer, email string) error {
	if _, err := db.Exec(ctx, q, `DELETE FROM login_throttles WHERE email = ?`, email); err != nil {
		return fmt.Errorf("auth: clear log-in attempts: %w", err)
	}
	return nil
}

// DeleteExpiredLoginThrottles removes the lock-out counts whose window
// ended by now (every count, when the lock-out is off).
func (s *Service) DeleteExpiredLoginThrottles(ctx context.Context, now time.Time) (int64, error) {
	query, args := `DELETE FROM login_throttles`, []any(nil)
	if !s.Lockout.Off() {
		query += ` WHERE window_started_at <= ?`
		args = append(args, now.UTC().Truncate(time.Microsecond).Add(-s.Lockout.Window))
	}
	res, err := db.Exec(ctx, s.DB, query, args...)
	if err != nil {
		return 0, fmt.Errorf("auth: delete expired log-in throttles: %w", err)
	}
	return res.RowsAffected()
}
