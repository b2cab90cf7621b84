package dbtest

import (
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/logtest"
)

// Proxy is a TCP proxy between the app and PostgreSQL that a test can cut
// (every connection closed, new ones refused) and restore, to play a
// database restart or a network blip without touching the server.
type Proxy struct {
	t      testing.TB
	target string
	ln     net.Listener
	addr   string

	mu      sync.Mutex
	cut     bool
	conns   map[net.Conn]bool
	refused int
}

// NewProxy proxies to the PostgreSQL of rawURL and returns the proxy and a
// URL like rawURL whose connections go through it.
func NewProxy(t testing.TB, rawURL string) (*Proxy, string) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("dbtest: proxy: %v", err)
	}
	p := &Proxy{t: t, target: u.Host, conns: map[net.Conn]bool{}}
	if p.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatalf("dbtest: proxy: %v", err)
	}
	p.addr = p.ln.Addr().String()
	t.Cleanup(func() { p.ln.Close(); p.Cut() })
	go p.accept()
	u.Host = p.addr
	return p, u.String()
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.refused++
			p.mu.Unlock()
			c.Close() // refused while cut
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *Proxy) pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// Cut closes every connection through the proxy and refuses new ones until
// Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
}

// Restore lets connections through again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

// Refused is how many connections the proxy refused while cut: how often
// the app tried to reach the database meanwhile.
func (p *Proxy) Refused() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refused
}

// PostgresBehindProxy is a migrated PostgreSQL schema of this test reached
// through a Proxy the test can cut, and the URL that reaches the same
// schema directly.
func PostgresBehindProxy(t testing.TB) (*Proxy, *db.DB, string) {
	t.Helper()
	direct := PostgresURL(t)
	p, via := NewProxy(t, direct)
	return p, open(t, via), direct
}

// LogsOutageOnce cuts the proxy until it has refused 20 connections (a
// background loop's passes during the outage), restores it, and checks
// that the loop logged as db.Outage does: one WARN when the database went
// away and one INFO when it came back, for what. It returns the log, for
// the caller's own checks.
func (p *Proxy) LogsOutageOnce(t testing.TB, logs *logtest.Buffer, what string) string {
	t.Helper()
	p.Cut()
	require.Eventually(t, func() bool { return p.Refused() >= 20 }, 10*time.Second, 5*time.Millisecond, "passes during the outage")
	p.Restore()
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "database reachable again") }, 10*time.Second, 5*time.Millisecond)
	if strings.ContainsAny(what, " =\"") {
		what = strconv.Quote(what) // as slog's text handler writes it
	}
	out := logs.String()
	require.Equal(t, 1, strings.Count(out, `msg="database unavailable; retrying" what=`+what), out)
	require.Equal(t, 1, strings.Count(out, `msg="database reachable again" what=`+what), out)
	return out
}
