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
	"github.com/nofxhq/nofx/internal/apikeys"
	"github.com/nofxhq/nofx/internal/audit"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/billing"
	"github.com/nofxhq/nofx/internal/comparisons"
	"github.com/nofxhq/nofx/internal/config"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/deployments"
	"github.com/nofxhq/nofx/internal/engine"
	"github.com/nofxhq/nofx/internal/health"
	"github.com/nofxhq/nofx/internal/instance"
	"github.com/nofxhq/nofx/internal/invites"
	"github.com/nofxhq/nofx/internal/live"
	"github.com/nofxhq/nofx/internal/mail"
	"github.com/nofxhq/nofx/internal/members"
	"github.com/nofxhq/nofx/internal/metrics"
	"github.com/nofxhq/nofx/internal/nodes"
	"github.com/nofxhq/nofx/internal/providerkeys"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/secrets"
	"github.com/nofxhq/nofx/internal/templates"
	"github.com/nofxhq/nofx/internal/version"
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
	// ProviderRetry shapes the retries of each provider call.
	ProviderRetry ai.RetryPolicy
	// ScheduleEvery is how often the scheduler looks for due deployments.
	ScheduleEvery time.Duration
	// HeartbeatEvery is how often this node tells the others it is alive.
	HeartbeatEvery time.Duration
	// JobAttempts is how often a failing step job is tried before it is a
	// dead letter.
	JobAttempts int
	// StreamKeepalive is how often an idle event stream sends a comment and
	// looks at its run again.
	StreamKeepalive time.Duration
}

// App is a built NOFX: its database, services, engine and web server.
type App struct {
	Config    *config.Config
	Log       *slog.Logger
	DB        *db.DB
	Broker    live.Broker
	Providers *ai.Registry
	Circuits  *ai.Circuits
	Keys      *providerkeys.Service
	Metrics   *metrics.Metrics
	Auth      *auth.Service
	Runs      *runs.Service
	Mailer    mail.Mailer
	// Mail is Mailer, remembering its last failure for the health page.
	Mail *mail.Tracked
	// Health gathers Admin → Health, /readyz?verbose=1 and the health gauges.
	Health      *health.Checker
	Invites     *invites.Service
	Templates   *templates.Service
	Deployments *deployments.Service
	Scheduler   *deployments.Scheduler
	Billing     *billing.Service
	Comparisons *comparisons.Service
	Members     *members.Service
	APIKeys     *apikeys.Service
	// Instance is what site admins do to the whole instance.
	Instance *instance.Service
	// Audit reads a team's audit log.
	Audit    *audit.Service
	Warnings *billing.WarningMailer
	// Stripe and StripeWebhook sell plans when STRIPE_SECRET_KEY is set;
	// nil otherwise (local billing).
	Stripe        *billing.Stripe
	StripeWebhook *billing.Webhook
	// Heart beats for this process in the nodes table.
	Heart  *nodes.Heart
	Engine *engine.Engine
	Web    *web.Server

	closeBroker func() error
	// stopCircuitResets ends the goroutine that applies circuit resets made
	// in other processes.
	stopCircuitResets func()
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

	box, err := secrets.New(cfg.SecretKey)
	if err != nil {
		a.closeStores()
		return nil, fmt.Errorf("NOFX_SECRET_KEY: %w", err)
	}
	a.Metrics = metrics.New()
	a.Circuits, a.Providers = providers(cfg, log, a.Metrics, tune.ProviderRetry)
	a.Keys = &providerkeys.Service{DB: d, Box: box, Providers: []string{ai.AnthropicName, ai.OpenAIName}}
	a.Auth = &auth.Service{
		DB:       d,
		SeedTeam: templates.SeedStarters,
		Hasher:   auth.NewHasher(cfg.PasswordHashes, cfg.PasswordHashWait),
		Lockout:  auth.Lockout{Failures: cfg.LoginLockout.N, Window: cfg.LoginLockout.Per},
	}
	mailer, err := mail.New(cfg.SMTPURL, d)
	if err != nil {
		a.closeStores()
		return nil, fmt.Errorf("NOFX_SMTP_URL: %w", err)
	}
	a.Mail = &mail.Tracked{Mailer: mailer}
	a.Mailer = a.Mail
	a.Invites = &invites.Service{DB: d, Mailer: a.Mailer, BaseURL: cfg.BaseURL}
	a.Runs = &runs.Service{DB: d, Broker: a.Broker, Providers: a.Providers, Keys: a.Keys, RetryBase: tune.RetryBase, RetryMax: tune.RetryMax,
		ListCache: runs.NewListCache(int(cfg.RunsListCache))}
	if c := a.Runs.ListCache; c != nil {
		a.Metrics.RunsListCache(c.Stats)
	}
	a.Engine, err = engine.New(engine.Config{
		DB:              d,
		Runs:            a.Runs,
		Providers:       a.Providers,
		Broker:          a.Broker,
		Keys:            a.Keys,
		Log:             log,
		Workers:         cfg.Workers,
		Lease:           cmp.Or(tune.Lease, cfg.StepLease),
		RescueEvery:     tune.RescueEvery,
		ShutdownGrace:   tune.ShutdownGrace,
		PollInterval:    tune.PollInterval,
		PollOnly:        !cfg.DatabaseListen,
		TeamConcurrency: cfg.TeamConcurrency,
		JobAttempts:     tune.JobAttempts,
	})
	if err != nil {
		a.closeStores()
		return nil, err
	}
	a.Runs.Scheduler = a.Engine
	a.Templates = &templates.Service{DB: d, Runs: a.Runs}
	a.Deployments = &deployments.Service{DB: d, Runs: a.Runs, Box: box, Log: log}
	a.Scheduler = &deployments.Scheduler{Service: a.Deployments, Every: tune.ScheduleEvery}
	a.Billing = &billing.Service{DB: d, Waker: a.Runs}
	a.Comparisons = &comparisons.Service{DB: d, Runs: a.Runs}
	a.Members = &members.Service{DB: d}
	a.APIKeys = &apikeys.Service{DB: d}
	a.Instance = &instance.Service{DB: d, Circuits: a.Circuits, Broker: a.Broker}
	a.Audit = &audit.Service{DB: d}
	a.Warnings = &billing.WarningMailer{DB: d, Mailer: a.Mailer, BaseURL: cfg.BaseURL, Every: tune.ScheduleEvery, Log: log}
	a.Health = &health.Checker{DB: d, DataDir: cfg.DataDir, SMTP: cfg.SMTPURL != "", Mail: a.Mail, Recent: a.Metrics.Recent,
		Workers: cfg.Workers, Running: a.Engine.Running}
	a.Metrics.Registry.MustRegister(&health.Collector{Checker: a.Health})
	a.Heart = &nodes.Heart{DB: d, Version: version.String(), Workers: cfg.Workers, Running: a.Engine.Active, Log: log, Every: tune.HeartbeatEvery}
	if cfg.StripeSecretKey != "" {
		a.Stripe = billing.NewStripe(d, cfg.StripeSecretKey, cfg.StripeAPIBase)
		a.StripeWebhook = &billing.Webhook{DB: d, Secret: cfg.StripeWebhookSecret, Waker: a.Runs, Mailer: a.Mailer, BaseURL: cfg.BaseURL, Log: log}
	}
	a.Web = web.New(web.Deps{
		Config:      cfg,
		DB:          d,
		Logger:      log,
		Metrics:     a.Metrics,
		Auth:        a.Auth,
		Runs:        a.Runs,
		Engine:      a.Engine,
		Broker:      a.Broker,
		Providers:   a.Providers,
		Circuits:    a.Circuits,
		Keys:        a.Keys,
		Invites:     a.Invites,
		Templates:   a.Templates,
		Deployments: a.Deployments,
		Billing:     a.Billing,
		Stripe:      a.Stripe,
		StripeHook:  a.StripeWebhook,
		Health:      a.Health,
		Comparisons: a.Comparisons,
		Members:     a.Members,
		APIKeys:     a.APIKeys,
		Instance:    a.Instance,
		Audit:       a.Audit,

		StreamKeepalive: tune.StreamKeepalive,
	})
	return a, nil
}

// providers builds the instance's providers, each behind retries and a
// circuit breaker whose calls, tokens and states reach the metrics.
func providers(cfg *config.Config, log *slog.Logger, m *metrics.Metrics, policy ai.RetryPolicy) (*ai.Circuits, *ai.Registry) {
	circuits := ai.NewCircuits(ai.CircuitConfig{
		FailuresToOpen: uint32(cfg.CircuitFailures),
		OpenFor:        cfg.CircuitOpenFor,
		HalfOpenProbes: uint32(cfg.CircuitProbes),
		CallTimeout:    cfg.ProviderTimeout,
		MaxInFlight:    cfg.ProviderConcurrency,
	})
	circuits.OnChange = func(key ai.CircuitKey, from, to string) {
		log.Warn("provider circuit changed", "provider", key.Provider, "scope", key.Scope, "base_url", key.BaseURL, "from", from, "to", to)
	}
	circuits.Observer = ai.Observer{
		OnCall: func(provider, outcome string, d time.Duration) {
			m.ProviderCalls.WithLabelValues(provider, outcome).Inc()
			m.ProviderLatency.WithLabelValues(provider).Observe(d.Seconds())
			if outcome != ai.OutcomeCircuitOpen && outcome != ai.OutcomeCanceled {
				m.Recent.Call(provider, d)
			}
		},
		OnError: func(provider, class string) {
			m.ProviderErrors.WithLabelValues(provider, class).Inc()
			m.Recent.Error(provider, class)
		},
		OnTokens: func(provider string, in, out int) {
			m.ProviderTokens.WithLabelValues(provider, "input").Add(float64(in))
			m.ProviderTokens.WithLabelValues(provider, "output").Add(float64(out))
		},
	}
	m.CircuitStates(func() map[metrics.CircuitLabels]float64 {
		out := map[metrics.CircuitLabels]float64{}
		for _, s := range circuits.States() {
			// One series per provider and kind of credential: the worst
			// circuit counts.
			// No label names a team: a team's own key is "team".
			scope := s.Key.Scope
			if scope != ai.ScopeInstance {
				scope = "team"
			}
			labels := metrics.CircuitLabels{Provider: s.Key.Provider, Scope: scope}
			out[labels] = max(out[labels], map[string]float64{ai.CircuitClosed: 0, ai.CircuitHalfOpen: 1, ai.CircuitOpen: 2}[s.State])
		}
		return out
	})
	if policy.Attempts == 0 {
		policy = ai.DefaultRetryPolicy()
	}
	registry := ai.NewRegistry(
		ai.NewReliable(ai.NewSimulated(time.Now().UnixNano()), circuits, policy),
		ai.NewReliable(ai.NewAnthropic(ai.AnthropicConfig{APIKey: cfg.AnthropicAPIKey, BaseURL: cfg.AnthropicBaseURL}), circuits, policy),
		ai.NewReliable(ai.NewOpenAI(ai.OpenAIConfig{APIKey: cfg.OpenAIAPIKey, BaseURL: cfg.OpenAIBaseURL}), circuits, policy),
	)
	return circuits, registry
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

// Start starts the workers, then the scheduler of deployments, then the
// follower of circuit resets.
func (a *App) Start(ctx context.Context) error {
	if err := a.Engine.Start(ctx); err != nil {
		return err
	}
	a.Scheduler.Start(ctx)
	a.Warnings.Start(ctx)
	if err := a.Heart.Start(ctx); err != nil {
		return err
	}
	a.followCircuitResets()
	return nil
}

// followCircuitResets closes this process's circuit of a provider and
// credential when a site admin resets it in any process sharing the
// database (the admin page publishes the circuit's encoded key on
// live.SystemTopic; a provider name alone resets all its circuits).
func (a *App) followCircuitResets() {
	messages, unsubscribe := a.Broker.Subscribe(live.SystemTopic)
	done := make(chan struct{})
	stopped := make(chan struct{})
	a.stopCircuitResets = func() {
		unsubscribe()
		close(done)
		<-stopped
	}
	go func() {
		defer close(stopped)
		for {
			select {
			case <-done:
				return
			case m := <-messages:
				if m.Kind != live.KindCircuitReset {
					continue
				}
				key, ok := ai.ParseCircuitKey(m.Text)
				if !ok { // a provider name alone: every circuit of the provider
					a.Circuits.ResetProvider(key.Provider)
					continue
				}
				if err := a.Circuits.Reset(key); err != nil && !errors.Is(err, ai.ErrNoCircuit) {
					a.Log.Warn("circuit reset from another process", "circuit", key.String(), "error", err)
				}
			}
		}
	}()
}

// Close stops the scheduler of deployments, then the workers (running
// steps get their grace period), then live updates, then the database.
// Stop HTTP before calling it.
func (a *App) Close(ctx context.Context) error {
	if a.stopCircuitResets != nil {
		a.stopCircuitResets()
	}
	a.Warnings.Stop()
	err := a.Scheduler.Stop(ctx)
	err = errors.Join(err, a.Engine.Stop(ctx))
	// Last of the writers: until the workers stopped, the node is one.
	err = errors.Join(err, a.Heart.Stop(ctx))
	return errors.Join(err, a.closeStores())
}

func (a *App) closeStores() error {
	var err error
	if a.closeBroker != nil {
		err = a.closeBroker()
	}
	return errors.Join(err, a.DB.Close())
}
