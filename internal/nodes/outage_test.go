package nodes

import (
	"context"
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

	out := proxy.LogsOutageOnce(t, &logs, "node heartbeat")
	require.NotContains(t, out, "node heartbeat failed")
}
