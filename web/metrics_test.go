package web_test

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// /metrics passes promtool's lint, carries the health gauges, and no label
// holds a number that could be an id (a team, a user, a run).
func TestMetricsPassPromtool(t *testing.T) {
	t.Parallel()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not installed (Debian package prometheus), and CI=true requires this test")
		}
		t.Skip("promtool is not installed; skipping")
	}
	a := newApp(t)
	admin := a.client()
	admin.signUp("admin@example.com", password)
	c := &apiClient{t: t, app: a, key: a.keyFor("admin@example.com")}
	res := c.do(http.MethodPost, "/api/v1/runs", `{"prompt":"hi","provider":"simulated","model":"echo"}`)
	require.Equal(t, http.StatusCreated, res.StatusCode)
	c.waitRun(decode[apiRun](t, res).ID, "succeeded")

	body := admin.get("/metrics").Body
	for _, name := range []string{`nofx_steps{state="queued"}`, `nofx_queue_oldest_seconds`, `nofx_nodes{state="live"} 1`,
		`nofx_dead_letters 0`, `nofx_db_connections{state="in_use"}`, `nofx_rate_limited_total`, `nofx_provider_calls_total`,
		`nofx_runs_list_cache_hits_total`, `nofx_runs_list_cache_bytes`} {
		require.True(t, strings.Contains(body, name), "/metrics has no %s", name)
	}
	labels := regexp.MustCompile(`\{[^}]*="[0-9]+"[^}]*\}`)
	for _, line := range bytes.Split([]byte(body), []byte("\n")) {
		if bytes.HasPrefix(line, []byte("#")) || bytes.Contains(line, []byte(`code="`)) || bytes.Contains(line, []byte(`le="`)) ||
			bytes.Contains(line, []byte(`quantile="`)) || bytes.Contains(line, []byte(`version="`)) {
			continue
		}
		require.False(t, labels.Match(line), "a label holds a number: %s", line)
	}

	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewBufferString(body)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "promtool check metrics:\n%s", out)
}
