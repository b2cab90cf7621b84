package db

import (
	"errors"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
)

// ErrLocked is a write refused at once because the SQLite file was found
// locked by another connection (a backup, another tool) a moment ago: it
// reads as the database being unavailable (Unavailable).
var ErrLocked = errors.New("db: the SQLite file is locked by another connection")

// lockedHold is how long writes fail at once after one waited out its whole
// busy timeout in vain.
const lockedHold = time.Second

// fileLock makes the SQLite writer's calls fail at once for lockedHold
// after one found the file locked for its whole busy timeout. The writer
// has one connection: without it, every write queued for that connection
// would wait the busy timeout in turn, and a request behind ten of them
// would wait ten busy timeouts for its 503. The first call after the hold
// tries the file again.
type fileLock struct{ until atomic.Int64 }

// check refuses a call while the hold lasts.
func (l *fileLock) check() error {
	if l != nil && time.Now().UnixNano() < l.until.Load() {
		return ErrLocked
	}
	return nil
}

// observe starts the hold after a call that got SQLITE_BUSY.
func (l *fileLock) observe(err error) {
	if l == nil || err == nil {
		return
	}
	if se, ok := errors.AsType[*sqlite.Error](err); ok && se.Code()&0xff == 5 { // SQLITE_BUSY
		l.until.Store(time.Now().Add(lockedHold).UnixNano())
	}
}
