package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/nofxhq/nofx/internal/app"
	"github.com/nofxhq/nofx/internal/config"
	"github.com/nofxhq/nofx/internal/db"
	"github.com/nofxhq/nofx/internal/transfer"
)

// exportCmd writes every table of the database to --out (or stdout).
func exportCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "the file to write (default: standard output)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	d, err := db.Open(ctx, cfg.DatabaseURL) // as it is: an export migrates nothing
	if err != nil {
		return err
	}
	defer d.Close()
	w := stdout
	if *out != "" {
		f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("--out: %w", err)
		}
		defer f.Close()
		w = f
	}
	bar := newBar(stderr)
	sum, err := transfer.Export(ctx, d, w, bar.show)
	bar.done()
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "exported %s\n", describe(sum))
	return nil
}

// importCmd reads an export (--from, or stdin) into the database, which
// must be new; then it gives the steps waiting for a worker new jobs.
func importCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "the export to read (default: standard input)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var r io.Reader = os.Stdin
	if *from != "" {
		f, err := os.Open(*from)
		if err != nil {
			return fmt.Errorf("--from: %w", err)
		}
		defer f.Close()
		r = f
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	cfg.Workers = 0 // enqueue only: this process runs no step
	a, err := app.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), true, app.Tuning{})
	if err != nil {
		return err
	}
	defer a.Close(context.WithoutCancel(ctx))
	bar := newBar(stderr)
	sum, err := transfer.Import(ctx, a.DB, r, bar.show)
	bar.done()
	if err != nil {
		return err
	}
	jobs, err := requeueImported(ctx, a)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "imported %s; %d steps queued for a worker\n", describe(sum), jobs)
	return nil
}

// requeueImported gives a new job to each step that waited for a worker in
// the old database (its job stayed there).
func requeueImported(ctx context.Context, a *app.App) (int, error) {
	var queued []struct {
		RunID  int64 `db:"run_id"`
		StepID int64 `db:"id"`
		JobID  int64 `db:"job_id"`
	}
	err := db.Select(ctx, a.DB, &queued, `SELECT run_id, id, job_id FROM steps WHERE status = 'queued' AND job_id IS NOT NULL ORDER BY id`)
	if err != nil {
		return 0, fmt.Errorf("find the steps to queue: %w", err)
	}
	for _, s := range queued {
		if err := a.Runs.Requeue(ctx, s.RunID, s.StepID, s.JobID); err != nil {
			return 0, err
		}
	}
	return len(queued), nil
}

// describe sums up what moved: "1,204 rows in 24 tables".
func describe(s transfer.Summary) string {
	var rows int64
	for _, t := range s.Tables {
		rows += t.Rows
	}
	return fmt.Sprintf("%d rows in %d tables", rows, len(s.Tables))
}

// bar draws a copy's progress on a terminal, one line redrawn; elsewhere
// (a pipe, a log) it writes one line per table when it is done.
type bar struct {
	w        io.Writer
	terminal bool
	table    string
	last     int64
}

func newBar(w io.Writer) *bar {
	b := &bar{w: w}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			b.terminal = true
		}
	}
	return b
}

func (b *bar) show(table string, done, total int64) {
	if table != b.table && b.table != "" {
		b.finish()
	}
	b.table, b.last = table, done
	if !b.terminal {
		return
	}
	const width = 30
	filled := width
	if total > 0 {
		filled = int(done * width / total)
	}
	count := fmt.Sprint(done)
	if total >= 0 {
		count = fmt.Sprintf("%d/%d", done, total)
	}
	fmt.Fprintf(b.w, "\r%-20s [%s%s] %s", table, strings.Repeat("#", filled), strings.Repeat(".", width-filled), count)
}

// finish ends the current table's line.
func (b *bar) finish() {
	if b.terminal {
		fmt.Fprintln(b.w)
		return
	}
	fmt.Fprintf(b.w, "%-20s %d rows\n", b.table, b.last)
}

func (b *bar) done() {
	if b.table != "" {
		b.finish()
		b.table = ""
	}
}
