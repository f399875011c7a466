package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/glowvoc/glowvoc/server"
	"github.com/glowvoc/glowvoc/vocoder"
	"github.com/glowvoc/glowvoc/weights"
)

// run runs serve with args until ctx ends, and returns the exit status.
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stderr io.Writer) int {
	c, err := parseConfig(args, lookupEnv, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "serve: %v\n", strings.TrimPrefix(err.Error(), errUsage.Error()+": "))
		return 2
	}
	log := c.newLogger(stderr)
	if err := serve(ctx, c, log); err != nil {
		log.Error("serve failed", "error", err)
		return 1
	}
	return 0
}

// serve loads the model, listens, warms up and serves until ctx ends.
func serve(ctx context.Context, c *config, log *slog.Logger) error {
	start := time.Now()
	m, name, err := loadModel(c.model, c.modelConfig)
	if err != nil {
		return err
	}
	if c.server.ModelName == "" {
		c.server.ModelName = name
	}
	log.Info("model loaded", "model", cmp.Or(c.model, "bundled"), "name", c.server.ModelName, "duration", time.Since(start).Round(time.Millisecond))
	c.server.Logger = log
	srv, err := server.New(m, c.server)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}

	// Serve while warming up (/healthz answers, /readyz says 503); a
	// failed warm-up shuts the server down.
	serveCtx, stop := context.WithCancel(ctx)
	defer stop()
	warmErr := make(chan error, 1)
	go func() {
		err := srv.Warm(serveCtx)
		if err != nil && serveCtx.Err() == nil {
			stop()
		}
		warmErr <- err
	}()
	err = srv.Serve(serveCtx, ln, c.serve)
	stop()
	werr := <-warmErr
	if err == nil && ctx.Err() == nil {
		err = werr // serving stopped because the warm-up failed
	}
	return err
}

// loadModel loads the model file at path (the bundled model when path is
// empty; see weights.Load) and returns it with the name /v1/models reports.
func loadModel(path, configPath string) (*vocoder.Model, string, error) {
	m, err := weights.Load(path, configPath)
	if err != nil {
		return nil, "", fmt.Errorf("load model: %w", err)
	}
	if path == "" {
		return m, weights.Name, nil
	}
	return m, strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)), nil
}
