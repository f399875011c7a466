package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1 // runtime error: bad input data, I/O, model failure
	exitUsage = 2 // bad command line
)

// A command is one vocode subcommand.
type command struct {
	name    string
	args    string // the synopsis after "vocode <name>"
	summary string // one line for the command list
	details string // paragraphs printed before the flags
	// setup defines the command's flags on fs and returns the function
	// that runs the command on the positional arguments left after
	// parsing.
	setup func(fs *flag.FlagSet) runFunc
}

// runFunc runs a command. Errors wrapping a *usageError exit with status 2.
type runFunc func(ctx context.Context, e *env, args []string) error

// env is what a command may use besides its arguments.
type env struct {
	stdout, stderr io.Writer
	cmd            string // the command name, for messages
	progress       bool   // stderr is a terminal: show progress bars
}

// warnf prints a message prefixed with "vocode: <command>: " to stderr.
func (e *env) warnf(format string, args ...any) {
	fmt.Fprintf(e.stderr, "vocode: %s: %s\n", e.cmd, fmt.Sprintf(format, args...))
}

// usageError is a mistake on the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// usagef returns a *usageError with a formatted message.
func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// commands returns every subcommand in the order the usage lists them.
func commands() []*command {
	return []*command{melCommand, synthCommand, resynthCommand, scoreCommand, denoiseCommand, convertCommand, infoCommand, trainCommand, benchCommand}
}

// lookup returns the command called name, or nil.
func lookup(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	return nil
}

// run executes the vocode command line args (without the program name)
// and returns the exit status. Results go to stdout, messages to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printMainUsage(stderr)
		return exitUsage
	}
	switch name := args[0]; name {
	case "help", "-h", "-help", "--help":
		return runHelp(args[1:], stdout, stderr)
	default:
		c := lookup(name)
		if c == nil {
			fmt.Fprintf(stderr, "vocode: unknown command %q\nRun 'vocode help' for usage.\n", name)
			return exitUsage
		}
		return c.execute(ctx, args[1:], stdout, stderr)
	}
}

// runHelp implements "vocode help [command]".
func runHelp(args []string, stdout, stderr io.Writer) int {
	switch len(args) {
	case 0:
		printMainUsage(stdout)
		return exitOK
	case 1:
		c := lookup(args[0])
		if c == nil {
			fmt.Fprintf(stderr, "vocode: help: unknown command %q\nRun 'vocode help' for usage.\n", args[0])
			return exitUsage
		}
		fs := c.flagSet()
		c.setup(fs)
		c.printUsage(stdout, fs)
		return exitOK
	default:
		fmt.Fprintln(stderr, "vocode: help: usage: vocode help [command]")
		return exitUsage
	}
}

// execute parses the command's flags and runs it.
func (c *command) execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := c.flagSet()
	runCmd := c.setup(fs)
	e := &env{stdout: stdout, stderr: stderr, cmd: c.name, progress: isTerminal(stderr)}
	args, err := parseInterspersed(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		c.printUsage(stdout, fs)
		return exitOK
	case err != nil:
		err = usagef("%v", err)
	default:
		err = runCmd(ctx, e, args)
	}
	var uerr *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &uerr):
		e.warnf("%v", err)
		fmt.Fprintf(stderr, "Run 'vocode help %s' for usage.\n", c.name)
		return exitUsage
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		e.warnf("interrupted")
		return exitError
	default:
		e.warnf("%v", err)
		return exitError
	}
}

// flagSet returns an empty flag set for c whose parse errors are returned,
// not printed: execute reports them in vocode's format.
func (c *command) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// printUsage writes the synopsis, description and flags of c to w.
func (c *command) printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: vocode %s %s\n\n%s\n", c.name, c.args, strings.TrimSpace(c.details))
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintf(w, "\nFlags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
}

// printMainUsage writes the list of commands to w.
func printMainUsage(w io.Writer) {
	fmt.Fprintf(w, "vocode is a WaveGlow neural vocoder: mel spectrogram to speech.\n\nusage: vocode <command> [flags] [arguments]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "  %-8s %s\n", "help", "print the usage of vocode or of one command")
	fmt.Fprintf(w, "\nFlags may come before or after the arguments. Run 'vocode help <command>' for details.\n")
	fmt.Fprintf(w, "Exit status: 0 on success, 1 on runtime errors, 2 on usage errors.\n")
}

// parseInterspersed parses args with fs, allowing flags after positional
// arguments, and returns the positional arguments in their order. A flag
// that takes a value takes the next argument (or its "=value"); "--" ends
// the flags, everything after it is positional; a lone "-" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var flags, positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if f := fs.Lookup(name); f != nil && !isBoolFlag(f) && i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	// Every element of flags is a flag or its value, so fs consumes all.
	if err := fs.Parse(flags); err != nil {
		return nil, err
	}
	return append(fs.Args(), positional...), nil
}

// isBoolFlag reports whether f is a boolean flag (one that needs no value).
func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
