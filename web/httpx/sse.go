package httpx

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/internal/live"
	"github.com/nofxhq/nofx/internal/runs"
	"github.com/nofxhq/nofx/internal/validation"
)

// Stream writes Server-Sent Events to one client.
type Stream struct {
	res *echo.Response
}

// StartStream sends the headers of an event stream.
func StartStream(c echo.Context) *Stream {
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	c.Response().WriteHeader(http.StatusOK)
	c.Response().Flush()
	return &Stream{res: c.Response()}
}

// Send writes one event; data may span lines.
func (s *Stream) Send(event string, id int64, data string) error {
	var b strings.Builder
	if id > 0 {
		fmt.Fprintf(&b, "id: %d\n", id)
	}
	if event != "" {
		fmt.Fprintf(&b, "event: %s\n", event)
	}
	for _, line := range strings.Split(data, "\n") {
		b.WriteString("data: ")
		b.WriteString(strings.TrimSuffix(line, "\r"))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	if _, err := s.res.Write([]byte(b.String())); err != nil {
		return err
	}
	s.res.Flush()
	return nil
}

// Comment writes a comment, which keeps the stream open.
func (s *Stream) Comment(text string) error {
	if _, err := s.res.Write([]byte(": " + text + "\n\n")); err != nil {
		return err
	}
	s.res.Flush()
	return nil
}

// LastEventID is where a stream resumes: after the event named by the
// Last-Event-ID header (sent by reconnecting browsers) or ?after=.
func LastEventID(c echo.Context) (int64, error) {
	after := c.Request().Header.Get("Last-Event-ID")
	if after == "" {
		after = c.QueryParam("after")
	}
	if after == "" {
		return 0, nil
	}
	id, err := strconv.ParseInt(after, 10, 64)
	if err != nil || id < 0 {
		return 0, validation.Errors{"after": "Use the id of an event."}
	}
	return id, nil
}

// RunFollower is what a stream does with a run's news.
type RunFollower struct {
	// Changed receives the events written since the last call, with the run
	// as it is now.
	Changed func(stream *Stream, events []runs.Event, run runs.Run) error
	// Delta receives text a step streams (not stored).
	Delta func(stream *Stream, m live.Message) error
	// UntilFinished ends the stream once the run has finished.
	UntilFinished bool
	// Outage, when set, is told when the database becomes unavailable to
	// the stream (down) and when it catches up again.
	Outage func(stream *Stream, down bool) error
	// Team, when set, is called when another run of team teamID changes, at
	// most once a second, for what the run's page shows of the team's
	// other runs (a queued step waiting for one of the team's slots).
	Team   func(stream *Stream) error
	TeamID int64
}
