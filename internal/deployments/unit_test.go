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

func TestNextTickAcrossDaylightSaving(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	z := func(month time.Month, day, h, m int) time.Time {
		return time.Date(2026, month, day, h, m, 0, 0, time.UTC)
	}
	// ticks lists the ticks of expr in New York from from, up to to.
	ticks := func(t *testing.T, expr string, from, to time.Time) []time.Time {
		t.Helper()
		_, sched, err := ParseSchedule(expr)
		require.NoError(t, err)
		var out []time.Time
		for at := NextTick(sched, ny, from); !at.After(to); at = NextTick(sched, ny, at) {
			require.Equal(t, time.UTC, at.Location())
			out = append(out, at)
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		expr     string
		from, to time.Time
		want     []time.Time
	}{{
		name: "normal days: 9:30 EST is 14:30 UTC",
		expr: "30 9 * * *", from: z(11, 27, 0, 0), to: z(11, 29, 23, 0),
		want: []time.Time{z(11, 27, 14, 30), z(11, 28, 14, 30), z(11, 29, 14, 30)},
	}, {
		name: "clocks go back on 1 November: 1:30 runs once, at 1:30 EDT",
		expr: "30 1 * * *", from: z(10, 31, 0, 0), to: z(11, 2, 12, 0),
		want: []time.Time{z(10, 31, 5, 30), z(11, 1, 5, 30), z(11, 2, 6, 30)},
	}, {
		name: "clocks go back: every minute of hour 1 runs once per wall minute",
		expr: "*/20 1 * * *", from: z(11, 1, 4, 0), to: z(11, 1, 12, 0),
		want: []time.Time{z(11, 1, 5, 0), z(11, 1, 5, 20), z(11, 1, 5, 40)},
	}, {
		name: "clocks go forward on 8 March: 2:30 does not exist and runs at 3:30 EDT",
		expr: "30 2 * * *", from: z(3, 7, 0, 0), to: z(3, 9, 12, 0),
		want: []time.Time{z(3, 7, 7, 30), z(3, 8, 7, 30), z(3, 9, 6, 30)},
	}, {
		name: "clocks go forward: 1:30 and 3:30 are an hour apart in real time",
		expr: "30 1,3 * * *", from: z(3, 8, 0, 0), to: z(3, 8, 12, 0),
		want: []time.Time{z(3, 8, 6, 30), z(3, 8, 7, 30)},
	}, {
		name: "every hour keeps real time when clocks go back: 1:30 twice",
		expr: "30 * * * *", from: z(11, 1, 4, 0), to: z(11, 1, 7, 0),
		want: []time.Time{z(11, 1, 4, 30), z(11, 1, 5, 30), z(11, 1, 6, 30)},
	}, {
		name: "every two hours keeps real time when clocks go forward",
		expr: "0 */2 * * *", from: z(3, 8, 4, 0), to: z(3, 8, 9, 0),
		want: []time.Time{z(3, 8, 5, 0), z(3, 8, 8, 0)},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, ticks(t, tc.expr, tc.from, tc.to))
		})
	}
}

func TestLatestTickAfterLongDowntime(t *testing.T) {
	_, everyMinute, err := ParseSchedule("* * * * *")
	require.NoError(t, err)
	now := time.Date(2026, 11, 27, 12, 34, 56, 0, time.UTC)
	stored := now.AddDate(-1, 0, 0).Truncate(time.Minute)
	require.Equal(t, time.Date(2026, 11, 27, 12, 34, 0, 0, time.UTC), latestTick(everyMinute, time.UTC, stored, now))
	require.Equal(t, time.Date(2026, 11, 27, 12, 34, 0, 0, time.UTC), latestTick(everyMinute, time.UTC, stored.AddDate(-2, 0, 0), now),
		"more missed ticks than a step-by-step catch-up allows")

	_, mornings, err := ParseSchedule("*/5 9 * * 1-5")
	require.NoError(t, err)
	// Friday 27 November 2026: the last tick was Friday 9:55.
	require.Equal(t, time.Date(2026, 11, 27, 9, 55, 0, 0, time.UTC), latestTick(mornings, time.UTC, stored, now))
	// Never a tick before the stored one.
	due := time.Date(2026, 11, 27, 12, 34, 30, 0, time.UTC)
	require.Equal(t, due, latestTick(everyMinute, time.UTC, due, now))
}
