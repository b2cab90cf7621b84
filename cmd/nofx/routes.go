package main

import (
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"

	"github.com/nofxhq/nofx/internal/config"
	"github.com/nofxhq/nofx/internal/metrics"
	"github.com/nofxhq/nofx/web"
)

// routes prints every HTTP route with its handler and who may call it, as web/routes.go
// declares them. It builds the router only: no database, no workers.
func routes(stdout io.Writer) error {
	srv := web.New(web.Deps{
		Config:  &config.Config{SessionSecret: make([]byte, 32)},
		Logger:  slog.New(slog.DiscardHandler),
		Metrics: metrics.New(),
	})
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "METHOD\tPATH\tHANDLER\tACCESS")
	for _, r := range srv.RouteTable() {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", r.Method, r.Path, r.Handler, r.Access)
	}
	return w.Flush()
}
