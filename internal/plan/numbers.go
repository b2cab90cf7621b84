package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strconv"

	"github.com/nofxhq/nofx/internal/validation"
)

// maxNumberProblems caps how many bad numbers one check reports, so that a
// body full of them gets a short answer.
const maxNumberProblems = 10

// jsonNumberRE is the grammar of a JSON number.
var jsonNumberRE = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// outOfRangeMessage says that a number does not fit a float64.
func outOfRangeMessage(literal string) string {
	return fmt.Sprintf("The number %s is out of range: use one between about -1.8e308 and 1.8e308.", shortNumber(literal))
}

// shortNumber shortens a long number's text for a message.
func shortNumber(s string) string {
	const keep = 20
	if len(s) <= keep+4 {
		return s
	}
	return fmt.Sprintf("%s… (%d characters)", s[:keep], len(s))
}

// numberProblem says what is wrong with v when it is a number that cannot
// be stored as JSON and read back as a float64: NaN, an infinity, or a
// json.Number out of range or not in JSON's syntax.
func numberProblem(v any) (string, bool) {
	switch n := v.(type) {
	case json.Number:
		s := string(n)
		if !jsonNumberRE.MatchString(s) {
			return fmt.Sprintf("%q is not a number as JSON writes one.", shortNumber(s)), true
		}
		if f, err := strconv.ParseFloat(s, 64); err != nil || math.IsInf(f, 0) {
			return outOfRangeMessage(s), true
		}
	case float64:
		if math.IsNaN(n) || math.IsInf(n, 0) {
			return fmt.Sprintf("Use a finite number, not %v.", n), true
		}
	case float32:
		if math.IsNaN(float64(n)) || math.IsInf(float64(n), 0) {
			return fmt.Sprintf("Use a finite number, not %v.", n), true
		}
	}
	return "", false
}

// CheckNumbers adds to errs, keyed by its path under prefix (such as
// "inputs.n" or "steps[0].options.latency_ms"), each number in v that could
// not be stored as JSON and read back: out of a float64's range, NaN or
// infinite. v is a value decoded from JSON (numbers as float64 or
// json.Number) or built in Go; at most a few problems are reported. It
// returns how many it found.
func CheckNumbers(errs validation.Errors, prefix string, v any) int {
	found := 0
	var walk func(path string, v any) bool
	walk = func(path string, v any) bool {
		switch x := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				sub := k
				if path != "" {
					sub = path + "." + k
				}
				if !walk(sub, x[k]) {
					return false
				}
			}
		case []any:
			for i, item := range x {
				if !walk(fmt.Sprintf("%s[%d]", path, i), item) {
					return false
				}
			}
		default:
			if msg, bad := numberProblem(v); bad {
				errs.Add(path, msg)
				found++
			}
		}
		return found < maxNumberProblems
	}
	walk(prefix, v)
	return found
}

// decodeGeneric decodes one JSON value with its numbers kept as written.
func decodeGeneric(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("extra data after the JSON value")
	}
	return v, nil
}

// OutOfRangeNumbers reports, keyed by path, the numbers of the JSON
// document data that do not fit a float64; it returns nil when there are
// none or data is not valid JSON. Decoders call it when a document fails to
// decode, to name the field of a number like 1e400 rather than the document.
func OutOfRangeNumbers(data []byte) validation.Errors {
	v, err := decodeGeneric(data)
	if err != nil {
		return nil
	}
	errs := validation.Errors{}
	if CheckNumbers(errs, "", v) == 0 {
		return nil
	}
	return errs
}

// ParseInputs decodes a run's inputs from a JSON object, its numbers kept
// as written (json.Number), as the API and the forms read them: empty data
// is no inputs. Malformed JSON is a problem with "inputs"; a number that
// cannot be stored (such as 1e400) is a problem with its field, such as
// "inputs.n".
func ParseInputs(data []byte) (map[string]any, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return map[string]any{}, nil
	}
	v, err := decodeGeneric(trimmed)
	inputs, ok := v.(map[string]any)
	if err != nil || !ok {
		return nil, validation.Errors{"inputs": `Inputs must be a JSON object, like {"topic": "tides"}.`}
	}
	errs := validation.Errors{}
	if CheckNumbers(errs, "inputs", inputs) > 0 {
		return nil, errs
	}
	return inputs, nil
}
