package nodes

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/logtest"
)

// While the database is away the heart logs one WARN, and one INFO when it
// is back, like every background loop.
func TestHeartLogsAnOutageOnceEachWay(t *testing.T) {
	proxy, d, _ := dbtest.PostgresBehindProxy(t)
	var logs logtest.Buffer
	h := &Heart{DB: d, Version: "test", Workers: 1, Running: func() int { return 0 }, Log: logs.Logger(), Every: 10 * time.Millisecond}
	require.NoError(t, h.Start(context.Background()))
	t.Cleanup(func() { _ = h.Stop(context.Background()) })

	proxy.Cut()
	require.Eventually(t, func() bool { return proxy.Refused() >= 20 }, 10*time.Second, 5*time.Millisecond, "beats during the outage")
	proxy.Restore()
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "database reachable again") }, 10*time.Second, 5*time.Millisecond)

	out := logs.String()
	require.Equal(t, 1, strings.Count(out, `msg="database unavailable; retrying" what="node heartbeat"`), out)
	require.Equal(t, 1, strings.Count(out, `msg="database reachable again" what="node heartbeat"`), out)
	require.NotContains(t, out, "node heartbeat failed")
}
