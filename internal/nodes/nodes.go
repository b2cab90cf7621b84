// Package nodes keeps the heartbeats of the nofx serve processes that share
// a database, so that every one of them, and the admin pages, see them all.
package nodes

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nofxhq/nofx/internal/db"
)

// Timing of heartbeats: a node beats every Every (by default), is lost when
// it missed three beats, and is forgotten after ForgetAfter.
const (
	Every       = 10 * time.Second
	ForgetAfter = time.Hour
)

// Node is one process as its last heartbeat described it.
type Node struct {
	ID              string    `db:"id"`
	Host            string    `db:"host"`
	PID             int       `db:"pid"`
	Version         string    `db:"version"`
	Workers         int       `db:"workers"`
	Running         int       `db:"running"`
	BeatEveryMS     int64     `db:"beat_every_ms"`
	StartedAt       time.Time `db:"started_at"`
	LastHeartbeatAt time.Time `db:"last_heartbeat_at"`
}

// Lost reports whether the node missed three heartbeats by now.
func (n Node) Lost(now time.Time) bool {
	every := time.Duration(n.BeatEveryMS) * time.Millisecond
	if every <= 0 {
		every = Every
	}
	return now.Sub(n.LastHeartbeatAt) > 3*every
}

// List returns the nodes that beat within ForgetAfter, newest first, with
// their times on the caller's clock at now: heartbeats are written by the
// database's clock (db.Clock), and moved by how far now is from it, so
// that a host whose clock is off sees the others as they are.
func List(ctx context.Context, q db.Queryer, now time.Time) ([]Node, error) {
	clock, err := db.Clock(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("nodes: list: %w", err)
	}
	var out []Node
	err = db.Select(ctx, q, &out, `SELECT id, host, pid, version, workers, running, beat_every_ms, started_at, last_heartbeat_at FROM nodes
		WHERE last_heartbeat_at > ? ORDER BY started_at DESC, id`, clock.Add(-ForgetAfter))
	if err != nil {
		return nil, fmt.Errorf("nodes: list: %w", err)
	}
	skew := now.Sub(clock)
	for i := range out {
		out[i].StartedAt = out[i].StartedAt.Add(skew)
		out[i].LastHeartbeatAt = out[i].LastHeartbeatAt.Add(skew)
	}
	return out, nil
}

// Heart beats for this process: Start registers it and beats every Every
// (with how many steps it runs now), Stop removes it.
type Heart struct {
	DB      *db.DB
	Version string
	Workers int
	// Running says how many steps the process runs now.
	Running func() int
	Log     *slog.Logger
	// Every overrides the interval between beats (tests).
	Every time.Duration

	id      string
	started time.Time
	cancel  context.CancelFunc
	done    chan struct{}
}

// ID is this process's node id, once started.
func (h *Heart) ID() string { return h.id }

// Start registers the process and starts beating.
func (h *Heart) Start(ctx context.Context) error {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	started, err := db.Clock(ctx, h.DB)
	if err != nil {
		return fmt.Errorf("nodes: register: %w", err)
	}
	host, _ := os.Hostname()
	h.id, h.started = host+"-"+hex.EncodeToString(b), started
	every := h.Every
	if every <= 0 {
		every = Every
	}
	h.Every = every
	if err := h.register(ctx, 0, h.started); err != nil {
		return err
	}
	ctx, h.cancel = context.WithCancel(context.WithoutCancel(ctx))
	h.done = make(chan struct{})
	go h.loop(ctx, every)
	return nil
}

func (h *Heart) loop(ctx context.Context, every time.Duration) {
	defer close(h.done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	failing := false // with another error than an outage: logged once until a beat succeeds
	outage := &db.Outage{Log: h.Log, What: "node heartbeat"}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		err := h.beat(ctx)
		if ctx.Err() != nil {
			return
		}
		switch {
		case outage.Observe(err):
		case err != nil && !failing:
			h.Log.Warn("node heartbeat failed; other nodes will show this one as lost until it beats again", "error", err)
			failing = true
		case err == nil && failing:
			h.Log.Info("node heartbeat recovered")
			failing = false
		}
	}
}

// beat records that the process is alive, and forgets long-lost nodes.
func (h *Heart) beat(ctx context.Context) error {
	running := 0
	if h.Running != nil {
		running = h.Running()
	}
	now, err := db.Clock(ctx, h.DB)
	if err != nil {
		return fmt.Errorf("nodes: heartbeat: %w", err)
	}
	res, err := db.Exec(ctx, h.DB, `UPDATE nodes SET running = ?, last_heartbeat_at = ? WHERE id = ?`, running, now, h.id)
	if err != nil {
		return fmt.Errorf("nodes: heartbeat: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 { // forgotten while the database was away: register again
		if err := h.register(ctx, running, now); err != nil {
			return err
		}
	}
	if _, err := db.Exec(ctx, h.DB, `DELETE FROM nodes WHERE last_heartbeat_at < ?`, now.Add(-ForgetAfter)); err != nil {
		return fmt.Errorf("nodes: forget lost nodes: %w", err)
	}
	return nil
}

// register writes the node's row, beating at now.
func (h *Heart) register(ctx context.Context, running int, now time.Time) error {
	host, _ := os.Hostname()
	_, err := db.Exec(ctx, h.DB, `INSERT INTO nodes (id, host, pid, version, workers, running, beat_every_ms, started_at, last_heartbeat_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, h.id, host, os.Getpid(), h.Version, h.Workers, running, h.Every.Milliseconds(), h.started, now)
	if err != nil {
		return fmt.Errorf("nodes: register: %w", err)
	}
	return nil
}

// Stop stops beating and removes the process from the nodes: a node that
// stops cleanly is not shown lost. It does not fail: a node it cannot
// remove is shown lost, then forgotten.
func (h *Heart) Stop(ctx context.Context) error {
	if h.done == nil {
		return nil
	}
	h.cancel()
	<-h.done
	if _, err := db.Exec(ctx, h.DB, `DELETE FROM nodes WHERE id = ?`, h.id); err != nil {
		// Harmless: the others see the node lost, then forget it.
		h.Log.Warn("node not unregistered; the others will show it lost for a while", "error", err)
	}
	return nil
}
