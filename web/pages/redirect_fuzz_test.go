package pages

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// nextCases are post-login destinations and whether safeNext keeps them.
// They are the table of TestSafeNext and the seeds of FuzzSafeNext.
var nextCases = []struct {
	next string
	keep bool
}{
	// Paths on this site, as the log-in links carry them (request URIs).
	{"/", true},
	{"/templates", true},
	{"/runs?status=failed", true},
	{"/team/audit?action=test.bulk&before=12", true},
	{"/invites/abc_DEF-123", true},
	{"/runs#top", true},
	{"/runs?q=hello%20world", true},
	{"/runs?q=a%2Fb", true},
	{"/runs?next=//evil.example", true}, // in the query, not the path
	{"/login?next=%2Fruns", true},
	{"/@evil.example", true}, // a path segment, not user info
	{"/templates/a:b", true},
	{"/%ff", true}, // decodes to a byte, not a character anything strips
	{"/runs?q=50%25", true},

	// Not a path, or another host or scheme.
	{"", false},
	{"templates", false},
	{"https://evil.example", false},
	{"http://nofx.example/runs", false},
	{"http:/evil.example", false},
	{"javascript:alert(1)", false},
	{"//evil.example", false},
	{"///evil.example", false},
	{"//", false},
	{"/\\evil.example", false},
	{"\\\\evil.example", false},
	{"/a//b", false},
	{"/.//evil.example", false},
	{"/..//evil.example", false},

	// Characters browsers strip or rewrite (the finding: a tab).
	{"/\t/other-host", false},
	{"/\n/evil.example", false},
	{"/\r/evil.example", false},
	{"\t//evil.example", false},
	{" //evil.example", false},
	{" /evil", false},
	{"/ /evil", false}, // harmless to a browser, but no request URI has a raw space
	{"/runs ", false},
	{"/\x00/evil.example", false},
	{"/\x7f/evil.example", false},
	{"/\u200b/evil.example", false}, // zero-width space
	{"/\ufeff/evil.example", false},
	{"/\u00a0/evil.example", false},
	{"/caf\u00e9", false},

	// The same after percent-decoding, once or more.
	{"/%09/other-host", false},
	{"/%0a/evil.example", false},
	{"/%0d%0aSet-Cookie:%20x=1", false},
	{"/%2F%2Fevil.example", false},
	{"/%2f/evil.example", false},
	{"/%5Cevil.example", false},
	{"/%5c%5cevil.example", false},
	{"/%2e//evil.example", false},
	{"/%E2%80%8B/evil.example", false}, // zero-width space
	{"/%C2%A0/evil.example", false},    // no-break space
	{"/%E3%80%80/evil.example", false}, // ideographic space
	{"/%7F", false},
	{"/%252F%252Fevil.example", false},
	{"/%25252F%25252Fevil.example", false},
	{"/%2525252525252Fx", false}, // still decoding after maxNextDecodes rounds
	{"/runs?q=%0a", false},
	{"/%zz", false},
	{"/" + strings.Repeat("a", maxNextBytes), false},
}

func TestSafeNext(t *testing.T) {
	t.Parallel()
	for i, tc := range nextCases {
		name := tc.next
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(fmt.Sprintf("%d:%q", i, name), func(t *testing.T) {
			t.Parallel()
			got := safeNext(tc.next)
			if !tc.keep {
				require.Empty(t, got, "safeNext must drop %q", name)
				return
			}
			require.Equal(t, tc.next, got, "safeNext must keep %q", name)
			requireStaysOnSite(t, got)
		})
	}
}

func FuzzSafeNext(f *testing.F) {
	for _, tc := range nextCases {
		f.Add(tc.next)
	}
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		if got == "" {
			return
		}
		require.Equal(t, next, got, "safeNext keeps a destination as it is or drops it")
		requireStaysOnSite(t, got)
	})
}

// fuzzSite is the origin every kept destination must stay on.
var fuzzSite = &url.URL{Scheme: "https", Host: "nofx.example", Path: "/"}

// requireStaysOnSite checks that next, read as a browser would (and after
// percent-decoding it as a server might), is a path on fuzzSite.
func requireStaysOnSite(t *testing.T, next string) {
	t.Helper()
	decoded := next
	for range maxNextDecodes + 1 {
		if d, err := url.PathUnescape(decoded); err == nil {
			decoded = d
		}
	}
	for _, variant := range []string{next, browserNormalize(next), browserNormalize(decoded)} {
		// A browser reads a reference with a scheme, or starting with two
		// slashes, as leaving the page's origin.
		require.True(t, strings.HasPrefix(variant, "/"), "%q (kept as %q) is not a path", variant, next)
		require.False(t, strings.HasPrefix(variant, "//"), "%q (kept as %q) names another host", variant, next)
		u, err := url.Parse(variant)
		if err != nil {
			require.NotEqual(t, next, variant, "a kept destination parses: %v", err)
			continue // a decoded form that is no URL any more
		}
		resolved := fuzzSite.ResolveReference(u)
		require.Equal(t, "https", resolved.Scheme, "%q (kept as %q)", variant, next)
		require.Equal(t, "nofx.example", resolved.Host, "%q (kept as %q) leaves the site", variant, next)
		require.Nil(t, resolved.User, "%q (kept as %q)", variant, next)
	}
}

// browserNormalize does to a Location what browsers do before they parse
// it: strip leading and trailing control characters and spaces, drop every
// tab and newline, and read backslashes as slashes.
func browserNormalize(s string) string {
	s = strings.TrimFunc(s, func(r rune) bool { return r <= ' ' })
	s = strings.NewReplacer("\t", "", "\n", "", "\r", "", "\\", "/").Replace(s)
	return s
}
