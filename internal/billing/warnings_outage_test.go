package billing_test

import (
	"context"
	"log/slog"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/billing"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/logtest"
	"github.com/nofxhq/nofx/internal/mail"
)

// While the database is away the usage-warning mailer logs one WARN, and
// one INFO when it is back.
func TestWarningMailerLogsAnOutageOnceEachWay(t *testing.T) {
	proxy, d, _ := dbtest.PostgresBehindProxy(t)
	var logs logtest.Buffer
	w := &billing.WarningMailer{DB: d, Mailer: &mail.Outbox{DB: d}, BaseURL: "http://nofx.test", Every: 10 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(&logs, nil))}
	w.Start(context.Background())
	t.Cleanup(w.Stop)

	out := proxy.LogsOutageOnce(t, &logs, "usage warnings")
	require.NotContains(t, out, `msg="email usage warnings"`)
}

// refusingMail is a mail server that cannot be reached.
type refusingMail struct{}

func (refusingMail) Send(context.Context, mail.Message) error {
	return &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
}

// A mail server's network error is the mail's problem, not the database
// being unavailable: the loop logs it as a mail failure.
func TestUnreachableMailServerIsNoDatabaseOutage(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		team := newTeam(t, d, "acme", "free")
		setLimits(t, d, "free", billing.PlanChange{Members: ptr(3)})
		require.NoError(t, billing.CheckMembers(ctx, d, team.ID, false)) // two members of three: crosses the warnings' thresholds
		var warnings int
		require.NoError(t, db.Get(ctx, d, &warnings, `SELECT COUNT(*) FROM usage_warnings WHERE team_id = ?`, team.ID))
		require.Positive(t, warnings)
		_, err := billing.DeliverWarnings(ctx, d, refusingMail{}, "http://nofx.test")
		require.ErrorContains(t, err, "connection refused")
		require.False(t, db.Unavailable(err), "%v", err)
	})
}
