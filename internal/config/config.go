// Package config reads NOFX's configuration from the environment once and
// validates it, so that a bad value stops start-up with a message that names
// the variable.
package config

import (
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Config is the validated configuration of one NOFX process.
type Config struct {
	Addr        string // NOFX_ADDR
	DatabaseURL string // NOFX_DATABASE_URL, defaulted to SQLite in DataDir
	// DatabaseListen (NOFX_DATABASE_LISTEN, default true) lets the engine
	// hold one LISTEN connection on PostgreSQL, so that idle workers hear of
	// new steps at once instead of polling; turn it off behind PgBouncer in
	// transaction mode.
	DatabaseListen bool
	DataDir        string // NOFX_DATA_DIR
	Workers        int    // NOFX_WORKERS
	// TeamConcurrency (NOFX_TEAM_CONCURRENCY) is how many steps of one team
	// may run at once across all processes; zero is no limit. Load defaults
	// it to a quarter of the workers, at least 4.
	TeamConcurrency int
	// StepLease (NOFX_STEP_LEASE) is how long a running step stays with a
	// worker that stopped renewing it before another worker retries it.
	StepLease time.Duration

	SessionSecret          []byte // NOFX_SESSION_SECRET, or generated into DataDir
	SessionSecretGenerated bool   // true when the secret was generated on this start
	SecretKey              []byte // NOFX_SECRET_KEY, 32 bytes, or generated into DataDir
	SecretKeyGenerated     bool   // true when the secret key was generated on this start

	AnthropicAPIKey  string // ANTHROPIC_API_KEY
	AnthropicBaseURL string // NOFX_ANTHROPIC_BASE_URL
	OpenAIAPIKey     string // OPENAI_API_KEY
	OpenAIBaseURL    string // NOFX_OPENAI_BASE_URL

	StripeSecretKey     string // STRIPE_SECRET_KEY
	StripeWebhookSecret string // STRIPE_WEBHOOK_SECRET
	StripeAPIBase       string // NOFX_STRIPE_API_BASE

	SMTPURL string // NOFX_SMTP_URL
	// BaseURL (NOFX_BASE_URL) is the instance's public address, used in the
	// links of emails; when empty, the address a request came to is used.
	BaseURL string
	// MetricsToken (NOFX_METRICS_TOKEN), when set, is the bearer token
	// GET /metrics asks for; when empty, /metrics is open.
	MetricsToken string

	// Provider circuits: open after CircuitFailures consecutive failures
	// (NOFX_CIRCUIT_FAILURES), half-open after CircuitOpenFor
	// (NOFX_CIRCUIT_OPEN_FOR), close after CircuitProbes successes
	// (NOFX_CIRCUIT_PROBES); each call may take ProviderTimeout
	// (NOFX_PROVIDER_TIMEOUT).
	CircuitFailures int
	CircuitOpenFor  time.Duration
	CircuitProbes   int
	ProviderTimeout time.Duration
	// ProviderConcurrency (NOFX_PROVIDER_CONCURRENCY) is how many calls this
	// process makes at once with one provider credential; zero is no limit.
	ProviderConcurrency int

	LogFormat string // NOFX_LOG_FORMAT: json (default) or text
	LogLevel  string // NOFX_LOG_LEVEL: debug, info (default), warn, error

	// Rate limit tiers (NOFX_RATE_*); a zero Rate is off. Load gives each
	// its default; a Config built by hand (in tests) has none.
	RateGeneral   Rate // every request, per user or API key, else per client IP
	RateAuth      Rate // log-in, sign-up, password change, invitation accept; per IP and per email
	RateExpensive Rate // starting runs, checkout, portal, template import
	RateAdmin     Rate // site admin pages and actions
	RateWebhooks  Rate // per webhook token

	// LoginLockout (NOFX_LOGIN_LOCKOUT) is how many failed log-ins one
	// account may have in a window, counted in the database; zero is off.
	LoginLockout Rate
	// PasswordHashes (NOFX_PASSWORD_HASHES) is how many password hashes may
	// run at once; zero means one per usable CPU, at most four. PasswordHashWait
	// (NOFX_PASSWORD_HASH_WAIT) is how long a request waits for a turn
	// before it is answered 503; zero means 2s.
	PasswordHashes   int
	PasswordHashWait time.Duration
	// StreamsPerPrincipal (NOFX_STREAMS_PER_KEY) caps the event streams one
	// user or API key may hold open; zero is no cap.
	StreamsPerPrincipal int
	// MaxBody (NOFX_MAX_BODY, default 1 MB) is the largest request body,
	// in bytes; a bigger one is answered 413.
	MaxBody int64
	// RunsListCache (NOFX_RUNS_LIST_CACHE, default 8 MB) bounds the encoded
	// pages of the API's runs list kept between requests, in bytes; zero
	// keeps none.
	RunsListCache int64

	// TrustedProxies (NOFX_TRUSTED_PROXIES) are the peers whose
	// X-Forwarded-For and X-Forwarded-Proto are believed.
	TrustedProxies []*net.IPNet
	// AllowedHosts (NOFX_ALLOWED_HOSTS) are the Host headers links may be
	// built from when BaseURL is unset.
	AllowedHosts []string
	// Signup (NOFX_SIGNUP) is who may create an account: open (anyone),
	// invite (only with an invitation) or closed (only the CLI).
	Signup string
}

// DefaultRunsListCache is NOFX_RUNS_LIST_CACHE's default, 8 MB.
const DefaultRunsListCache = 8_000_000

// DefaultMaxBody is NOFX_MAX_BODY's default, 1 MB.
const DefaultMaxBody = 1_000_000

// BodyLimit is the largest request body in bytes: MaxBody, or its default
// for a Config not made by Load.
func (c *Config) BodyLimit() int64 { return cmp.Or(c.MaxBody, DefaultMaxBody) }

// Sign-up policies (NOFX_SIGNUP).
const (
	SignupOpen   = "open"
	SignupInvite = "invite"
	SignupClosed = "closed"
)

// Where generated secrets are kept, in the data directory.
const (
	sessionSecretFile = "session.secret"
	secretKeyFile     = "secret.key"
)

// Error names the variable whose value is wrong.
type Error struct {
	Var    string
	Reason string
}

func (e *Error) Error() string { return fmt.Sprintf("config: %s: %s", e.Var, e.Reason) }

// Load reads the configuration through getenv (os.Getenv in production) and
// validates it. It creates the data directory, and generates a session secret
// there when none is configured.
func Load(getenv func(string) string) (*Config, error) {
	c := &Config{
		Addr:                cmp.Or(strings.TrimSpace(getenv("NOFX_ADDR")), "127.0.0.1:8080"),
		DataDir:             cmp.Or(strings.TrimSpace(getenv("NOFX_DATA_DIR")), "data"),
		DatabaseURL:         strings.TrimSpace(getenv("NOFX_DATABASE_URL")),
		AnthropicAPIKey:     getenv("ANTHROPIC_API_KEY"),
		AnthropicBaseURL:    getenv("NOFX_ANTHROPIC_BASE_URL"),
		OpenAIAPIKey:        getenv("OPENAI_API_KEY"),
		OpenAIBaseURL:       getenv("NOFX_OPENAI_BASE_URL"),
		StripeSecretKey:     getenv("STRIPE_SECRET_KEY"),
		StripeWebhookSecret: getenv("STRIPE_WEBHOOK_SECRET"),
		StripeAPIBase:       getenv("NOFX_STRIPE_API_BASE"),
		SMTPURL:             getenv("NOFX_SMTP_URL"),
		BaseURL:             strings.TrimSuffix(strings.TrimSpace(getenv("NOFX_BASE_URL")), "/"),
		MetricsToken:        getenv("NOFX_METRICS_TOKEN"),
		LogFormat:           cmp.Or(strings.TrimSpace(getenv("NOFX_LOG_FORMAT")), "json"),
		LogLevel:            cmp.Or(strings.TrimSpace(getenv("NOFX_LOG_LEVEL")), "info"),
	}

	if err := checkAddr(c.Addr); err != nil {
		return nil, &Error{"NOFX_ADDR", err.Error()}
	}

	workers, err := intVar(getenv, "NOFX_WORKERS", 1000, 0, 10000)
	if err != nil {
		return nil, err
	}
	if c.DatabaseListen, err = boolVar(getenv, "NOFX_DATABASE_LISTEN", true); err != nil {
		return nil, err
	}
	c.Workers = workers
	if c.TeamConcurrency, err = intVar(getenv, "NOFX_TEAM_CONCURRENCY", max(4, workers/4), 0, 100000); err != nil {
		return nil, err
	}

	for _, v := range []struct {
		name     string
		dst      *time.Duration
		def      time.Duration
		min, max time.Duration
	}{
		{"NOFX_STEP_LEASE", &c.StepLease, 30 * time.Second, time.Second, 10 * time.Minute},
		{"NOFX_CIRCUIT_OPEN_FOR", &c.CircuitOpenFor, time.Minute, time.Second, time.Hour},
		{"NOFX_PROVIDER_TIMEOUT", &c.ProviderTimeout, 2 * time.Minute, time.Second, time.Hour},
	} {
		if *v.dst, err = durationVar(getenv, v.name, v.def, v.min, v.max); err != nil {
			return nil, err
		}
	}
	if t := c.MetricsToken; t != "" && (len(t) < 16 || strings.TrimSpace(t) != t || strings.ContainsAny(t, " \t\r\n")) {
		return nil, &Error{"NOFX_METRICS_TOKEN", "use at least 16 characters without spaces (openssl rand -hex 16)"}
	}
	if c.CircuitFailures, err = intVar(getenv, "NOFX_CIRCUIT_FAILURES", 5, 1, 1000); err != nil {
		return nil, err
	}
	if c.CircuitProbes, err = intVar(getenv, "NOFX_CIRCUIT_PROBES", 2, 1, 100); err != nil {
		return nil, err
	}
	if c.ProviderConcurrency, err = intVar(getenv, "NOFX_PROVIDER_CONCURRENCY", 50, 0, 100000); err != nil {
		return nil, err
	}

	for _, v := range []struct{ name, value string }{
		{"NOFX_ANTHROPIC_BASE_URL", c.AnthropicBaseURL},
		{"NOFX_OPENAI_BASE_URL", c.OpenAIBaseURL},
		{"NOFX_STRIPE_API_BASE", c.StripeAPIBase},
		{"NOFX_BASE_URL", c.BaseURL},
	} {
		if err := checkHTTPURL(v.name, v.value); err != nil {
			return nil, err
		}
	}
	if c.StripeSecretKey != "" && c.StripeWebhookSecret == "" {
		return nil, &Error{"STRIPE_WEBHOOK_SECRET", "is required with STRIPE_SECRET_KEY: without Stripe's webhooks no plan would ever change (the endpoint's signing secret, whsec_...)"}
	}
	if c.StripeWebhookSecret != "" && c.StripeSecretKey == "" {
		return nil, &Error{"STRIPE_SECRET_KEY", "is required with STRIPE_WEBHOOK_SECRET"}
	}
	if c.SMTPURL != "" {
		u, err := url.Parse(c.SMTPURL)
		if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Host == "" {
			return nil, &Error{"NOFX_SMTP_URL", "must look like smtp://user:pass@host:587 or smtps://host:465"}
		}
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		return nil, &Error{"NOFX_LOG_FORMAT", fmt.Sprintf("must be json or text, not %q", c.LogFormat)}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return nil, &Error{"NOFX_LOG_LEVEL", fmt.Sprintf("must be debug, info, warn or error, not %q", c.LogLevel)}
	}

	if err := c.loadLimits(getenv); err != nil {
		return nil, err
	}

	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return nil, &Error{"NOFX_DATA_DIR", err.Error()}
	}

	if key := getenv("NOFX_SECRET_KEY"); key != "" {
		b, err := decodeKey(key)
		if err != nil {
			return nil, &Error{"NOFX_SECRET_KEY", err.Error()}
		}
		c.SecretKey = b
	} else {
		key, generated, err := loadOrCreateSecret(filepath.Join(c.DataDir, secretKeyFile))
		if err != nil {
			return nil, &Error{"NOFX_SECRET_KEY", "unset, and no key could be kept in the data directory: " + err.Error()}
		}
		if c.SecretKey, err = decodeKey(string(key)); err != nil {
			return nil, &Error{"NOFX_SECRET_KEY", filepath.Join(c.DataDir, secretKeyFile) + ": " + err.Error()}
		}
		c.SecretKeyGenerated = generated
	}

	if c.DatabaseURL == "" {
		c.DatabaseURL = "sqlite://" + filepath.ToSlash(filepath.Join(c.DataDir, "nofx.db"))
	}
	if !strings.HasPrefix(c.DatabaseURL, "sqlite://") &&
		!strings.HasPrefix(c.DatabaseURL, "postgres://") &&
		!strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		return nil, &Error{"NOFX_DATABASE_URL", "must start with sqlite:// or postgres://"}
	}

	if s := getenv("NOFX_SESSION_SECRET"); s != "" {
		if len(s) < 32 {
			return nil, &Error{"NOFX_SESSION_SECRET", "must be at least 32 characters"}
		}
		c.SessionSecret = []byte(s)
	} else {
		secret, generated, err := loadOrCreateSecret(filepath.Join(c.DataDir, sessionSecretFile))
		if err != nil {
			return nil, &Error{"NOFX_SESSION_SECRET", "unset, and no secret could be kept in the data directory: " + err.Error()}
		}
		c.SessionSecret = secret
		c.SessionSecretGenerated = generated
	}
	return c, nil
}

// loadLimits reads the rate limits, proxies, hosts and sign-up policy.
func (c *Config) loadLimits(getenv func(string) string) error {
	var err error
	for _, v := range []struct {
		name, def string
		dst       *Rate
	}{
		{"NOFX_RATE_GENERAL", "1000/15m", &c.RateGeneral},
		{"NOFX_RATE_AUTH", "10/15m", &c.RateAuth},
		{"NOFX_RATE_EXPENSIVE", "100/15m", &c.RateExpensive},
		{"NOFX_RATE_ADMIN", "50/15m", &c.RateAdmin},
		{"NOFX_RATE_WEBHOOKS", "10/1s", &c.RateWebhooks},
		{"NOFX_LOGIN_LOCKOUT", "10/15m", &c.LoginLockout},
	} {
		if *v.dst, err = rateVar(getenv, v.name, v.def); err != nil {
			return err
		}
	}
	if c.PasswordHashes, err = intVar(getenv, "NOFX_PASSWORD_HASHES", min(runtime.GOMAXPROCS(0), 4), 1, 256); err != nil {
		return err
	}
	if c.PasswordHashWait, err = durationVar(getenv, "NOFX_PASSWORD_HASH_WAIT", 2*time.Second, 10*time.Millisecond, time.Minute); err != nil {
		return err
	}
	if c.StreamsPerPrincipal, err = intVar(getenv, "NOFX_STREAMS_PER_KEY", 20, 1, 10_000); err != nil {
		return err
	}
	if c.MaxBody, err = sizeVar(getenv, "NOFX_MAX_BODY", DefaultMaxBody, 64_000, 100_000_000); err != nil {
		return err
	}
	if c.RunsListCache, err = sizeVar(getenv, "NOFX_RUNS_LIST_CACHE", DefaultRunsListCache, 0, 1_000_000_000); err != nil {
		return err
	}
	if c.TrustedProxies, err = parseCIDRs("NOFX_TRUSTED_PROXIES", getenv("NOFX_TRUSTED_PROXIES")); err != nil {
		return err
	}
	if c.AllowedHosts, err = parseHosts("NOFX_ALLOWED_HOSTS", getenv("NOFX_ALLOWED_HOSTS")); err != nil {
		return err
	}
	switch c.Signup = strings.ToLower(cmp.Or(strings.TrimSpace(getenv("NOFX_SIGNUP")), SignupOpen)); c.Signup {
	case SignupOpen, SignupInvite, SignupClosed:
	default:
		return &Error{"NOFX_SIGNUP", fmt.Sprintf("must be open, invite or closed, not %q", c.Signup)}
	}
	return nil
}

// TLS reports whether the instance is served over HTTPS, as its base URL
// says.
func (c *Config) TLS() bool { return strings.HasPrefix(c.BaseURL, "https://") }

func intVar(getenv func(string) string, name string, def, min, max int) (int, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, &Error{name, fmt.Sprintf("must be a whole number, not %q", v)}
	}
	if n < min || n > max {
		return 0, &Error{name, fmt.Sprintf("must be between %d and %d, not %d", min, max, n)}
	}
	return n, nil
}

// sizeVar reads a size in bytes: a whole number, optionally with a unit
// (K, M, G: thousands; KiB, MiB, GiB: 1,024s), such as 1M or 512KiB.
func sizeVar(getenv func(string) string, name string, def, min, max int64) (int64, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return def, nil
	}
	m := sizePattern.FindStringSubmatch(v)
	if m == nil {
		return 0, &Error{name, fmt.Sprintf("must be a size such as 1M, 512K or 2MiB, not %q", v)}
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, &Error{name, fmt.Sprintf("must be a size such as 1M, 512K or 2MiB, not %q", v)}
	}
	unit := map[string]int64{"": 1, "B": 1, "K": 1e3, "KB": 1e3, "M": 1e6, "MB": 1e6, "G": 1e9, "GB": 1e9,
		"KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30}[strings.ToUpper(m[2])]
	if n > max/unit || n*unit < min || n*unit > max {
		return 0, &Error{name, fmt.Sprintf("must be between %d and %d bytes, not %s", min, max, v)}
	}
	return n * unit, nil
}

var sizePattern = regexp.MustCompile(`(?i)^(\d+)\s*(|B|K|KB|M|MB|G|GB|KiB|MiB|GiB)$`)

func boolVar(getenv func(string) string, name string, def bool) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(getenv(name))) {
	case "":
		return def, nil
	case "true", "on", "1", "yes":
		return true, nil
	case "false", "off", "0", "no":
		return false, nil
	}
	return false, &Error{name, "use true or false"}
}

func durationVar(getenv func(string) string, name string, def, min, max time.Duration) (time.Duration, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < min || d > max {
		return 0, &Error{name, fmt.Sprintf("must be a duration from %s to %s, such as %s, not %q", min, max, def, v)}
	}
	return d, nil
}

func checkHTTPURL(name, v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return &Error{name, fmt.Sprintf("must be an http or https URL, not %q", v)}
	}
	return nil
}

func checkAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("must be host:port, such as 127.0.0.1:8080 or :8080, not %q", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port in %q must be a number from 0 to 65535", addr)
	}
	return nil
}

// decodeKey accepts a 32-byte key written as 64 hex digits or as base64.
func decodeKey(s string) ([]byte, error) {
	if b, err := hex.DecodeString(s); err == nil && len(b) == 32 {
		return b, nil
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) == 32 {
		return b, nil
	}
	return nil, errors.New("must be 32 random bytes, as 64 hex digits or base64 (try: openssl rand -hex 32)")
}

// loadOrCreateSecret reads the secret in path, or writes a new random one
// there with 0600 permissions.
func loadOrCreateSecret(path string) ([]byte, bool, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		s := strings.TrimSpace(string(b))
		if len(s) < 32 {
			return nil, false, fmt.Errorf("%s holds fewer than 32 characters", path)
		}
		return []byte(s), false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, false, err
	}
	secret := hex.EncodeToString(raw)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, err
	}
	if _, err := f.WriteString(secret + "\n"); err != nil {
		f.Close()
		return nil, false, err
	}
	if err := f.Close(); err != nil {
		return nil, false, err
	}
	return []byte(secret), true, nil
}
