package ai

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Limits and defaults of the simulated provider's options.
const (
	maxSimLatencyMS   = 600000
	defaultFailStatus = 500
)

// simOptions are the decoded options of a simulated call.
type simOptions struct {
	latency    time.Duration
	failRate   float64
	failStatus int
}

// parseSimOptions decodes the options of a simulated step; when some are
// wrong it returns a message that names each of them.
func parseSimOptions(options map[string]any) (simOptions, string) {
	opts := simOptions{failStatus: defaultFailStatus}
	if len(options) == 0 {
		return opts, ""
	}
	names := make([]string, 0, len(options))
	for name := range options {
		names = append(names, name)
	}
	sort.Strings(names)

	var problems []string
	for _, name := range names {
		v := options[name]
		f, isNumber := number(v)
		switch name {
		case "latency_ms":
			if !isNumber || f < 0 || f > maxSimLatencyMS {
				problems = append(problems, fmt.Sprintf("latency_ms must be a number of milliseconds from 0 to %d, got %s", maxSimLatencyMS, describe(v)))
				continue
			}
			opts.latency = time.Duration(f * float64(time.Millisecond))
		case "fail_rate":
			if !isNumber || f < 0 || f > 1 {
				problems = append(problems, "fail_rate must be a number from 0 to 1, got "+describe(v))
				continue
			}
			opts.failRate = f
		case "fail_status":
			if !isNumber || f != math.Trunc(f) || f < 400 || f > 599 {
				problems = append(problems, "fail_status must be an HTTP error status, an integer from 400 to 599, got "+describe(v))
				continue
			}
			opts.failStatus = int(f)
		default:
			problems = append(problems, fmt.Sprintf("unknown option %q; the simulated provider has latency_ms, fail_rate and fail_status", name))
		}
	}
	return opts, strings.Join(problems, "; ")
}

// number returns v as a float64 when it is a finite number as decoded from
// JSON (float64 or json.Number) or written in Go (any int or float type).
func number(v any) (float64, bool) {
	var f float64
	switch n := v.(type) {
	case float64:
		f = n
	case float32:
		f = float64(n)
	case int:
		f = float64(n)
	case int8:
		f = float64(n)
	case int16:
		f = float64(n)
	case int32:
		f = float64(n)
	case int64:
		f = float64(n)
	case uint:
		f = float64(n)
	case uint8:
		f = float64(n)
	case uint16:
		f = float64(n)
	case uint32:
		f = float64(n)
	case uint64:
		f = float64(n)
	case json.Number:
		var err error
		if f, err = n.Float64(); err != nil {
			return 0, false
		}
	default:
		return 0, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// describe shows an option's value in a message, quoting strings.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(x)
	case json.Number:
		return x.String()
	}
	return fmt.Sprint(v)
}
