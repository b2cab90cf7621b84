package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"

	"github.com/nofxhq/nofx/internal/config"
	"github.com/nofxhq/nofx/internal/metrics"
	"github.com/nofxhq/nofx/web"
)

// routes prints every HTTP route with who may call it, as web/routes.go
// declares them, and with --handlers the function that answers each. It
// builds the router only: no database, no workers.
func routes(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("routes", flag.ContinueOnError)
	fs.SetOutput(stderr)
	handlers := fs.Bool("handlers", false, "add a HANDLER column: pages.RunsPage is the method RunsPage in web/pages")
	if err := fs.Parse(args); err != nil {
		return err
	}
	srv := web.New(web.Deps{
		Config:  &config.Config{SessionSecret: make([]byte, 32)},
		Logger:  slog.New(slog.DiscardHandler),
		Metrics: metrics.New(),
	})
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	if *handlers {
		fmt.Fprintln(w, "METHOD\tPATH\tACCESS\tHANDLER")
	} else {
		fmt.Fprintln(w, "METHOD\tPATH\tACCESS")
	}
	for _, r := range srv.RouteTable() {
		if *handlers {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", r.Method, r.Path, r.Access, r.Handler)
		} else {
			fmt.Fprintf(w, "%s\t%s\t%s\n", r.Method, r.Path, r.Access)
		}
	}
	return w.Flush()
}
