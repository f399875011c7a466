// Command serve runs glowvoc's vocoder HTTP service (package server):
// POST /synthesize turns mel spectrograms into speech, whole or streamed,
// POST /score and POST /mel analyse WAVs, and /healthz, /readyz,
// /v1/models and /metrics serve operations. A page at / lets a person try
// it.
//
// Usage:
//
//	serve --model waveglow.safetensors [flags]
//
// Every flag can also be set by an environment variable: GLOWVOC_ and the
// flag name in upper case with '-' as '_' (--max-frames is
// GLOWVOC_MAX_FRAMES). A flag on the command line wins over the variable.
//
// On SIGTERM or SIGINT the server stops being ready (/readyz answers 503),
// waits --drain-delay, stops accepting connections and gives in-flight
// requests --shutdown-timeout to finish before cancelling them.
//
// Exit status: 0 after a graceful shutdown, 1 on runtime errors, 2 on
// usage errors.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.LookupEnv, os.Stderr)
	stop()
	os.Exit(code)
}
