package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"time"

	"github.com/glowvoc/glowvoc/server"
)

// envPrefix starts the environment variable of every flag.
const envPrefix = "GLOWVOC_"

// config is the command line of serve.
type config struct {
	addr        string
	model       string
	modelConfig string
	server      server.Config
	serve       server.ServeOptions
	logFormat   string
	logLevel    slog.Level
}

// errUsage marks errors in the command line or environment (exit status 2).
var errUsage = errors.New("usage")

// parseConfig parses args, with environment variables (looked up with
// lookupEnv) for the flags args does not set. Help goes to out.
func parseConfig(args []string, lookupEnv func(string) (string, bool), out io.Writer) (*config, error) {
	c := &config{}
	workers := runtime.GOMAXPROCS(0)
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "`host:port` to listen on (\":8080\" for every interface)")
	fs.StringVar(&c.model, "model", "", "model `file`: .safetensors (self-describing), an NVIDIA checkpoint or state dict .pt, or .npz (default: the bundled model)")
	fs.StringVar(&c.modelConfig, "model-config", "", "NVIDIA `config.json` for a model file that records no configuration (.pt, .npz)")
	fs.StringVar(&c.server.ModelName, "model-name", "", "model id shown in /v1/models (default: the model file's base name)")
	fs.IntVar(&c.server.Workers, "workers", workers, "requests computed at once")
	fs.IntVar(&c.server.QueueSize, "queue", 2*workers, "requests that may wait for a worker; beyond, 429")
	fs.Int64Var(&c.server.MaxBodyBytes, "max-body", server.DefaultMaxBodyBytes, "largest request body in `bytes` (413 beyond)")
	fs.IntVar(&c.server.MaxFrames, "max-frames", server.DefaultMaxFrames, "most mel frames in a request, or frames of a WAV input (413 beyond)")
	fs.DurationVar(&c.server.RequestTimeout, "request-timeout", server.DefaultRequestTimeout, "deadline of each request, streamed ones included")
	fs.IntVar(&c.server.StreamFirstChunkFrames, "stream-first-chunk-frames", 0, "mel frames of a stream's first chunk: smaller gives earlier audio (0: the vocoder's default, 16)")
	fs.IntVar(&c.server.StreamChunkFrames, "stream-chunk-frames", 0, "mel frames of a stream's later chunks (0: the vocoder's default, 96)")
	fs.BoolVar(&c.server.WarmDenoiser, "warm-denoiser", true, "compute the denoiser's bias at start-up, before /readyz answers 200")
	fs.DurationVar(&c.serve.DrainDelay, "drain-delay", 0, "on SIGTERM, how long /readyz answers 503 before the listener closes")
	fs.DurationVar(&c.serve.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "on SIGTERM, how long in-flight requests may take to finish")
	fs.StringVar(&c.logFormat, "log-format", "json", "log format: json or text")
	fs.TextVar(&c.logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: serve --model FILE [flags]\n\nEvery flag can also be set by the environment variable %sNAME (--max-frames: %sMAX_FRAMES).\n\nFlags:\n", envPrefix, envPrefix)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if err := applyEnv(fs, lookupEnv); err != nil {
		return nil, err
	}
	if c.model == "" && c.modelConfig != "" {
		return nil, fmt.Errorf("%w: --model-config needs --model (the bundled model records its configuration)", errUsage)
	}
	for _, check := range []struct {
		bad bool
		msg string
	}{
		{c.logFormat != "json" && c.logFormat != "text", "--log-format must be json or text"},
		{c.server.Workers < 1, "--workers must be at least 1"},
		{c.server.QueueSize < 0, "--queue must not be negative"},
		{c.server.MaxBodyBytes < 1, "--max-body must be positive"},
		{c.server.MaxFrames < 1, "--max-frames must be positive"},
		{c.server.RequestTimeout <= 0, "--request-timeout must be positive"},
		{c.server.StreamFirstChunkFrames < 0, "--stream-first-chunk-frames must not be negative"},
		{c.server.StreamChunkFrames < 0, "--stream-chunk-frames must not be negative"},
		{c.serve.DrainDelay < 0, "--drain-delay must not be negative"},
		{c.serve.ShutdownTimeout <= 0, "--shutdown-timeout must be positive"},
	} {
		if check.bad {
			return nil, fmt.Errorf("%w: %s", errUsage, check.msg)
		}
	}
	return c, nil
}

// applyEnv sets every flag not given on the command line from its
// environment variable, if set.
func applyEnv(fs *flag.FlagSet, lookupEnv func(string) (string, bool)) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || given[f.Name] {
			return
		}
		name := envPrefix + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v, ok := lookupEnv(name)
		if !ok {
			return
		}
		if e := fs.Set(f.Name, v); e != nil {
			err = fmt.Errorf("%w: %s=%q: %v", errUsage, name, v, e)
		}
	})
	return err
}

// newLogger returns the logger c asks for, writing to w.
func (c *config) newLogger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.logLevel}
	if c.logFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
