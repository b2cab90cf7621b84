package auth_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/validation"
)

// testClock is a clock that moves only when told.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock {
	return &testClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

const (
	lockoutEmail    = "lock@example.com"
	lockoutPassword = "the right password"
	wrongPassword   = "not the right one"
	lockoutWindow   = 15 * time.Minute
)

// lockoutSetup returns a service that locks an email out after 3 failures
// in lockoutWindow, on d with a clock of its own, and signs up lockoutEmail.
func lockoutSetup(t *testing.T, d *db.DB) (*auth.Service, *testClock) {
	t.Helper()
	clock := newTestClock()
	svc := &auth.Service{
		DB:      d,
		Hasher:  auth.NewHasher(0, time.Minute),
		Lockout: auth.Lockout{Failures: 3, Window: lockoutWindow},
		Now:     clock.Now,
	}
	_, _, err := svc.SignUp(context.Background(), auth.SignUp{Email: lockoutEmail, Password: lockoutPassword})
	require.NoError(t, err)
	return svc, clock
}

// failures returns the stored failure count of email, 0 without a row.
func failures(t *testing.T, d *db.DB, email string) int {
	t.Helper()
	var n []int
	require.NoError(t, db.Select(context.Background(), d, &n, `SELECT failures FROM login_throttles WHERE email = ?`, email))
	if len(n) == 0 {
		return 0
	}
	return n[0]
}

// lastFailure returns the summary of the last failed log-in audited.
func lastFailure(t *testing.T, d *db.DB) string {
	t.Helper()
	var s string
	require.NoError(t, db.Get(context.Background(), d, &s,
		`SELECT summary FROM audit_log WHERE action = 'user.login_failed' ORDER BY id DESC LIMIT 1`))
	return s
}

// failuresAudited counts the failed log-ins audited with summary.
func failuresAudited(t *testing.T, d *db.DB, summary string) int {
	t.Helper()
	var n int
	require.NoError(t, db.Get(context.Background(), d, &n,
		`SELECT COUNT(*) FROM audit_log WHERE action = 'user.login_failed' AND summary = ?`, summary))
	return n
}

func TestLockout(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		svc, clock := lockoutSetup(t, d)

		for i := range 3 {
			_, err := svc.Authenticate(ctx, lockoutEmail, wrongPassword)
			require.ErrorIs(t, err, auth.ErrInvalidCredentials)
			require.Equal(t, "wrong password", lastFailure(t, d))
			require.Equal(t, i+1, failures(t, d, lockoutEmail))
			clock.Add(time.Minute)
		}

		_, err := svc.Authenticate(ctx, "  LOCK@example.com ", lockoutPassword)
		require.ErrorIs(t, err, auth.ErrInvalidCredentials, "the right password is refused during a lock-out")
		require.Equal(t, auth.ErrInvalidCredentials.Error(), err.Error(), "with the generic message")
		require.Equal(t, "locked out", lastFailure(t, d))

		// A locked-out log-in checks no password: with every slot of its
		// Hasher taken, it is still refused at once, not busy.
		busy := &auth.Service{DB: d, Hasher: auth.NewHasher(1, time.Millisecond), Lockout: svc.Lockout, Now: clock.Now}
		holdSlots(t, busy.Hasher, 1)
		_, err = busy.Authenticate(ctx, lockoutEmail, lockoutPassword)
		require.ErrorIs(t, err, auth.ErrInvalidCredentials)
		require.Equal(t, "locked out", lastFailure(t, d))

		// The window is fixed, from the first failure 3 minutes ago.
		clock.Add(lockoutWindow - 3*time.Minute - time.Microsecond)
		_, err = svc.Authenticate(ctx, lockoutEmail, lockoutPassword)
		require.ErrorIs(t, err, auth.ErrInvalidCredentials, "locked until the window ends")
		clock.Add(time.Microsecond)
		user, err := svc.Authenticate(ctx, lockoutEmail, lockoutPassword)
		require.NoError(t, err, "the window has ended")
		require.Equal(t, lockoutEmail, user.Email)
		require.Zero(t, failures(t, d, lockoutEmail), "a log-in clears the count")
	})
}

func TestLockoutSuccessClearsFailures(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		svc, _ := lockoutSetup(t, d)
		for range 2 {
			_, err := svc.Authenticate(ctx, lockoutEmail, wrongPassword)
			require.ErrorIs(t, err, auth.ErrInvalidCredentials)
		}
		_, err := svc.Authenticate(ctx, lockoutEmail, lockoutPassword)
		require.NoError(t, err)
		require.Zero(t, failures(t, d, lockoutEmail))

		for range 3 {
			_, err := svc.Authenticate(ctx, lockoutEmail, wrongPassword)
			require.ErrorIs(t, err, auth.ErrInvalidCredentials)
			require.Equal(t, "wrong password", lastFailure(t, d), "three more failures are allowed")
		}
		_, err = svc.Authenticate(ctx, lockoutEmail, lockoutPassword)
		require.ErrorIs(t, err, auth.ErrInvalidCredentials)
		require.Equal(t, "locked out", lastFailure(t, d))
	})
}

// TestLockoutUnknownEmail checks that an unknown email locks out the same
// way, so that a lock-out does not tell whether an account exists.
func TestLockoutUnknownEmail(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		svc, clock := lockoutSetup(t, d)
		for _, email := range []string{"nobody@example.com", "NOBODY@example.com", " nobody@example.COM"} {
			_, err := svc.Authenticate(ctx, email, wrongPassword)
			require.ErrorIs(t, err, auth.ErrInvalidCredentials)
			require.Equal(t, "no such account", lastFailure(t, d))
		}
		require.Equal(t, 3, failures(t, d, "nobody@example.com"), "counted per normalised email")
		_, err := svc.Authenticate(ctx, "nobody@example.com", wrongPassword)
		require.ErrorIs(t, err, auth.ErrInvalidCredentials)
		require.Equal(t, "locked out", lastFailure(t, d))

		_, err = svc.Authenticate(ctx, lockoutEmail, lockoutPassword)
		require.NoError(t, err, "another email is not locked out")

		// Housekeeping removes the counts whose window has ended.
		clock.Add(lockoutWindow - time.Minute)
		_, err = svc.Authenticate(ctx, lockoutEmail, wrongPassword)
		require.ErrorIs(t, err, auth.ErrInvalidCredentials)
		clock.Add(time.Minute)
		n, err := svc.DeleteExpiredLoginThrottles(ctx, clock.Now())
		require.NoError(t, err)
		require.Equal(t, int64(1), n)
		require.Zero(t, failures(t, d, "nobody@example.com"))
		require.Equal(t, 1, failures(t, d, lockoutEmail), "a live window is kept")
	})
}

func TestLockoutOff(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.SQLite(t)
	svc, _ := lockoutSetup(t, d)
	svc.Lockout = auth.Lockout{}
	for range 4 {
		_, err := svc.Authenticate(ctx, lockoutEmail, wrongPassword)
		require.ErrorIs(t, err, auth.ErrInvalidCredentials)
	}
	_, err := svc.Authenticate(ctx, lockoutEmail, lockoutPassword)
	require.NoError(t, err)
	var rows int
	require.NoError(t, db.Get(ctx, d, &rows, `SELECT COUNT(*) FROM login_throttles`))
	require.Zero(t, rows, "nothing is counted when the lock-out is off")
}

// eachShared runs fn once on SQLite and once on PostgreSQL with two
// connection pools on one fresh database, as two processes would have.
func eachShared(t *testing.T, fn func(t *testing.T, a, b *db.DB)) {
	t.Helper()
	open := func(t *testing.T, u string) *db.DB {
		d, err := db.Open(context.Background(), u)
		require.NoError(t, err)
		t.Cleanup(func() { d.Close() })
		return d
	}
	t.Run("sqlite", func(t *testing.T) {
		u := dbtest.SQLiteURL(t)
		fn(t, open(t, u), open(t, u))
	})
	t.Run("postgres", func(t *testing.T) {
		u := dbtest.PostgresURL(t)
		a := open(t, u)
		_, err := a.Migrate(context.Background())
		require.NoError(t, err)
		fn(t, a, open(t, u))
	})
}

// TestLockoutAcrossProcesses makes concurrent failed log-ins through two
// services on two connection pools to one database: they count exactly,
// and no more than Failures passwords are checked in a window.
func TestLockoutAcrossProcesses(t *testing.T) {
	eachShared(t, func(t *testing.T, a, b *db.DB) {
		ctx := context.Background()
		const limit = 4
		clock := newTestClock()
		var services []*auth.Service
		for _, d := range []*db.DB{a, b} {
			services = append(services, &auth.Service{
				DB:      d,
				Hasher:  auth.NewHasher(0, time.Minute),
				Lockout: auth.Lockout{Failures: limit, Window: lockoutWindow},
				Now:     clock.Now,
			})
		}
		_, _, err := services[0].SignUp(ctx, auth.SignUp{Email: lockoutEmail, Password: lockoutPassword})
		require.NoError(t, err)

		// flood makes n wrong log-ins at once, alternately through each
		// service, and requires each to be refused.
		flood := func(n int) {
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, err := services[i%2].Authenticate(ctx, lockoutEmail, wrongPassword)
					if !errors.Is(err, auth.ErrInvalidCredentials) {
						t.Errorf("log-in %d: %v, want ErrInvalidCredentials", i, err)
					}
				}()
			}
			close(start)
			wg.Wait()
		}

		flood(limit)
		require.Equal(t, limit, failures(t, a, lockoutEmail), "every concurrent failure is counted once")
		require.Equal(t, limit, failuresAudited(t, a, "wrong password"))
		for _, svc := range services {
			_, err := svc.Authenticate(ctx, lockoutEmail, lockoutPassword)
			require.ErrorIs(t, err, auth.ErrInvalidCredentials, "locked out in both processes")
		}
		require.Equal(t, 2, failuresAudited(t, a, "locked out"))

		// In a new window, three times the limit at once: exactly limit of
		// them have their password checked.
		clock.Add(lockoutWindow)
		flood(3 * limit)
		require.Equal(t, 2*limit, failuresAudited(t, b, "wrong password"))
		require.Equal(t, 2+2*limit, failuresAudited(t, b, "locked out"))
		require.Equal(t, 3*limit, failures(t, b, lockoutEmail), "the new window counts every attempt")
	})
}

// TestCurrentPasswordChecksCountTowardTheLockout guesses the account's
// password from a signed-in session, through the password and email
// changes that ask for it: each wrong guess counts toward the email's
// lock-out, as a failed log-in does, so a session left open is not a way
// around it. Locked, even the right current password is refused, and so
// is a log-in.
func TestCurrentPasswordChecksCountTowardTheLockout(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		svc, clock := lockoutSetup(t, d)
		user, err := auth.UserByEmail(ctx, d, lockoutEmail)
		require.NoError(t, err)

		err = svc.ChangePassword(ctx, user.ID, "", wrongPassword, "a brand new password")
		require.Equal(t, "That is not your current password.", fieldError(t, err, "current_password"))
		_, err = svc.UpdateProfile(ctx, user.ID, auth.Profile{Email: "taken@example.com", CurrentPassword: wrongPassword})
		require.Equal(t, "That is not your current password.", fieldError(t, err, "current_password"))
		err = svc.ChangePassword(ctx, user.ID, "", wrongPassword, "a brand new password")
		require.Equal(t, "That is not your current password.", fieldError(t, err, "current_password"))
		require.Equal(t, 3, failures(t, d, lockoutEmail))
		require.Equal(t, 3, failuresAudited(t, d, "wrong current password"))

		const locked = "Too many wrong passwords for this account: try again in 15 minutes."
		err = svc.ChangePassword(ctx, user.ID, "", lockoutPassword, "a brand new password")
		require.Equal(t, locked, fieldError(t, err, "current_password"), "the right password is refused while locked")
		_, err = svc.UpdateProfile(ctx, user.ID, auth.Profile{Email: "taken@example.com", CurrentPassword: lockoutPassword})
		require.Equal(t, locked, fieldError(t, err, "current_password"))
		_, err = svc.Authenticate(ctx, lockoutEmail, lockoutPassword)
		require.ErrorIs(t, err, auth.ErrInvalidCredentials, "the guesses locked the log-in too")
		again, err := auth.UserByID(ctx, d, user.ID)
		require.NoError(t, err)
		require.Equal(t, user.PasswordHash, again.PasswordHash, "nothing changed")
		require.Equal(t, lockoutEmail, again.Email)

		// After the window, the right password works and clears the count.
		clock.Add(lockoutWindow)
		require.NoError(t, svc.ChangePassword(ctx, user.ID, "", lockoutPassword, "a brand new password"))
		require.Zero(t, failures(t, d, lockoutEmail))
	})
}

// fieldError is the message err gives field, failing unless err is a
// validation error with one.
func fieldError(t *testing.T, err error, field string) string {
	t.Helper()
	var verrs validation.Errors
	require.ErrorAs(t, err, &verrs)
	require.NotEmpty(t, verrs[field], "%v", err)
	return verrs[field]
}
