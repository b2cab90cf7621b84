package db

import (
	"fmt"
	"strings"
	"time"
)

// NullTime is a timestamp that may be NULL, read from a column or from an
// expression: SQLite returns an aggregate or a subquery of a DATETIME
// column (MIN, MAX) as text, which time.Time cannot scan.
type NullTime struct {
	Time  time.Time
	Valid bool
}

// timeLayouts are the texts SQLite (and River on SQLite) store times as.
var timeLayouts = []string{
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999Z07:00",
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
}

// Scan reads a time, a text in one of SQLite's layouts, or NULL.
func (t *NullTime) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*t = NullTime{}
		return nil
	case time.Time:
		*t = NullTime{Time: v.UTC(), Valid: true}
		return nil
	case []byte:
		return t.parse(string(v))
	case string:
		return t.parse(v)
	}
	return fmt.Errorf("db: cannot read %T as a time", v)
}

func (t *NullTime) parse(s string) error {
	s = strings.TrimSpace(s)
	for _, layout := range timeLayouts {
		if parsed, err := time.Parse(layout, s); err == nil {
			*t = NullTime{Time: parsed.UTC(), Valid: true}
			return nil
		}
	}
	return fmt.Errorf("db: cannot read %q as a time", s)
}
