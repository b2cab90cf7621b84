package nodes

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
)

// Two nodes beat into one database; when one stops beating (its process
// killed: no goodbye), the other sees it lost, while it stays live itself;
// a node that stops cleanly leaves the list.
func TestANodeThatStopsBeatingIsLost(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		a := &Heart{DB: d, Version: "test", Workers: 4, Running: func() int { return 2 }, Log: log, Every: 50 * time.Millisecond}
		b := &Heart{DB: d, Version: "test", Workers: 8, Log: log, Every: 50 * time.Millisecond}
		require.NoError(t, a.Start(ctx))
		require.NoError(t, b.Start(ctx))
		t.Cleanup(func() { _ = a.Stop(ctx) })

		state := func() map[string]bool {
			list, err := List(ctx, d, db.Now())
			require.NoError(t, err)
			lost := map[string]bool{}
			for _, n := range list {
				lost[n.ID] = n.Lost(db.Now())
			}
			return lost
		}
		require.Eventually(t, func() bool {
			list, err := List(ctx, d, db.Now())
			require.NoError(t, err)
			for _, n := range list {
				if n.ID == a.ID() && n.Running == 2 {
					return true
				}
			}
			return false
		}, 10*time.Second, 10*time.Millisecond, "a's beat carries its running steps")

		b.cancel() // killed: it beats no more and says no goodbye
		<-b.done
		require.Eventually(t, func() bool { s := state(); return s[b.ID()] && !s[a.ID()] }, 10*time.Second, 10*time.Millisecond,
			"b is lost while a stays live")

		require.NoError(t, a.Stop(ctx))
		_, listed := state()[a.ID()]
		require.False(t, listed, "a node that stops cleanly leaves")
	})
}

// A process whose host clock is off sees the others as they are: the
// heartbeats are written by the database's clock and listed on the
// reader's, so a reader ten minutes ahead (or behind) finds a live node
// live, beating moments ago by its own clock.
func TestAHostClockOffSeesNodesAsTheyAre(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		h := &Heart{DB: d, Version: "test", Workers: 1, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Every: time.Minute}
		require.NoError(t, h.Start(ctx))
		t.Cleanup(func() { _ = h.Stop(ctx) })
		for _, off := range []time.Duration{10 * time.Minute, -10 * time.Minute, 2 * time.Hour} {
			now := db.Now().Add(off)
			list, err := List(ctx, d, now)
			require.NoError(t, err)
			require.Len(t, list, 1, "clock %s off", off)
			require.False(t, list[0].Lost(now), "clock %s off: the node is live", off)
			require.WithinDuration(t, now, list[0].LastHeartbeatAt, 5*time.Second, "clock %s off: it beat moments ago", off)
		}
	})
}
