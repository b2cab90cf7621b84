// Package version tells which build of NOFX is running.
package version

import "runtime/debug"

// Version is set at build time with -ldflags "-X github.com/nofxhq/nofx/internal/version.Version=...".
var Version = "dev"

// String is the version followed by the commit it was built from, when known.
func String() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return Version
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" {
		return Version
	}
	return Version + " (" + rev + dirty + ")"
}
