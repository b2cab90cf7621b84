package db

import (
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/lib/pq"
	"modernc.org/sqlite"
)

// Unavailable reports whether err says the database could not be reached
// or used for now (a connection refused or cut, PostgreSQL shutting down or
// starting, SQLite's file locked past busy_timeout), rather than that the
// request itself was wrong: the answer is "try again", not a failure.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	// lib/pq answers a connection the server (or a proxy) closed with a
	// bare io.EOF; database/sql turns a query's normal end into nil or
	// sql.ErrNoRows, so an EOF that reaches here is a lost connection.
	if errors.Is(err, ErrLocked) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	if ne, ok := errors.AsType[*net.OpError](err); ok && ne != nil {
		return true
	}
	if pe, ok := errors.AsType[*pq.Error](err); ok {
		code := string(pe.Code)
		// 08: connection exceptions; 57P01-57P03: shutting down, crashed,
		// not accepting connections yet.
		return strings.HasPrefix(code, "08") || code == "57P01" || code == "57P02" || code == "57P03"
	}
	if se, ok := errors.AsType[*sqlite.Error](err); ok {
		switch se.Code() & 0xff { // the primary code of an extended one
		case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
			return true
		}
	}
	return false
}
