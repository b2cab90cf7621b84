package deployments_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/deployments"
	"github.com/nofxhq/nofx/internal/logtest"
)

// While the database is away the scheduler logs one WARN, and one INFO
// when it is back, not a line per pass.
func TestSchedulerLogsAnOutageOnceEachWay(t *testing.T) {
	proxy, d, _ := dbtest.PostgresBehindProxy(t)
	var logs logtest.Buffer
	svc := &deployments.Service{DB: d, Log: slog.New(slog.NewTextHandler(&logs, nil))}
	sc := &deployments.Scheduler{Service: svc, Every: 10 * time.Millisecond}
	sc.Start(context.Background())
	t.Cleanup(func() { require.NoError(t, sc.Stop(context.Background())) })

	proxy.Cut()
	require.Eventually(t, func() bool { return proxy.Refused() >= 20 }, 10*time.Second, 5*time.Millisecond, "passes during the outage")
	proxy.Restore()
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "database reachable again") }, 10*time.Second, 5*time.Millisecond)

	out := logs.String()
	require.Equal(t, 1, strings.Count(out, `msg="database unavailable; retrying" what=scheduler`), out)
	require.Equal(t, 1, strings.Count(out, `msg="database reachable again" what=scheduler`), out)
	require.NotContains(t, out, "scheduler: run due deployments")
}
