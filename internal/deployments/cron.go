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
	spec, err := cronParser.Parse(norm)
	if err != nil {
		return "", nil, fmt.Errorf("%s (%v)", cronHelp, err)
	}
	var sched cron.Schedule = spec
	if hour := fields[1]; hour != "*" && hour != "?" && !strings.HasPrefix(hour, "*/") && !strings.HasPrefix(hour, "?/") {
		sched = wallClock{spec}
	}
	if sched.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return "", nil, errors.New("This schedule never fires (no such date): check the day and the month.")
	}
	return norm, sched, nil
}

// wallClock is a schedule whose hours are fixed (such as 9, 1-5 or 8,20),
// read on the wall clock rather than in elapsed time: when clocks go
// forward a time that does not exist runs as late as it was skipped
// (2:30 becomes 3:30), and when they go back a repeated time runs once.
// Schedules of every hour (* or */n) keep running in real time.
type wallClock struct{ spec cron.Schedule }

// maxWallSteps bounds the ticks a wallClock passes over that map to an
// instant at or before the time given (a repeated hour has at most 60).
const maxWallSteps = 1000

// Next returns the first tick strictly after t, reading the schedule on
// the wall clock of t's location.
func (w wallClock) Next(t time.Time) time.Time {
	loc := t.Location()
	wall := asUTC(t)
	for range maxWallSteps {
		n := w.spec.Next(wall)
		if n.IsZero() {
			return n
		}
		if at := wallInstant(n, loc); at.After(t) {
			return at.In(loc)
		}
		wall = n
	}
	return time.Time{}
}

// asUTC is t's wall clock as a UTC time with the same fields.
func asUTC(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

// wallInstant is the instant whose wall clock in loc shows the fields of
// w, a UTC time. A wall time that does not exist (clocks went forward over
// it) is read with the offset in force before the change, which moves it
// forward by the gap: 2:30 becomes 3:30. A repeated one is its first
// instant.
func wallInstant(w time.Time, loc *time.Location) time.Time {
	at := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), loc)
	if asUTC(at.In(loc)).Equal(w) {
		return at
	}
	_, before := at.Add(-24 * time.Hour).In(loc).Zone()
	return w.Add(-time.Duration(before) * time.Second)
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

// maxCatchUp bounds the ticks stepped over when catching up after downtime.
const maxCatchUp = 1_000_000

// latestTick returns the last tick of sched at or before now, and never one
// before tick (the stored next tick, itself due), so that a process that
// was down runs one missed tick, the latest, instead of all of them. It
// looks back from now over a window that doubles until it holds a tick,
// so a long downtime costs a few dozen steps, not one per missed tick.
func latestTick(sched cron.Schedule, loc *time.Location, tick, now time.Time) time.Time {
	from := tick
	for w := time.Minute; now.Add(-w).After(tick); w *= 2 {
		if n := NextTick(sched, loc, now.Add(-w)); !n.IsZero() && !n.After(now) {
			from = n
			break
		}
	}
	for range maxCatchUp {
		next := NextTick(sched, loc, from)
		if next.IsZero() || next.After(now) {
			break
		}
		from = next
	}
	return from
}
