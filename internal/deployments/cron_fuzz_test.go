package deployments

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// cronFuzzZones are the time zones FuzzParseSchedule reads schedules in:
// no daylight saving, an hour of it either way, half an hour of it, and an
// offset of 5:45.
var cronFuzzZones = []string{"UTC", "America/New_York", "Europe/London", "Australia/Lord_Howe", "Australia/Sydney", "Asia/Kathmandu"}

func FuzzParseSchedule(f *testing.F) {
	const spring = 1742108400 // 2025-03-16, a week before European clocks go forward
	for _, expr := range []string{
		"* * * * *", "0 9 * * 1-5", "  */15   9-17 * * MON-FRI ", "30 2 * * *", "0 1 * * 0",
		"0 0 29 2 *", "0 0 31 * *", "0 0 30 2 *", "0 0 31 4 *", "59 23 31 12 *",
		"*/0 * * * *", "0 */0 * * *", "0-59/60 * * * *", "1-0 * * * *", "60 * * * *", "0 24 * * *",
		"0 0 0 * *", "0 0 * 0 *", "0 0 * 13 *", "0 0 * * 8", "0 0 * * 7", "? ? ? ? ?", "?/5 ?/2 * * *",
		"@daily", "@every 1m", "TZ=UTC 0 9 * * *", "CRON_TZ=Europe/Paris 0 9 * * *", "= = = = =",
		"0 9 * * MON-FRI,SUN", "0 9 * JAN-DEC/3 *", "0 9 L * *", "0 9 * * 5L", "0 9 * * 1#2", "0 9 15W * *",
		"9223372036854775807 * * * *", "-1 * * * *", "1-2-3 * * * *", "*/4294967296 * * * *", "0,,1 * * * *",
		"", "* * * *", "* * * * * *", "\t*\n*\u00a0*\u3000* *", "١ * * * *",
	} {
		f.Add(expr, int64(spring), uint8(0), uint32(60))
	}
	f.Add("30 2 * * *", int64(1743292800), uint8(2), uint32(1440))  // London's spring forward
	f.Add("30 1 * * *", int64(1761436800), uint8(2), uint32(1440))  // and fall back
	f.Add("*/30 * * * *", int64(1743872400), uint8(3), uint32(300)) // Lord Howe's half hour
	f.Add("0 9 * * 1-5", int64(946684800), uint8(1), uint32(1_000_000))

	f.Fuzz(checkSchedule)
}

// checkSchedule is FuzzParseSchedule's check of one expression, read in
// one zone, from the minute unix gives, with now that many minutes later.
func checkSchedule(t *testing.T, expr string, unix int64, zone uint8, minutes uint32) {
	norm, sched, err := ParseSchedule(expr)
	if err != nil {
		require.Nil(t, sched)
		require.NotEmpty(t, err.Error())
		return
	}
	require.Equal(t, strings.Join(strings.Fields(expr), " "), norm)
	again, _, err := ParseSchedule(norm)
	require.NoError(t, err, "the normalized schedule %q parses", norm)
	require.Equal(t, norm, again)

	loc, err := time.LoadLocation(cronFuzzZones[int(zone)%len(cronFuzzZones)])
	require.NoError(t, err)
	// Somewhere from 2000 to 2100, on a minute.
	const from, span = 946684800, 100 * 365 * 24 * 3600
	at := time.Unix(from+((unix%span)+span)%span, 0).Truncate(time.Minute)

	tick := NextTick(sched, loc, at)
	if tick.IsZero() {
		return // nothing within five years of at
	}
	require.True(t, tick.After(at), "NextTick(%s) = %s, not after it", at, tick)
	require.Equal(t, time.UTC, tick.Location())
	next := NextTick(sched, loc, tick)
	require.True(t, next.IsZero() || next.After(tick), "the tick after %s is %s", tick, next)

	// Catching up after downtime: the latest tick due, never one before
	// the stored one, and the next one still to come.
	now := tick.Add(time.Duration(minutes%(2*366*24*60)) * time.Minute).Add(30 * time.Second)
	latest := latestTick(sched, loc, tick, now)
	require.False(t, latest.Before(tick), "latest tick %s is before the stored %s", latest, tick)
	require.False(t, latest.After(now), "latest tick %s is after now %s", latest, now)
	if after := NextTick(sched, loc, latest); !after.IsZero() {
		require.True(t, after.After(now), "%s is due (now %s) but later than latest %s", after, now, latest)
	}
}
