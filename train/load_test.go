package train

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glowvoc/glowvoc/vocoder"
)

// TestLoadModelFile starts from tiny_mel8 in every file form: the
// weight-norm forms give weights_wn.npz exactly, the folded forms give
// the same folded weights.
func TestLoadModelFile(t *testing.T) {
	t.Parallel()
	cfg := refConfig(t, "tiny_mel8")
	dir := t.TempDir()
	ref := refModel(t, "tiny_mel8")
	vm, err := ref.ExportInference()
	if err != nil {
		t.Fatal(err)
	}
	exported := filepath.Join(dir, "model.safetensors")
	if err := vm.Save(exported); err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(dir, "ckpt.safetensors")
	if err := (&Checkpoint{Model: ref, Run: DefaultRunConfig()}).WriteFile(ckpt); err != nil {
		t.Fatal(err)
	}
	legacy, err := os.ReadFile(filepath.Join(refDir("tiny_mel8"), "checkpoint_legacy_cuda.pt"))
	if err != nil {
		t.Fatal(err)
	}
	nvidiaName := filepath.Join(dir, "waveglow_2") // how NVIDIA's train.py names checkpoints
	if err := os.WriteFile(nvidiaName, legacy, 0o644); err != nil {
		t.Fatal(err)
	}
	otherMel := cfg
	otherMel.Mel.FMax = 7000
	vmOther, err := vocoder.New(vm.StateDict(), otherMel)
	if err != nil {
		t.Fatal(err)
	}
	exportedOther := filepath.Join(dir, "other.safetensors")
	if err := vmOther.Save(exportedOther); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
		exact      bool // weight-norm form: the parameters equal weights_wn.npz
	}{
		{"weight-norm npz", filepath.Join(refDir("tiny_mel8"), "weights_wn.npz"), true},
		{"NVIDIA checkpoint", filepath.Join(refDir("tiny_mel8"), "checkpoint.pt"), true},
		{"legacy CUDA checkpoint", filepath.Join(refDir("tiny_mel8"), "checkpoint_legacy_cuda.pt"), true},
		{"legacy checkpoint without extension", nvidiaName, true},
		{"training checkpoint", ckpt, true},
		{"folded npz", filepath.Join(refDir("tiny_mel8"), "weights.npz"), false},
		{"state dict .pt", filepath.Join(refDir("tiny_mel8"), "state_dict.pt"), false},
		{"glowvoc model", exported, false},
	}
	want := vm.StateDict()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := LoadModelFile(tt.path, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if tt.exact {
				for _, p := range m.Params() {
					if got := ref.Param(p.Name).Value; maxAbsDiffOrInf(p.Value, got) != 0 {
						t.Errorf("%s differs", p.Name)
					}
				}
				return
			}
			got, err := m.ExportInference()
			if err != nil {
				t.Fatal(err)
			}
			for name, w := range want {
				g := got.StateDict()[name]
				if d := maxAbsDiffOrInf(g.Data, w.Data); d > 1e-6*maxAbs(w.Data) {
					t.Errorf("%s: folded weights differ by %.3g", name, d)
				}
			}
		})
	}

	errTests := []struct {
		name, path string
		want       string
	}{
		{"other topology", filepath.Join(refDir("tiny"), "weights.npz"), "tiny/weights.npz"},
		{"other mel front end", exportedOther, "mel front end"},
		{"unknown type", filepath.Join(refDir("tiny_mel8"), "config.json"), `".json"`},
	}
	for _, tt := range errTests {
		if _, err := LoadModelFile(tt.path, cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one mentioning %q", tt.name, err, tt.want)
		}
	}
}

// maxAbsDiffOrInf is maxAbsDiff for slices that may differ in length.
func maxAbsDiffOrInf(got, want []float32) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	d, _ := maxAbsDiff(got, want)
	return d
}
