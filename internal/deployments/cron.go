package deployments

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// cronParser reads the five standard fields: minute, hour, day of month,
// month, day of week. No seconds, descriptors or time zone prefixes: the
// team's time zone applies.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// cronHelp is what a person is told when an expression does not parse.
const cronHelp = "Use five fields: minute hour day-of-month month day-of-week, such as “0 9 * * 1-5” (9:00 on weekdays)."

// ParseSchedule checks a cron expression and returns it normalized (fields
// separated by one space), or an error message for a person.
func ParseSchedule(expr string) (string, cron.Schedule, error) {
	fields := strings.Fields(expr)
	if len(fields) != 5 {
		return "", nil, fmt.Errorf("%s It has %d.", cronHelp, len(fields))
	}
	norm := strings.Join(fields, " ")
	if strings.ContainsAny(norm, "=@") {
		// The parser reads TZ= prefixes and @ descriptors (and panics on
		// some), which five fields never need.
		return "", nil, errors.New(cronHelp)
	}
	sched, err := cronParser.Parse(norm)
	if err != nil {
		return "", nil, fmt.Errorf("%s (%v)", cronHelp, err)
	}
	if sched.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return "", nil, errors.New("This schedule never fires (no such date): check the day and the month.")
	}
	return norm, sched, nil
}

// NextTick returns the first tick of sched strictly after t, reading the
// fields as wall-clock time in loc, in UTC. It is zero when no tick comes
// within five years.
func NextTick(sched cron.Schedule, loc *time.Location, t time.Time) time.Time {
	next := sched.Next(t.In(loc))
	if next.IsZero() {
		return next
	}
	return next.UTC()
}

// maxCatchUp bounds the ticks skipped over when catching up after downtime.
const maxCatchUp = 1_000_000

// latestTick returns the last tick of sched at or before now, starting from
// tick (itself due), so that a process that was down runs one missed tick,
// the latest, instead of all of them.
func latestTick(sched cron.Schedule, loc *time.Location, tick, now time.Time) time.Time {
	for range maxCatchUp {
		next := NextTick(sched, loc, tick)
		if next.IsZero() || next.After(now) {
			break
		}
		tick = next
	}
	return tick
}
