package config_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/config"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	c, err := config.Load(env(map[string]string{"NOFX_DATA_DIR": dir}))
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:8080", c.Addr)
	require.Equal(t, "sqlite://"+filepath.ToSlash(filepath.Join(dir, "nofx.db")), c.DatabaseURL)
	require.Equal(t, 1000, c.Workers, "steps mostly wait on the network")
	require.Equal(t, 250, c.TeamConcurrency, "a quarter of the workers")
	require.Equal(t, 50, c.ProviderConcurrency)
	require.True(t, c.DatabaseListen, "idle workers hear of new steps at once on PostgreSQL")
	require.Equal(t, 30*time.Second, c.StepLease)
	require.Equal(t, 5, c.CircuitFailures)
	require.Equal(t, time.Minute, c.CircuitOpenFor)
	require.Equal(t, 2, c.CircuitProbes)
	require.EqualValues(t, 1_000_000, c.MaxBody)
	require.EqualValues(t, 8_000_000, c.RunsListCache)
	require.True(t, c.SessionSecretGenerated)
	require.True(t, c.SecretKeyGenerated)
	require.Len(t, c.SecretKey, 32)
	require.GreaterOrEqual(t, len(c.SessionSecret), 32)

	info, err := os.Stat(filepath.Join(dir, "session.secret"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	info, err = os.Stat(filepath.Join(dir, "secret.key"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	again, err := config.Load(env(map[string]string{"NOFX_DATA_DIR": dir}))
	require.NoError(t, err)
	require.False(t, again.SessionSecretGenerated, "the secret is generated once")
	require.Equal(t, c.SessionSecret, again.SessionSecret)
	require.Equal(t, c.SecretKey, again.SecretKey)
}

func TestBadValuesNameTheVariable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, value string }{
		{"NOFX_ADDR", "8080"},
		{"NOFX_ADDR", "localhost:http-ish"},
		{"NOFX_WORKERS", "many"},
		{"NOFX_WORKERS", "-1"},
		{"NOFX_WORKERS", "10001"},
		{"NOFX_TEAM_CONCURRENCY", "some"},
		{"NOFX_TEAM_CONCURRENCY", "-1"},
		{"NOFX_PROVIDER_CONCURRENCY", "lots"},
		{"NOFX_PROVIDER_CONCURRENCY", "-5"},
		{"NOFX_DATABASE_URL", "mysql://localhost/nofx"},
		{"NOFX_SESSION_SECRET", "too short"},
		{"NOFX_SECRET_KEY", "not a key"},
		{"NOFX_OPENAI_BASE_URL", "localhost:11434"},
		{"NOFX_ANTHROPIC_BASE_URL", "ftp://example.com"},
		{"NOFX_STRIPE_API_BASE", "::"},
		{"NOFX_SMTP_URL", "http://mail.example.com"},
		{"NOFX_LOG_FORMAT", "xml"},
		{"NOFX_BASE_URL", "nofx.example.com"},
		{"NOFX_LOG_LEVEL", "loud"},
		{"NOFX_STEP_LEASE", "forever"},
		{"NOFX_STEP_LEASE", "10ms"},
		{"NOFX_CIRCUIT_FAILURES", "0"},
		{"NOFX_CIRCUIT_OPEN_FOR", "soon"},
		{"NOFX_CIRCUIT_PROBES", "x"},
		{"NOFX_PROVIDER_TIMEOUT", "2h"},
		{"NOFX_METRICS_TOKEN", "short"},
		{"NOFX_METRICS_TOKEN", "has a space in it, long enough"},
		{"NOFX_RATE_GENERAL", "1000"},
		{"NOFX_RATE_AUTH", "ten/15m"},
		{"NOFX_RATE_AUTH", "0/15m"},
		{"NOFX_RATE_EXPENSIVE", "100/forever"},
		{"NOFX_RATE_ADMIN", "50/100ms"},
		{"NOFX_RATE_WEBHOOKS", "10/48h"},
		{"NOFX_LOGIN_LOCKOUT", "on"},
		{"NOFX_PASSWORD_HASHES", "0"},
		{"NOFX_PASSWORD_HASH_WAIT", "1ns"},
		{"NOFX_STREAMS_PER_KEY", "-5"},
		{"NOFX_TRUSTED_PROXIES", "10.0.0.0/33"},
		{"NOFX_TRUSTED_PROXIES", "10.0.0.1, proxy.internal"},
		{"NOFX_ALLOWED_HOSTS", "https://nofx.example.com"},
		{"NOFX_ALLOWED_HOSTS", "nofx.example.com/path"},
		{"NOFX_SIGNUP", "sometimes"},
		{"NOFX_DATABASE_LISTEN", "maybe"},
		{"NOFX_MAX_BODY", "big"},
		{"NOFX_MAX_BODY", "1T"},
		{"NOFX_MAX_BODY", "1K"},                   // under 64 kB
		{"NOFX_MAX_BODY", "101M"},                 // over 100 MB
		{"NOFX_MAX_BODY", "99999999999999999GiB"}, // would overflow
		{"NOFX_RUNS_LIST_CACHE", "lots"},
		{"NOFX_RUNS_LIST_CACHE", "2G"}, // over 1 GB
		{"STRIPE_SECRET_KEY", ""},      // with a webhook secret but no key (below)
	} {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			vars := map[string]string{"NOFX_DATA_DIR": t.TempDir(), tc.name: tc.value}
			if tc.name == "STRIPE_SECRET_KEY" {
				vars["STRIPE_WEBHOOK_SECRET"] = "whsec_test"
			}
			_, err := config.Load(env(vars))
			var cerr *config.Error
			require.ErrorAs(t, err, &cerr)
			require.Equal(t, tc.name, cerr.Var)
			require.Contains(t, err.Error(), tc.name)
		})
	}
}

func TestStripeNeedsItsWebhookSecret(t *testing.T) {
	t.Parallel()
	_, err := config.Load(env(map[string]string{"NOFX_DATA_DIR": t.TempDir(), "STRIPE_SECRET_KEY": "sk_test_1"}))
	var cerr *config.Error
	require.ErrorAs(t, err, &cerr)
	require.Equal(t, "STRIPE_WEBHOOK_SECRET", cerr.Var)
	cfg, err := config.Load(env(map[string]string{"NOFX_DATA_DIR": t.TempDir(), "STRIPE_SECRET_KEY": "sk_test_1", "STRIPE_WEBHOOK_SECRET": "whsec_1"}))
	require.NoError(t, err)
	require.Equal(t, "whsec_1", cfg.StripeWebhookSecret)
}

func TestLimitsDefaultsAndValues(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(map[string]string{"NOFX_DATA_DIR": t.TempDir()}))
	require.NoError(t, err)
	require.Equal(t, config.Rate{N: 1000, Per: 15 * time.Minute}, c.RateGeneral)
	require.Equal(t, config.Rate{N: 10, Per: 15 * time.Minute}, c.RateAuth)
	require.Equal(t, config.Rate{N: 100, Per: 15 * time.Minute}, c.RateExpensive)
	require.Equal(t, config.Rate{N: 50, Per: 15 * time.Minute}, c.RateAdmin)
	require.Equal(t, config.Rate{N: 10, Per: time.Second}, c.RateWebhooks)
	require.Equal(t, config.Rate{N: 10, Per: 15 * time.Minute}, c.LoginLockout)
	require.Positive(t, c.PasswordHashes)
	require.Equal(t, 2*time.Second, c.PasswordHashWait)
	require.Equal(t, 20, c.StreamsPerPrincipal)
	require.Empty(t, c.TrustedProxies)
	require.Equal(t, config.SignupOpen, c.Signup)
	require.False(t, c.TLS())

	c, err = config.Load(env(map[string]string{
		"NOFX_DATA_DIR":        t.TempDir(),
		"NOFX_RATE_GENERAL":    "off",
		"NOFX_RATE_AUTH":       "5/m",
		"NOFX_RATE_WEBHOOKS":   " 20 / 1s ",
		"NOFX_LOGIN_LOCKOUT":   "OFF",
		"NOFX_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.7,::1",
		"NOFX_ALLOWED_HOSTS":   "NOFX.example.com, nofx.example.com:8443",
		"NOFX_SIGNUP":          "invite",
		"NOFX_BASE_URL":        "https://nofx.example.com/",
	}))
	require.NoError(t, err)
	require.True(t, c.RateGeneral.Off())
	require.Equal(t, "off", c.RateGeneral.String())
	require.Equal(t, config.Rate{N: 5, Per: time.Minute}, c.RateAuth)
	require.Equal(t, config.Rate{N: 20, Per: time.Second}, c.RateWebhooks)
	require.True(t, c.LoginLockout.Off())
	require.Len(t, c.TrustedProxies, 3)
	require.Equal(t, "192.0.2.7/32", c.TrustedProxies[1].String())
	require.Equal(t, "::1/128", c.TrustedProxies[2].String())
	require.Equal(t, []string{"nofx.example.com", "nofx.example.com:8443"}, c.AllowedHosts)
	require.Equal(t, config.SignupInvite, c.Signup)
	require.True(t, c.TLS())
}

func TestTeamConcurrency(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  map[string]string
		want int
	}{
		{"a quarter of the workers", map[string]string{"NOFX_WORKERS": "1000"}, 250},
		{"at least four", map[string]string{"NOFX_WORKERS": "8"}, 4},
		{"at least four on a web-only node", map[string]string{"NOFX_WORKERS": "0"}, 4},
		{"set", map[string]string{"NOFX_WORKERS": "1000", "NOFX_TEAM_CONCURRENCY": "7"}, 7},
		{"zero is no limit", map[string]string{"NOFX_TEAM_CONCURRENCY": "0"}, 0},
		{"the cap of workers", map[string]string{"NOFX_WORKERS": "10000"}, 2500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.env["NOFX_DATA_DIR"] = t.TempDir()
			c, err := config.Load(env(tc.env))
			require.NoError(t, err)
			require.Equal(t, tc.want, c.TeamConcurrency)
		})
	}
}

func TestMaxBodySizes(t *testing.T) {
	t.Parallel()
	for value, want := range map[string]int64{"64000": 64_000, "512K": 512_000, "2M": 2_000_000, "2 MB": 2_000_000, "1MiB": 1 << 20, "100M": 100_000_000} {
		c, err := config.Load(env(map[string]string{"NOFX_DATA_DIR": t.TempDir(), "NOFX_MAX_BODY": value}))
		require.NoError(t, err, value)
		require.Equal(t, want, c.MaxBody, value)
	}
}

func TestRunsListCacheSizes(t *testing.T) {
	t.Parallel()
	for value, want := range map[string]int64{"0": 0, "64K": 64_000, "16MiB": 16 << 20, "1G": 1_000_000_000} {
		c, err := config.Load(env(map[string]string{"NOFX_DATA_DIR": t.TempDir(), "NOFX_RUNS_LIST_CACHE": value}))
		require.NoError(t, err, value)
		require.Equal(t, want, c.RunsListCache, value)
	}
}

func TestGoodValues(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(map[string]string{
		"NOFX_DATA_DIR":        t.TempDir(),
		"NOFX_ADDR":            ":9090",
		"NOFX_WORKERS":         "0",
		"NOFX_DATABASE_URL":    "postgres://postgres@127.0.0.1/nofx",
		"NOFX_SESSION_SECRET":  "0123456789abcdef0123456789abcdef",
		"NOFX_SECRET_KEY":      "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		"NOFX_OPENAI_BASE_URL": "http://127.0.0.1:11434/v1",
		"NOFX_SMTP_URL":        "smtp://user:pass@mail.example.com:587",
		"NOFX_METRICS_TOKEN":   "0123456789abcdef0123",
		"NOFX_DATABASE_LISTEN": "off",
	}))
	require.NoError(t, err)
	require.False(t, c.DatabaseListen)
	require.Equal(t, "0123456789abcdef0123", c.MetricsToken)
	require.Equal(t, ":9090", c.Addr)
	require.Zero(t, c.Workers, "0 workers is a web-only node")
	require.Len(t, c.SecretKey, 32)
	require.False(t, c.SessionSecretGenerated)
}
