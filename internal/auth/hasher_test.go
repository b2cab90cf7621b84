package auth_test

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/validation"
)

// holdSlots takes n of h's slots until the test ends or the returned
// release is called.
func holdSlots(t *testing.T, h *auth.Hasher, n int) (release func()) {
	t.Helper()
	gate := make(chan struct{})
	var inside, done sync.WaitGroup
	inside.Add(n)
	done.Add(n)
	for range n {
		go func() {
			defer done.Done()
			err := h.Do(context.Background(), func() {
				inside.Done()
				<-gate
			})
			if err != nil {
				t.Errorf("hold a slot: %v", err)
				inside.Done()
			}
		}()
	}
	inside.Wait()
	var once sync.Once
	release = func() {
		once.Do(func() {
			close(gate)
			done.Wait()
		})
	}
	t.Cleanup(release)
	return release
}

func TestHasherRefusesWhenFull(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := auth.NewHasher(1, 20*time.Millisecond)
	release := holdSlots(t, h, 1)

	_, err := h.Hash(ctx, "long enough pw")
	require.ErrorIs(t, err, auth.ErrBusy)
	_, err = h.Check(ctx, "$argon2id$whatever", "long enough pw")
	require.ErrorIs(t, err, auth.ErrBusy, "a check waits for a slot too")
	require.Equal(t, "too many password checks at once; try again shortly", auth.ErrBusy.Error())
	require.Zero(t, h.Waiting(), "a refused call stops waiting")

	release()
	hash, err := h.Hash(ctx, "long enough pw")
	require.NoError(t, err, "a freed slot is used again")
	ok, err := h.Check(ctx, hash, "long enough pw")
	require.NoError(t, err)
	require.True(t, ok)
}

func TestHasherHonoursContext(t *testing.T) {
	t.Parallel()
	h := auth.NewHasher(1, time.Hour)
	holdSlots(t, h, 1)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := h.Check(ctx, "$argon2id$whatever", "long enough pw")
		errc <- err
	}()
	require.Eventually(t, func() bool { return h.Waiting() == 1 }, 10*time.Second, time.Millisecond)
	cancel()
	select {
	case err := <-errc:
		require.ErrorIs(t, err, auth.ErrBusy)
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled check still waits for a slot")
	}

	// An ended request runs nothing, even when a slot is free.
	free := auth.NewHasher(1, time.Hour)
	ran := false
	err := free.Do(ctx, func() { ran = true })
	require.ErrorIs(t, err, auth.ErrBusy)
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, ran)
}

// TestHasherCapsConcurrency starts many more calls than slots and shows
// that exactly slots of them run while the rest wait, then that none ever
// ran alongside more than slots-1 others.
func TestHasherCapsConcurrency(t *testing.T) {
	t.Parallel()
	const slots, calls = 3, 12
	h := auth.NewHasher(slots, time.Hour)
	require.Equal(t, slots, h.Slots())

	var running, peak atomic.Int32
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := h.Do(context.Background(), func() {
				n := running.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				<-gate
				running.Add(-1)
			})
			if err != nil {
				t.Errorf("do: %v", err)
			}
		}()
	}
	// Every call is either running or waiting for a slot.
	require.Eventually(t, func() bool {
		return running.Load() == slots && h.Waiting() == calls-slots
	}, 10*time.Second, time.Millisecond, "running %d, waiting %d", running.Load(), h.Waiting())
	for range calls {
		gate <- struct{}{} // lets one call finish, and a waiting one start
	}
	wg.Wait()
	require.Equal(t, int32(slots), peak.Load())
	require.Zero(t, h.Waiting())
}

func TestHasherDefaults(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	require.Equal(t, runtime.NumCPU(), auth.NewHasher(0, 0).Slots())
	require.Equal(t, runtime.NumCPU(), (*auth.Hasher)(nil).Slots(), "a nil Hasher is the default one")
	var zero auth.Hasher
	require.Equal(t, runtime.NumCPU(), zero.Slots(), "the zero Hasher is usable")

	var nilHasher *auth.Hasher
	hash, err := nilHasher.Hash(ctx, "long enough pw")
	require.NoError(t, err)
	ok, err := auth.CheckPassword(hash, "long enough pw")
	require.NoError(t, err)
	require.True(t, ok, "a Hasher's hash is HashPassword's")
	ok, err = zero.Check(ctx, hash, "not the password")
	require.NoError(t, err)
	require.False(t, ok)
}

// TestServiceHashesThroughHasher holds every slot of a service's Hasher and
// shows that each thing that hashes a password waits for one: sign-up,
// log-in (to an unknown email too) and password change.
func TestServiceHashesThroughHasher(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		svc := &auth.Service{DB: d, Hasher: auth.NewHasher(1, 10*time.Millisecond), Lockout: auth.Lockout{Failures: 1, Window: time.Hour}}
		user, _, err := svc.SignUp(ctx, auth.SignUp{Email: "busy@example.com", Password: "long enough pw"})
		require.NoError(t, err)
		token, err := svc.StartSession(ctx, user.ID, "", "", "")
		require.NoError(t, err)

		release := holdSlots(t, svc.Hasher, 1)
		_, _, err = svc.SignUp(ctx, auth.SignUp{Email: "other@example.com", Password: "long enough pw"})
		require.ErrorIs(t, err, auth.ErrBusy)
		_, err = svc.Authenticate(ctx, "busy@example.com", "long enough pw")
		require.ErrorIs(t, err, auth.ErrBusy)
		_, err = svc.Authenticate(ctx, "nobody@example.com", "long enough pw")
		require.ErrorIs(t, err, auth.ErrBusy, "an unknown email is busy the same way, so busy does not tell")
		err = svc.ChangePassword(ctx, user.ID, token, "long enough pw", "another long pw")
		require.ErrorIs(t, err, auth.ErrBusy)
		var verrs validation.Errors
		require.NotErrorAs(t, err, &verrs)

		n, err := auth.CountUsers(ctx, d)
		require.NoError(t, err)
		require.Equal(t, 1, n, "a busy sign-up writes nothing")
		var failed int
		require.NoError(t, db.Get(ctx, d, &failed, `SELECT COUNT(*) FROM audit_log WHERE action = 'user.login_failed'`))
		require.Zero(t, failed, "a busy log-in is not a failed one")

		release()
		// The lock-out allows one failure; the busy attempts were not counted.
		got, err := svc.Authenticate(ctx, "busy@example.com", "long enough pw")
		require.NoError(t, err)
		require.Equal(t, user.ID, got.ID)
		_, err = svc.Authenticate(ctx, "nobody@example.com", "long enough pw")
		require.ErrorIs(t, err, auth.ErrInvalidCredentials)
		var summary string
		require.NoError(t, db.Get(ctx, d, &summary, `SELECT summary FROM audit_log WHERE action = 'user.login_failed' ORDER BY id DESC LIMIT 1`))
		require.Equal(t, "no such account", summary, "checked, not locked out")
	})
}

// TestZeroServiceHashes checks that a Service without a Hasher uses the
// default one.
func TestZeroServiceHashes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	svc := &auth.Service{DB: dbtest.SQLite(t)}
	_, _, err := svc.SignUp(ctx, auth.SignUp{Email: "zero@example.com", Password: "long enough pw"})
	require.NoError(t, err)
	_, err = svc.Authenticate(ctx, "zero@example.com", "long enough pw")
	require.NoError(t, err)
}
