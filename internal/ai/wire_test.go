package ai_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// testAPIKey is the key the providers under test are configured with.
const testAPIKey = "sk-test-0123456789abcdef"

// received is one request as a fake provider server saw it.
type received struct {
	Method string
	Path   string
	Header http.Header
	Body   map[string]any
}

// fakeServer is an httptest server that speaks a provider's wire format
// through handle and records the requests it gets.
type fakeServer struct {
	*httptest.Server
	requests atomic.Int32

	mu   sync.Mutex
	last received
}

// newFakeServer starts a server that records each request, decodes its JSON
// body, and passes it on to handle; it stops when the test ends.
func newFakeServer(t *testing.T, handle func(w http.ResponseWriter, r *http.Request)) *fakeServer {
	t.Helper()
	s := &fakeServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		var body map[string]any
		data, err := io.ReadAll(r.Body)
		if err == nil && len(data) > 0 {
			err = json.Unmarshal(data, &body)
		}
		if err != nil {
			http.Error(w, "bad request body: "+err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.last = received{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
		s.mu.Unlock()
		handle(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// lastRequest returns the last request the server got.
func (s *fakeServer) lastRequest() received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// startSSE writes the headers of an event stream.
func startSSE(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
}

// writeEvent writes one server-sent event, named when event is not empty,
// and flushes it to the client.
func writeEvent(w http.ResponseWriter, event, data string) {
	if event != "" {
		fmt.Fprintf(w, "event: %s\n", event)
	}
	fmt.Fprintf(w, "data: %s\n\n", data)
	w.(http.Flusher).Flush()
}

// hangUp closes the connection under w without ending the response, as a
// server or proxy that drops a stream does.
func hangUp(t *testing.T, w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	_ = conn.Close()
}

// waitForClient blocks until the client has gone, as a server that never
// answers does.
func waitForClient(r *http.Request) {
	<-r.Context().Done()
}

// refusedURL returns the URL of an address where nothing listens.
func refusedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return "http://" + addr
}

// writeJSON writes a JSON response with status and extra headers.
func writeJSON(w http.ResponseWriter, status int, header map[string]string, body string) {
	for k, v := range header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}
