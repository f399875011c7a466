package main

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/glowvoc/glowvoc/server"
)

// TestParseConfig checks flags, environment variables and their errors.
func TestParseConfig(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(*config) bool
		err   string // a substring of the usage error, or "" for none
	}{
		{
			name: "defaults",
			args: []string{"--model", "m.safetensors"},
			check: func(c *config) bool {
				return c.addr == "127.0.0.1:8080" && c.model == "m.safetensors" && c.server.MaxFrames == server.DefaultMaxFrames &&
					c.server.MaxBodyBytes == server.DefaultMaxBodyBytes && c.server.RequestTimeout == server.DefaultRequestTimeout &&
					c.server.Workers >= 1 && c.server.QueueSize == 2*c.server.Workers && c.server.WarmDenoiser &&
					c.serve.ShutdownTimeout == 30*time.Second && c.logFormat == "json" && c.logLevel == slog.LevelInfo
			},
		},
		{
			name: "environment",
			env: map[string]string{"GLOWVOC_MODEL": "env.npz", "GLOWVOC_ADDR": ":9000", "GLOWVOC_MAX_FRAMES": "100",
				"GLOWVOC_REQUEST_TIMEOUT": "5s", "GLOWVOC_WARM_DENOISER": "false", "GLOWVOC_LOG_LEVEL": "debug"},
			check: func(c *config) bool {
				return c.model == "env.npz" && c.addr == ":9000" && c.server.MaxFrames == 100 &&
					c.server.RequestTimeout == 5*time.Second && !c.server.WarmDenoiser && c.logLevel == slog.LevelDebug
			},
		},
		{
			name: "flags win over the environment",
			args: []string{"--model", "flag.npz", "--workers", "3", "--queue", "0"},
			env:  map[string]string{"GLOWVOC_MODEL": "env.npz", "GLOWVOC_WORKERS": "7"},
			check: func(c *config) bool {
				return c.model == "flag.npz" && c.server.Workers == 3 && c.server.QueueSize == 0
			},
		},
		{name: "bundled model", check: func(c *config) bool { return c.model == "" }},
		{name: "config without model", args: []string{"--model-config", "c.json"}, err: "--model-config needs --model"},
		{name: "bad environment value", env: map[string]string{"GLOWVOC_MODEL": "m", "GLOWVOC_MAX_FRAMES": "many"}, err: `GLOWVOC_MAX_FRAMES="many"`},
		{name: "unknown flag", args: []string{"--modle", "m"}, err: "flag provided but not defined: -modle"},
		{name: "argument", args: []string{"--model", "m", "extra"}, err: `unexpected argument "extra"`},
		{name: "zero workers", args: []string{"--model", "m", "--workers", "0"}, err: "--workers must be at least 1"},
		{name: "negative queue", args: []string{"--model", "m", "--queue", "-1"}, err: "--queue must not be negative"},
		{name: "zero timeout", args: []string{"--model", "m", "--request-timeout", "0s"}, err: "--request-timeout must be positive"},
		{name: "log format", args: []string{"--model", "m", "--log-format", "xml"}, err: "--log-format must be json or text"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lookup := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			c, err := parseConfig(tc.args, lookup, io.Discard)
			if tc.err != "" {
				if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want a usage error containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Errorf("unexpected config %+v", c)
			}
		})
	}
}
