package deployments_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/deployments"
)

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// While the database is away the scheduler logs one WARN, and one INFO
// when it is back, not a line per pass.
func TestSchedulerLogsAnOutageOnceEachWay(t *testing.T) {
	proxy, d, _ := dbtest.PostgresBehindProxy(t)
	var logs lockedBuffer
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
