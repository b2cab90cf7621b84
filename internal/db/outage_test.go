package db_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/db"
)

// An outage is one WARN when it starts and one INFO when it ends, however
// many tries fail in between; other errors are the caller's to log.
func TestOutageLogsOneLineEachWay(t *testing.T) {
	var buf bytes.Buffer
	o := &db.Outage{Log: slog.New(slog.NewTextHandler(&buf, nil)), What: "test loop"}
	down := &syscallErr{syscall.ECONNREFUSED}

	require.False(t, o.Observe(nil))
	for range 50 {
		require.True(t, o.Observe(down))
	}
	require.True(t, o.Down())
	require.False(t, o.Observe(errors.New("a constraint failed")), "another error is not an outage")
	require.False(t, o.Down(), "the database answered")
	require.False(t, o.Observe(nil))
	require.True(t, o.Observe(down))
	require.False(t, o.Observe(nil))

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 4, buf.String())
	require.Contains(t, lines[0], "level=WARN")
	require.Contains(t, lines[0], `what="test loop"`)
	require.Contains(t, lines[1], "level=INFO")
	require.Contains(t, lines[1], "failed_tries=50")
	require.Contains(t, lines[2], "level=WARN")
	require.Contains(t, lines[3], "failed_tries=1")
}

type syscallErr struct{ errno syscall.Errno }

func (e *syscallErr) Error() string { return "dial: " + e.errno.Error() }
func (e *syscallErr) Unwrap() error { return e.errno }
