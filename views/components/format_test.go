package components

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                       "—",
		300 * time.Microsecond:                  "< 1 ms",
		420 * time.Millisecond:                  "420 ms",
		3400 * time.Millisecond:                 "3.4s",
		2*time.Minute + 5*time.Second:           "2m 05s",
		time.Hour + 2*time.Minute + time.Second: "1h 02m",
	} {
		require.Equal(t, want, FormatDuration(d), d)
	}
}

func TestFormatCount(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 20000: "20,000", 1234567: "1,234,567", -4500: "-4,500"} {
		require.Equal(t, want, FormatCount(n), n)
	}
}
