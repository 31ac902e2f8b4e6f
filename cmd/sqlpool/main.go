// Command sqlpool is the command-line companion of the sqlpool library.
//
//	sqlpool demo [flags]   run a concurrent multi-tenant workload and print pool statistics
//	sqlpool bench [flags]  compare sqlpool's throughput with the bare driver's on your database
//	sqlpool help [command] show usage
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	// run parses args with its own FlagSet, printing its usage and mistakes
	// to stderr, and runs; results go to stdout.
	run func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands lists the subcommands, in the order usage shows them.
var commands = []command{
	{"demo", "run a concurrent multi-tenant workload through sqlpool and print pool statistics", runDemoCommand},
	{"bench", "compare sqlpool's throughput and latency with the bare driver's on your database", runBenchCommand},
}

// usageError marks a command-line mistake: exit status 2, usage shown.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches args and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 {
			if c := lookup(rest[0]); c != nil {
				// A subcommand's own -h prints its flags.
				_ = c.run(context.Background(), []string{"-h"}, stdout, stdout)
				return 0
			}
			fmt.Fprintf(stderr, "sqlpool: unknown command %q\n\n", rest[0])
			usage(stderr)
			return 2
		}
		usage(stdout)
		return 0
	}
	c := lookup(name)
	if c == nil {
		fmt.Fprintf(stderr, "sqlpool: unknown command %q\n\n", name)
		usage(stderr)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := c.run(ctx, rest, stdout, stderr)
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsageShown):
		return 2
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "sqlpool %s: %v\nRun 'sqlpool help %s' for usage.\n", c.name, err, c.name)
		return 2
	default:
		fmt.Fprintf(stderr, "sqlpool %s: %v\n", c.name, err)
		return 1
	}
}

func lookup(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

func usage(w io.Writer) {
	fmt.Fprint(w, "sqlpool is the command-line tool of the sqlpool connection pool.\n\n")
	fmt.Fprint(w, "Usage:\n\n\tsqlpool <command> [flags]\n\nCommands:\n\n")
	for _, c := range commands {
		fmt.Fprintf(w, "\t%-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\t%-8s %s\n", "help", "show this help, or a command's flags: sqlpool help <command>")
	fmt.Fprint(w, "\nExamples:\n\n")
	fmt.Fprint(w, "\tsqlpool demo\n")
	fmt.Fprint(w, "\tsqlpool demo -duration 10s -tenants 6 -workers 32 -max 8\n")
	fmt.Fprint(w, "\tsqlpool demo -duration 1m -serve 127.0.0.1:8080 -token \"$TOKEN\"   # dashboard, kept up after the run\n")
	fmt.Fprint(w, "\tsqlpool demo -driver postgres -dsn 'postgres://user@localhost:5432/db?sslmode=disable'\n")
	fmt.Fprint(w, "\tsqlpool demo -driver mysql -dsn 'user:pass@tcp(localhost:3306)/db'\n")
	fmt.Fprint(w, "\tsqlpool bench -driver postgres -dsn 'postgres://user@localhost:5432/db?sslmode=disable' -workload tx -goroutines 32\n")
}

// parseFlags parses a command's flags: flag.ErrHelp for -h, errUsageShown
// after a bad flag (the flag package printed why), a usageError for
// arguments left over.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsageShown
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}
