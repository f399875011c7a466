package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/glowvoc/glowvoc/weights"
)

// TestBundledModel runs the commands without --model: they use the model
// embedded in the binary.
func TestBundledModel(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := filepath.Join(dir, "hello.wav")
	mustSucceed(t, vocode(t, "resynth", "-o", out, helloWAV))
	m, err := weights.Default()
	if err != nil {
		t.Fatal(err)
	}
	c := readWAV(t, out)
	if c.SampleRate != m.Config().Mel.SampleRate || len(c.Samples) == 0 {
		t.Errorf("resynthesis: %d samples at %d Hz", len(c.Samples), c.SampleRate)
	}
	r := vocode(t, "info")
	if r.code != exitUsage {
		t.Errorf("info without a model: exit %d", r.code)
	}
	r = vocode(t, "score", helloWAV)
	mustSucceed(t, r)
	if !strings.Contains(r.stdout, "nll_nats_per_sample") {
		t.Errorf("score output: %s", r.stdout)
	}
}
