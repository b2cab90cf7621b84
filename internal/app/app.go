// Package app builds NOFX from its configuration, in order, and shuts it
// down in reverse: the one place that knows how the pieces fit.
package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nofxhq/nofx/internal/ai"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/config"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/engine"
	"github.com/nofxhq/nofx/internal/live"
	"github.com/nofxhq/nofx/internal/metrics"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/web"
)

// Tuning adjusts timings that production leaves at their defaults; tests
// shorten them. Zero values take the defaults.
type Tuning struct {
	Lease         time.Duration
	RescueEvery   time.Duration
	ShutdownGrace time.Duration
	PollInterval  time.Duration
	RetryBase     time.Duration
	RetryMax      time.Duration
}

// App is a built NOFX: its database, services, engine and web server.
type App struct {
	Config    *config.Config
	Log       *slog.Logger
	DB        *db.DB
	Broker    live.Broker
	Providers *ai.Registry
	Auth      *auth.Service
	Runs      *runs.Service
	Engine    *engine.Engine
	Web       *web.Server

	closeBroker func() error
}

// New opens the database (migrating it when migrate is true, or refusing a
// schema that is behind) and builds every service on it.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger, migrate bool, tune Tuning) (*App, error) {
	d, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	a := &App{Config: cfg, Log: log, DB: d}
	if err := a.checkSchema(ctx, migrate); err != nil {
		d.Close()
		return nil, err
	}

	switch d.Dialect {
	case db.Postgres:
		pg, err := live.NewPostgres(cfg.DatabaseURL, d.DB.DB, log)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("live updates: %w", err)
		}
		a.Broker, a.closeBroker = pg, pg.Close
	default:
		a.Broker = live.NewLocal()
	}

	a.Providers = ai.NewRegistry(ai.NewSimulated(time.Now().UnixNano()))
	a.Auth = &auth.Service{DB: d}
	a.Runs = &runs.Service{DB: d, Broker: a.Broker, Providers: a.Providers, RetryBase: tune.RetryBase, RetryMax: tune.RetryMax}
	a.Engine, err = engine.New(engine.Config{
		DB:            d,
		Runs:          a.Runs,
		Providers:     a.Providers,
		Broker:        a.Broker,
		Log:           log,
		Workers:       cfg.Workers,
		Lease:         cmp.Or(tune.Lease, cfg.StepLease),
		RescueEvery:   tune.RescueEvery,
		ShutdownGrace: tune.ShutdownGrace,
		PollInterval:  tune.PollInterval,
	})
	if err != nil {
		a.closeStores()
		return nil, err
	}
	a.Runs.Scheduler = a.Engine
	a.Web = web.New(web.Deps{
		Config:    cfg,
		DB:        d,
		Logger:    log,
		Metrics:   metrics.New(),
		Auth:      a.Auth,
		Runs:      a.Runs,
		Engine:    a.Engine,
		Broker:    a.Broker,
		Providers: a.Providers,
	})
	return a, nil
}

func (a *App) checkSchema(ctx context.Context, migrate bool) error {
	if migrate {
		n, err := a.DB.Migrate(ctx)
		if err != nil {
			return err
		}
		if n > 0 {
			a.Log.Info("applied migrations", "count", n)
		}
		return nil
	}
	current, latest, err := a.DB.MigrationVersions(ctx)
	if err != nil {
		return err
	}
	if current < latest {
		return fmt.Errorf("database schema is at version %d, this binary needs %d: run nofx migrate", current, latest)
	}
	return nil
}

// Start starts the workers.
func (a *App) Start(ctx context.Context) error {
	return a.Engine.Start(ctx)
}

// Close stops the workers (running steps get their grace period), then
// live updates, then the database. Stop HTTP before calling it.
func (a *App) Close(ctx context.Context) error {
	err := a.Engine.Stop(ctx)
	return errors.Join(err, a.closeStores())
}

func (a *App) closeStores() error {
	var err error
	if a.closeBroker != nil {
		err = a.closeBroker()
	}
	return errors.Join(err, a.DB.Close())
}
