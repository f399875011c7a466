package main

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestBench(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"random weights", []string{"bench", "--config", tinyConfig, "--frames", "8", "--count", "1", "--threads", "1,2"}, exitOK, "GFLOP/s"},
		{"model file", []string{"bench", "--model", tinyWeights, "--config", tinyConfig, "--frames", "8", "--count", "1", "--threads", "1"}, exitOK, "× real time"},
		{"profile", []string{"bench", "--config", tinyConfig, "--frames", "8", "--count", "1", "--threads", "1", "--cpuprofile", filepath.Join(t.TempDir(), "cpu.prof")}, exitOK, "GFLOP/s"},
		{"no model", []string{"bench"}, exitUsage, "--model or --config"},
		{"bad threads", []string{"bench", "--config", tinyConfig, "--threads", "0"}, exitUsage, "--threads"},
	}
	for _, tc := range tests {
		r := vocode(t, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stdout+r.stderr, tc.want) {
			t.Errorf("%s: exit %d, output %q %q; want exit %d mentioning %q", tc.name, r.code, r.stdout, r.stderr, tc.code, tc.want)
		}
	}
	// One row per thread count.
	r := vocode(t, tests[0].args...)
	if rows := strings.Count(r.stdout, "\n"); rows != 4 {
		t.Errorf("got %d lines, want a title, a header and 2 rows:\n%s", rows, r.stdout)
	}
}
