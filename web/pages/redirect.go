package pages

import (
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxNextBytes is the longest post-login destination kept; a longer one is
// no link of ours.
const maxNextBytes = 2048

// maxNextDecodes is how many rounds of percent-decoding safeNext looks
// through; a destination still changing after that many is dropped.
const maxNextDecodes = 3

// safeNext keeps a post-login destination only when it is a path on this
// site, so that the parameter cannot send users elsewhere; anything else
// becomes "".
//
// Browsers are lenient with a Location: they drop tabs and newlines
// anywhere, strip leading control characters and spaces, and read a
// backslash as a slash, so "/\t/evil", "/\\evil" and "\n//evil" all lead to
// another host. A destination is therefore only kept when it is printable
// ASCII without backslashes or spaces (what a request URI, the only thing
// we link as next, is made of), parses as a bare path (no scheme, host or
// user), starts with exactly one slash and has no empty path segment
// ("//"); the same holds after each round of percent-decoding, for the
// servers and proxies that decode before they redirect ("/%2F%2Fevil",
// "/%5Cevil", "/%09/evil").
func safeNext(next string) string {
	if next == "" || len(next) > maxNextBytes {
		return ""
	}
	for i := 0; i < len(next); i++ {
		if c := next[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return ""
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") {
		return ""
	}
	level := next
	for round := 0; ; round++ {
		if !nextPathIsLocal(level) {
			return ""
		}
		decoded, err := url.PathUnescape(level)
		switch {
		case err != nil && round == 0:
			return "" // a malformed escape in what we would send
		case err != nil || decoded == level:
			return next // nothing more that a decoder would read differently
		case round == maxNextDecodes || !nextDecodedIsPlain(decoded):
			return ""
		}
		level = decoded
	}
}

// nextPathIsLocal reports whether the path of next, the part before any
// query or fragment, starts with a single slash and has no empty segment.
func nextPathIsLocal(next string) bool {
	path := next
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	return strings.HasPrefix(path, "/") && !strings.Contains(path, "//")
}

// nextDecodedIsPlain reports whether percent-decoded text is free of what
// browsers or servers strip or rewrite: control characters, backslashes,
// invisible format characters and spaces other than the plain one.
func nextDecodedIsPlain(s string) bool {
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		s = s[size:]
		switch {
		case r == ' ', r == utf8.RuneError && size == 1: // a plain space; a byte that is no character
		case r == '\\', unicode.IsControl(r), unicode.Is(unicode.Cf, r), unicode.IsSpace(r):
			return false
		}
	}
	return true
}
