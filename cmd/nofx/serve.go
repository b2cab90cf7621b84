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

	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/config"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/metrics"
	"github.com/nofxhq/nofx/internal/version"
	"github.com/nofxhq/nofx/web"
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

// openDB connects to the configured database and brings its schema up to
// date, or, with migrate false, refuses a schema that is behind.
func openDB(ctx context.Context, cfg *config.Config, log *slog.Logger, migrate bool) (*db.DB, error) {
	d, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if migrate {
		n, err := d.Migrate(ctx)
		if err != nil {
			d.Close()
			return nil, err
		}
		if n > 0 {
			log.Info("applied migrations", "count", n)
		}
		return d, nil
	}
	current, latest, err := d.MigrationVersions(ctx)
	if err != nil {
		d.Close()
		return nil, err
	}
	if current < latest {
		d.Close()
		return nil, fmt.Errorf("database schema is at version %d, this binary needs %d: run nofx migrate", current, latest)
	}
	return d, nil
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
	if cfg.SessionSecretGenerated {
		log.Warn("NOFX_SESSION_SECRET is not set: generated one in the data directory; set it to share sessions between processes", "data_dir", cfg.DataDir)
	}

	d, err := openDB(ctx, cfg, log, !*noMigrate)
	if err != nil {
		return err
	}
	defer d.Close()

	authService := &auth.Service{DB: d}
	srv := web.New(web.Deps{Config: cfg, DB: d, Logger: log, Metrics: metrics.New(), Auth: authService})

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("NOFX_ADDR: listen on %s: %w", cfg.Addr, err)
	}
	httpServer := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpServer.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "version", version.String(), "database", string(d.Dialect))

	housekeeping, stopHousekeeping := context.WithCancel(context.Background())
	housekeepingDone := make(chan struct{})
	go func() {
		defer close(housekeepingDone)
		sweepSessions(housekeeping, authService, log)
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
	log.Info("stopped")
	return nil
}

// sweepSessions deletes expired sessions every hour until ctx ends.
func sweepSessions(ctx context.Context, a *auth.Service, log *slog.Logger) {
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
		}
	}
}
