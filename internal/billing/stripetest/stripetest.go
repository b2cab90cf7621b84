// Package stripetest starts stripe-mock for tests and signs webhook events
// as Stripe would.
package stripetest

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"
)

// binary finds stripe-mock on PATH or in Go's bin directory.
func binary() string {
	if p, err := exec.LookPath("stripe-mock"); err == nil {
		return p
	}
	for _, dir := range []string{os.Getenv("GOBIN"), filepath.Join(os.Getenv("GOPATH"), "bin"), filepath.Join(os.Getenv("HOME"), "go", "bin")} {
		if dir == "" {
			continue
		}
		if p := filepath.Join(dir, "stripe-mock"); fileExists(p) {
			return p
		}
	}
	return ""
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// Start runs stripe-mock on 127.0.0.1 for the test and returns its base
// URL. Without stripe-mock the test is skipped, except on CI (CI=true),
// where that is a failure.
func Start(t testing.TB) string {
	t.Helper()
	path := binary()
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("stripe-mock is not installed, and CI=true requires the Stripe tests (go install github.com/stripe/stripe-mock@v0.203.0)")
		}
		t.Skip("stripe-mock is not installed; skipping the Stripe test")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, path, "-http-addr", "127.0.0.1:", "-https-addr", "127.0.0.1:")
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start stripe-mock: %v", err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "Listening for HTTP at address: "); ok {
				addr <- a
			}
		}
	}()
	select {
	case a := <-addr:
		return "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatal("stripe-mock did not start listening within 30s")
	}
	return ""
}

// Event is a Stripe event of type typ about object, as Stripe sends it,
// created at created.
func Event(t testing.TB, id, typ string, created time.Time, object map[string]any) []byte {
	t.Helper()
	raw, err := json.Marshal(object)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]any{
		"id": id, "object": "event", "type": typ, "api_version": stripe.APIVersion, "created": created.Unix(),
		"livemode": false, "pending_webhooks": 1, "data": map[string]any{"object": json.RawMessage(raw)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Sign returns the Stripe-Signature header of payload signed with secret
// at ts.
func Sign(payload []byte, secret string, ts time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: ts}).Header
}
