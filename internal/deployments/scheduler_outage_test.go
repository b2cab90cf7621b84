package deployments_test

import (
	"context"
	"log/slog"
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

	out := proxy.LogsOutageOnce(t, &logs, "scheduler")
	require.NotContains(t, out, "scheduler: run due deployments")
}
