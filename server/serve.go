package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// ServeOptions control how Serve shuts down.
type ServeOptions struct {
	// DrainDelay is how long /readyz answers 503, with requests still
	// served, before the listener closes: time for load balancers to take
	// the replica out of rotation.
	DrainDelay time.Duration
	// ShutdownTimeout bounds the wait for in-flight requests (streams
	// included) to finish once the listener is closed; requests still
	// running then are cancelled and their connections closed.
	ShutdownTimeout time.Duration
}

// Serve serves s on ln until ctx ends, then shuts down gracefully: /readyz
// answers 503, after opts.DrainDelay the listener closes, and in-flight
// requests get opts.ShutdownTimeout to finish. It returns nil after a
// graceful shutdown, or the error that ended serving or forced the
// shutdown. Warm is not called: call it concurrently, so that /healthz
// answers while the model warms up.
func (s *Server) Serve(ctx context.Context, ln net.Listener, opts ServeOptions) error {
	// Requests' contexts derive from base, cancelled if the graceful
	// shutdown times out, so that running syntheses stop.
	base, cancel := context.WithCancel(context.Background())
	defer cancel()
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		// Bounds writing the answers of the routes without a request
		// deadline (/metrics, /, ...); the others extend it.
		WriteTimeout:   30 * time.Second,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:    func(net.Listener) context.Context { return base },
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	s.log.Info("listening", "addr", ln.Addr().String())

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.drain()
	s.log.Info("shutting down", "drain_delay", opts.DrainDelay, "timeout", opts.ShutdownTimeout)
	select {
	case <-time.After(opts.DrainDelay):
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	}

	sctx, stop := context.WithTimeout(context.Background(), opts.ShutdownTimeout)
	defer stop()
	if err := hs.Shutdown(sctx); err != nil {
		cancel()
		hs.Close()
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	s.log.Info("shut down")
	return nil
}
