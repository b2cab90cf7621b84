// Package static holds the stylesheets, scripts and images served under
// /static/, embedded into the binary. vendor/ is built from npm packages.
package static

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"sync"
)

// FS holds every static file, by its path under /static/.
//
//go:embed css js img vendor
var FS embed.FS

var (
	versionsOnce sync.Once
	versions     map[string]string
)

// Path returns the URL of a static file with a content hash, so that
// browsers can cache it for good and still see every change.
func Path(name string) string {
	versionsOnce.Do(func() {
		versions = map[string]string{}
		_ = fs.WalkDir(FS, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := FS.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			versions[p] = hex.EncodeToString(sum[:4])
			return nil
		})
	})
	if v, ok := versions[name]; ok {
		return "/static/" + name + "?v=" + v
	}
	return "/static/" + name
}
