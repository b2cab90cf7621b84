package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/nofxhq/nofx/internal/app"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/config"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/version"
)

// shutdownGrace is how long in-flight requests get to finish on SIGTERM.
const shutdownGrace = 25 * time.Second

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// serve builds the app from the configuration, in order, runs it until ctx
// ends, and shuts it down in reverse.
func serve(ctx context.Context, args []string, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	noMigrate := fs.Bool("no-migrate", false, "refuse to start when the schema is behind, instead of migrating it")
	if err := fs.Parse(args); err != nil {
		return err
	}

	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	if cfg.SecretKeyGenerated {
		log.Warn("NOFX_SECRET_KEY is not set: generated one in the data directory; keep it safe (team provider keys are encrypted with it) and set it when several processes share a database", "data_dir", cfg.DataDir)
	}
	if cfg.SessionSecretGenerated {
		log.Warn("NOFX_SESSION_SECRET is not set: generated one in the data directory; set it to share sessions between processes", "data_dir", cfg.DataDir)
	}

	a, err := app.New(ctx, cfg, log, !*noMigrate, app.Tuning{})
	if err != nil {
		return err
	}
	defer func() {
		if err := a.Close(context.Background()); err != nil {
			log.Error("shutdown", "error", err)
		}
		log.Info("stopped")
	}()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("NOFX_ADDR: listen on %s: %w", cfg.Addr, err)
	}
	if err := a.Start(ctx); err != nil {
		ln.Close()
		return err
	}
	httpServer := &http.Server{
		Handler:           a.Web.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	httpServer.RegisterOnShutdown(a.Web.StopStreams)
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpServer.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "url", openURL(cfg, ln.Addr()), "version", version.String(),
		"database", string(a.DB.Dialect), "workers", cfg.Workers)

	housekeeping, stopHousekeeping := context.WithCancel(context.Background())
	housekeepingDone := make(chan struct{})
	go func() {
		defer close(housekeepingDone)
		housekeep(housekeeping, a.Auth, a.Runs, log)
	}()

	select {
	case err := <-serveErr:
		stopHousekeeping()
		<-housekeepingDone
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}

	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := httpServer.Shutdown(shutdownCtx); err != nil {
		log.Error("http shutdown", "error", err)
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("http server", "error", err)
	}
	stopHousekeeping()
	<-housekeepingDone
	return nil // the deferred Close stops the workers, then the database
}

// housekeep deletes expired sessions and login throttles, and folds the
// runs list's counters of ended connections, every hour until ctx ends.
func housekeep(ctx context.Context, a *auth.Service, r *runs.Service, log *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if n, err := a.DeleteExpiredSessions(ctx, now.UTC()); err != nil {
				log.Warn("delete expired sessions", "error", err)
			} else if n > 0 {
				log.Info("deleted expired sessions", "count", n)
			}
			if n, err := a.DeleteExpiredLoginThrottles(ctx, now.UTC()); err != nil {
				log.Warn("delete expired login throttles", "error", err)
			} else if n > 0 {
				log.Info("deleted expired login throttles", "count", n)
			}
			if _, err := r.FoldListVersions(ctx); err != nil {
				log.Warn("fold runs list versions", "error", err)
			}
		}
	}
}

// openURL is the address to open in a browser: NOFX_BASE_URL when set, else
// the listener's, with an unspecified host (":8080") as 127.0.0.1.
func openURL(cfg *config.Config, addr net.Addr) string {
	if cfg.BaseURL != "" {
		return cfg.BaseURL
	}
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
