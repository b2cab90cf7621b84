package web

import (
	"io/fs"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/nofxhq/nofx/static"
)

// serveStatic serves the embedded assets. URLs made by static.Path carry a
// content hash, so those are cached for a year.
func serveStatic(c echo.Context) error {
	name := strings.TrimPrefix(c.Param("*"), "/")
	if info, err := fs.Stat(static.FS, name); err != nil || info.IsDir() {
		return echo.ErrNotFound
	}
	h := c.Response().Header()
	if c.QueryParam("v") != "" {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "public, max-age=300")
	}
	http.ServeFileFS(c.Response(), c.Request(), static.FS, name)
	return nil
}
