package db_test

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/lib/pq"
	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/db"
)

func TestUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"not found", db.ErrNotFound, false},
		{"a plain error", errors.New("boom"), false},
		{"a constraint", &pq.Error{Code: "23505"}, false},
		{"bad connection", fmt.Errorf("runs: list: %w", driver.ErrBadConn), true},
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"closed by the server", fmt.Errorf("auth: session: %w", io.EOF), true},
		{"connection failure", &pq.Error{Code: "08006"}, true},
		{"shutting down", fmt.Errorf("x: %w", &pq.Error{Code: "57P01"}), true},
		{"starting up", &pq.Error{Code: "57P03"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, db.Unavailable(tc.err))
		})
	}
}
