// Command nofx runs the NOFX control plane: nofx serve, migrate, users,
// tokens, plans, teams, backup, restore, export, import, routes and
// version.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/nofxhq/nofx/internal/version"
)

const usage = `Usage: nofx <command> [flags]

Commands:
  serve                      start the web server and workers (the default)
  migrate                    apply pending database migrations
  users create --email E --password P [--name N] [--site-admin]
                             create a user and their personal team
  tokens create --email E [--team SLUG] [--role R] [--name N]
                             print a new team API key
  plans list                 list the plans and their limits
  plans set ID [--runs N] [--spend DOLLARS] [--concurrency N] [--members N]
               [--api-per-minute N] [--monthly DOLLARS] [--yearly DOLLARS]
               [--stripe-price-monthly P] [--stripe-price-yearly P]
               [--instance-keys true|false] [--name N]
                             change a plan (-1 = unlimited)
  teams set-plan --team SLUG --plan ID
                             move a team to a plan by hand
  backup --out FILE          write a consistent copy of the live SQLite database
  restore --from FILE        put a backup in place (no server may be running)
  export [--out FILE]        write every table as JSON lines (to stdout by default)
  import [--from FILE]       read an export into a new database (from stdin by default)
  routes [--handlers]        list the HTTP routes and who may call each (and their handlers)
  version                    print the version

Configuration comes from the environment; see README.md.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run executes one command and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(ctx, args, stderr, getenv)
	case "migrate":
		err = migrate(ctx, stdout, getenv)
	case "users":
		err = users(ctx, args, stdout, stderr, getenv)
	case "tokens":
		err = tokens(ctx, args, stdout, stderr, getenv)
	case "plans":
		err = plans(ctx, args, stdout, stderr, getenv)
	case "teams":
		err = teamsCommand(ctx, args, stdout, stderr, getenv)
	case "backup":
		err = backup(ctx, args, stdout, stderr, getenv)
	case "restore":
		err = restore(ctx, args, stdout, stderr, getenv)
	case "export":
		err = exportCmd(ctx, args, stdout, stderr, getenv)
	case "import":
		err = importCmd(ctx, args, stdout, stderr, getenv)
	case "routes":
		err = routes(args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "nofx", version.String())
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "nofx: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "nofx:", err)
		return 1
	}
	return 0
}
