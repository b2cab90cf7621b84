package web_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nofxhq/nofx/internal/apikeys"
	nofx "github.com/nofxhq/nofx/internal/app"
	"github.com/nofxhq/nofx/internal/auth"
	"github.com/nofxhq/nofx/internal/config"
	"github.com/nofxhq/nofx/internal/db/dbtest"
	"github.com/nofxhq/nofx/internal/live"
	"github.com/nofxhq/nofx/internal/teams"
)

// BenchmarkAPIRunsList measures GET /api/v1/runs (50 finished runs) against
// GET /api/v1/me through the real router and middleware, in process: the
// ratio of their times is the figure to watch, as the machine is shared.
func BenchmarkAPIRunsList(b *testing.B) {
	onBenchDatabases(b, func(b *testing.B, name string) {
		h, key := benchApp(b, name)
		b.Run("me", func(b *testing.B) { benchRequests(b, h, key, http.MethodGet, "/api/v1/me", "", http.StatusOK) })
		b.Run("runs", func(b *testing.B) { benchRequests(b, h, key, http.MethodGet, "/api/v1/runs", "", http.StatusOK) })
	})
}

// BenchmarkAPIRunsCreate measures POST /api/v1/runs (a one-step prompt
// run) against GET /api/v1/me through the real router, in process, on a
// node without workers, so that only the creation is measured.
func BenchmarkAPIRunsCreate(b *testing.B) {
	onBenchDatabases(b, func(b *testing.B, name string) {
		h, key := benchAppWith(b, name, 0)
		b.Run("me", func(b *testing.B) { benchRequests(b, h, key, http.MethodGet, "/api/v1/me", "", http.StatusOK) })
		b.Run("runs", func(b *testing.B) {
			benchRequests(b, h, key, http.MethodPost, "/api/v1/runs", `{"prompt":"bench run"}`, http.StatusCreated)
		})
	})
}

// onBenchDatabases runs fn on SQLite, and on PostgreSQL when
// NOFX_TEST_DATABASE_URL is set.
func onBenchDatabases(b *testing.B, fn func(b *testing.B, name string)) {
	names := []string{"sqlite"}
	if os.Getenv("NOFX_TEST_DATABASE_URL") != "" {
		names = append(names, "postgres")
	}
	for _, name := range names {
		b.Run(name, func(b *testing.B) { fn(b, name) })
	}
}

// benchRequests sends the request to h with the key, from as many
// goroutines as GOMAXPROCS, expecting status want.
func benchRequests(b *testing.B, h http.Handler, key, method, path, body string, want int) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(method, path, strings.NewReader(body))
			if body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			req.RemoteAddr = "127.0.0.1:5000"
			req.Header.Set("Authorization", "Bearer "+key)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != want {
				b.Errorf("%s %s: %d %s", method, path, rec.Code, rec.Body) // Fatal only from the benchmark's own goroutine
				return
			}
		}
	})
}

// benchApp starts NOFX on a fresh database with one team holding 50
// finished runs, and returns its handler and an owner's API key.
func benchApp(b *testing.B, name string) (http.Handler, string) {
	return benchAppWith(b, name, 8)
}

// benchAppWith is benchApp with that many workers; without any, the 50
// runs stay queued.
func benchAppWith(b *testing.B, name string, workers int) (http.Handler, string) {
	b.Helper()
	url := dbtest.SQLiteURL(b)
	if name == "postgres" {
		url = dbtest.PostgresURL(b)
	}
	cfg := &config.Config{DatabaseURL: url, DataDir: b.TempDir(), Workers: workers, RunsListCache: config.DefaultRunsListCache,
		SessionSecret: []byte("bench-session-secret-0123456789abcdef"), SecretKey: []byte("bench-secret-key-0123456789abcde"),
		LogFormat: "text", LogLevel: "error"}
	ctx := context.Background()
	a, err := nofx.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), true, nofx.Tuning{PollInterval: 20 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close(context.Background()) })
	// The bench measures the server, not the free plan's API limit.
	if _, err := a.DB.ExecContext(ctx, `UPDATE plans SET api_per_minute = -1, runs_per_month = -1`); err != nil {
		b.Fatal(err)
	}
	user, team, err := a.Auth.SignUp(ctx, auth.SignUp{Email: "bench@example.com", Password: "correct horse battery"})
	if err != nil {
		b.Fatal(err)
	}
	_, key, err := apikeys.Create(ctx, a.DB, team.ID, "bench", teams.RoleOwner, user.ID, nil)
	if err != nil {
		b.Fatal(err)
	}
	h := a.Web.Handler()
	changes, unsubscribe := a.Broker.Subscribe(live.TeamTopic(team.ID)) // each run's changes, to wait on
	defer unsubscribe()
	for i := range 50 {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/runs", strings.NewReader(fmt.Sprintf(`{"prompt":"bench run %d"}`, i)))
		req.RemoteAddr = "127.0.0.1:5000"
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusCreated {
			b.Fatalf("create: %d %s", rec.Code, rec.Body)
		}
	}
	deadline := time.After(time.Minute)
	for workers > 0 {
		var open int
		if err := a.DB.GetContext(ctx, &open, a.DB.Rebind(`SELECT COUNT(*) FROM runs WHERE finished_at IS NULL`)); err != nil {
			b.Fatal(err)
		}
		if open == 0 {
			break
		}
		select {
		case <-changes:
		case <-time.After(time.Second): // a change heard before subscribing, or lost
		case <-deadline:
			b.Fatalf("%d runs still open", open)
		}
	}
	return h, key
}
