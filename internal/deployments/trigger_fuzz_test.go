package deployments

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func FuzzVerifySignature(f *testing.F) {
	const ts = 1795780800 // 2026-11-27 12:00 UTC
	body := []byte(`{"title":"Hello"}`)
	good := Sign("whsec_test", ts, body)
	for _, seed := range []struct {
		secret, otherSecret string
		ts                  int64
		body, otherBody     []byte
		timestamp, sig      string
		flip                uint8
	}{
		{"whsec_test", "whsec_other", ts, body, []byte(`{"title":"Hellp"}`), "1795780800", good, 0},
		{"whsec_test", "whsec_test\x00", ts, body, body, " 1795780800 ", " " + good + " ", 63},
		{"whsec_test", "", ts, body, nil, "1795780800", strings.ToUpper(good), 1},
		{"", "x", 0, nil, []byte{}, "0", Sign("", 0, nil), 2},
		{"whsec_test", "whsec_test", -1, body, body, "-1", good, 3},
		{"k", "K", 1<<63 - 1, body, body, "9223372036854775807", Sign("k", 1<<63-1, body), 4},
		{"k", "k ", -1 << 63, body, body, "-9223372036854775808", Sign("k", -1<<63, body), 5},
		{"whsec_test", "whsec_tesu", ts, body, body, "+1795780800", good, 6},
		{"whsec_test", strings.Repeat("s", 65), ts, body, body, "1795780800.0", good, 7},
		{"whsec_test", "whsec_other", ts, body, body, "1795780800", "sha256=", 8},
		{"whsec_test", "whsec_other", ts, body, body, "1795780800", "sha256=" + strings.Repeat("0", 63), 9},
		{"whsec_test", "whsec_other", ts, body, body, "1795780800", "sha256=" + strings.Repeat("zz", 32), 10},
		{"whsec_test", "whsec_other", ts, body, body, "1795780800", good[len("sha256="):], 11},
		{"whsec_test", "whsec_other", ts, body, body, "", "", 12},
		{"whsec_test", "whsec_other", ts, body, body, "1795780499", Sign("whsec_test", 1795780499, body), 13},
	} {
		f.Add(seed.secret, seed.otherSecret, seed.ts, seed.body, seed.otherBody, seed.timestamp, seed.sig, seed.flip)
	}
	f.Fuzz(func(t *testing.T, secret, otherSecret string, ts int64, body, otherBody []byte, timestamp, sig string, flip uint8) {
		now := time.Unix(ts, 0)
		stamp := strconv.FormatInt(ts, 10)
		good := Sign(secret, ts, body)
		requireBad := func(err error, what string) {
			t.Helper()
			require.ErrorIs(t, err, ErrBadSignature, what)
			require.NotErrorIs(t, err, ErrStale, what)
		}

		// A delivery signed as documented is accepted when it is fresh.
		require.Regexp(t, `^sha256=[0-9a-f]{64}$`, good)
		require.NoError(t, VerifySignature(secret, stamp, good, body, now))

		// Any change to what was signed is refused.
		if !bytes.Equal(body, otherBody) {
			requireBad(VerifySignature(secret, stamp, good, otherBody, now), "another body")
		}
		if other := ts ^ (1 << (flip % 63)); other != ts {
			requireBad(VerifySignature(secret, strconv.FormatInt(other, 10), good, body, time.Unix(other, 0)), "another timestamp")
		}
		// HMAC pads a short key with zero bytes, so "k" and "k\x00" are one
		// key; webhook secrets are "whsec_" and base64, never a zero byte.
		if strings.TrimRight(secret, "\x00") != strings.TrimRight(otherSecret, "\x00") {
			requireBad(VerifySignature(otherSecret, stamp, good, body, now), "another secret")
		}
		hexSum := []byte(strings.TrimPrefix(good, "sha256="))
		i := int(flip) % len(hexSum)
		hexSum[i] = "0123456789abcdef"[(strings.IndexByte("0123456789abcdef", hexSum[i])+1+int(flip)%15)%16]
		requireBad(VerifySignature(secret, stamp, "sha256="+string(hexSum), body, now), "another signature")

		// Fresh means within WebhookTolerance of now, either way.
		if ts > -1<<40 && ts < 1<<40 {
			tol := int64(WebhookTolerance / time.Second)
			require.NoError(t, VerifySignature(secret, stamp, good, body, time.Unix(ts+tol, 0)))
			require.NoError(t, VerifySignature(secret, stamp, good, body, time.Unix(ts-tol, 0)))
			require.ErrorIs(t, VerifySignature(secret, stamp, good, body, time.Unix(ts+tol+1, 0)), ErrStale)
			require.ErrorIs(t, VerifySignature(secret, stamp, good, body, time.Unix(ts-tol-1, 0)), ErrStale)
		}

		// Whatever the headers, the answer is yes, stale or bad; a yes only
		// for the right signature of a fresh timestamp.
		err := VerifySignature(secret, timestamp, sig, body, now)
		if err == nil {
			n, perr := strconv.ParseInt(strings.TrimSpace(timestamp), 10, 64)
			require.NoError(t, perr)
			require.True(t, strings.EqualFold(strings.TrimSpace(sig), Sign(secret, n, body)), "accepted %q for %q", sig, timestamp)
			d := now.Sub(time.Unix(n, 0))
			require.True(t, d <= WebhookTolerance && d >= -WebhookTolerance, "accepted a timestamp %s from now", d)
			return
		}
		require.True(t, errors.Is(err, ErrBadSignature) || errors.Is(err, ErrStale), "unexpected error %v", err)
	})
}
