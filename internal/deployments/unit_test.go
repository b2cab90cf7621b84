package deployments

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/nofxhq/nofx/internal/templates"
)

func TestVerifySignature(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	secret, body := "whsec_test", []byte(`{"title":"Hello"}`)
	ts := now.Unix()
	good := Sign(secret, ts, body)
	require.Regexp(t, `^sha256=[0-9a-f]{64}$`, good)

	for _, tc := range []struct {
		name      string
		timestamp string
		signature string
		body      []byte
		want      error
	}{
		{name: "valid", timestamp: strconv.FormatInt(ts, 10), signature: good, body: body},
		{name: "valid at the edge of the window", timestamp: strconv.FormatInt(ts-300, 10), signature: Sign(secret, ts-300, body), body: body},
		{name: "another secret", timestamp: strconv.FormatInt(ts, 10), signature: Sign("whsec_other", ts, body), body: body, want: ErrBadSignature},
		{name: "altered body", timestamp: strconv.FormatInt(ts, 10), signature: good, body: []byte(`{"title":"Hellp"}`), want: ErrBadSignature},
		{name: "altered timestamp", timestamp: strconv.FormatInt(ts+1, 10), signature: good, body: body, want: ErrBadSignature},
		{name: "no signature", timestamp: strconv.FormatInt(ts, 10), signature: "", body: body, want: ErrBadSignature},
		{name: "no prefix", timestamp: strconv.FormatInt(ts, 10), signature: good[len("sha256="):], body: body, want: ErrBadSignature},
		{name: "not hex", timestamp: strconv.FormatInt(ts, 10), signature: "sha256=zz", body: body, want: ErrBadSignature},
		{name: "short", timestamp: strconv.FormatInt(ts, 10), signature: good[:20], body: body, want: ErrBadSignature},
		{name: "no timestamp", timestamp: "", signature: good, body: body, want: ErrBadSignature},
		{name: "timestamp in milliseconds text", timestamp: "1.5", signature: good, body: body, want: ErrBadSignature},
		{name: "stale", timestamp: strconv.FormatInt(ts-301, 10), signature: Sign(secret, ts-301, body), body: body, want: ErrStale},
		{name: "from the future", timestamp: strconv.FormatInt(ts+301, 10), signature: Sign(secret, ts+301, body), body: body, want: ErrStale},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifySignature(secret, tc.timestamp, tc.signature, tc.body, now)
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.want)
			if errors.Is(tc.want, ErrBadSignature) {
				require.NotErrorIs(t, err, ErrStale, "a wrong signature says nothing about time")
			}
		})
	}
}

func TestNextTickInTimeZone(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)
	_, weekdays, err := ParseSchedule("0  9 * * 1-5")
	require.NoError(t, err)

	// Friday 27 November 2026, 10:00 UTC is 11:00 in Paris (UTC+1): the
	// next weekday 9:00 is Monday's, at 8:00 UTC.
	next := NextTick(weekdays, paris, time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC))
	require.Equal(t, time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC), next)
	require.Equal(t, time.UTC, next.Location())

	// Summer time starts on 29 March 2026: 9:00 in Paris is 7:00 UTC.
	_, daily, err := ParseSchedule("0 9 * * *")
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 3, 28, 8, 0, 0, 0, time.UTC), NextTick(daily, paris, time.Date(2026, 3, 27, 12, 0, 0, 0, time.UTC)))
	require.Equal(t, time.Date(2026, 3, 29, 7, 0, 0, 0, time.UTC), NextTick(daily, paris, time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC)))
	require.Equal(t, time.Date(2026, 3, 29, 9, 0, 0, 0, time.UTC), NextTick(daily, time.UTC, time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC)))

	// A tick is strictly after the time given.
	_, everyMinute, err := ParseSchedule("* * * * *")
	require.NoError(t, err)
	at := time.Date(2026, 11, 27, 12, 1, 0, 0, time.UTC)
	require.Equal(t, at.Add(time.Minute), NextTick(everyMinute, time.UTC, at))

	// After downtime, the latest missed tick runs.
	require.Equal(t, time.Date(2026, 11, 27, 12, 5, 0, 0, time.UTC),
		latestTick(everyMinute, time.UTC, at, time.Date(2026, 11, 27, 12, 5, 30, 0, time.UTC)))
	require.Equal(t, at, latestTick(everyMinute, time.UTC, at, at.Add(59*time.Second)))
}

func TestParseSchedule(t *testing.T) {
	norm, _, err := ParseSchedule("  */15   9-17 * * MON-FRI ")
	require.NoError(t, err)
	require.Equal(t, "*/15 9-17 * * MON-FRI", norm)
	for _, bad := range []string{
		"", "* * * *", "0 0 * * * *", "61 * * * *", "@daily", "@every 5m * * * *",
		"CRON_TZ=UTC * * * *", "TZ=UTC", "0 0 30 2 *", "x y z w v",
	} {
		_, _, err := ParseSchedule(bad)
		require.Error(t, err, "%q", bad)
	}
}

func TestMapInputs(t *testing.T) {
	inputs := []templates.Input{{Name: "title", Type: templates.InputText}, {Name: "count", Type: templates.InputNumber}, {Name: "absent", Type: templates.InputText}}
	payload := map[string]any{
		"title":        "top",
		"count":        float64(3),
		"extra":        "ignored",
		"pull_request": map[string]any{"title": "nested", "head": map[string]any{"ref": "main"}},
	}
	require.Equal(t, map[string]any{"title": "top", "count": float64(3)}, MapInputs(payload, nil, inputs),
		"by default top-level keys of declared inputs, nothing else")
	require.Equal(t, map[string]any{"title": "nested", "count": float64(3)},
		MapInputs(payload, map[string]string{"title": "pull_request.title", "absent": "pull_request.missing"}, inputs))
	require.Equal(t, map[string]any{"title": "main", "count": float64(3)},
		MapInputs(payload, map[string]string{"title": "pull_request.head.ref"}, inputs))

	m, err := ParseInputMap(`{"title":"pull_request.title"}`)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"title": "pull_request.title"}, m)
	for _, bad := range []string{`[]`, `{"title": 3}`, `{"title": ""}`, `{"title": "a..b"}`, `{"title": ".a"}`, `not json`} {
		_, err := ParseInputMap(bad)
		require.Error(t, err, bad)
	}
	m, err = ParseInputMap("  ")
	require.NoError(t, err)
	require.Empty(t, m)
}
