package components

import (
	"fmt"
	"time"
)

// The one way pages show a duration; static/js/app.js writes the ones that
// tick the same way.

// FormatDuration writes a duration briefly: "< 1 ms", "420 ms", "3.4s",
// "2m 05s", "1h 02m"; zero (nothing ran) is a dash.
func FormatDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "—"
	case d < time.Millisecond:
		return "< 1 ms" // it ran, but "0 ms" reads as if nothing did
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm %02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
}
