package vocoder

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/glowvoc/glowvoc/internal/npy"
)

// TestPyTorchCheckpoints loads NVIDIA's training checkpoint (zip and legacy
// CUDA formats) and a state dict of tiny_mel8 and checks that each
// reproduces the reference inference.
func TestPyTorchCheckpoints(t *testing.T) {
	c := readNPZ(t, "tiny_mel8", "infer_sigma0.6.npz")
	for _, file := range []string{"checkpoint.pt", "checkpoint_legacy_cuda.pt", "state_dict.pt"} {
		t.Run(file, func(t *testing.T) {
			m, err := Load(filepath.Join(refDir("tiny_mel8"), file), LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if want := refModel(t, "tiny_mel8").Config(); m.Config() != want {
				t.Errorf("config %+v, want %+v", m.Config(), want)
			}
			audio, err := m.Synthesize(context.Background(), melOf(c["mel"], 0), SynthesizeOptions{Noise: c["z"].Data})
			if err != nil {
				t.Fatal(err)
			}
			closeTo(t, "audio", audio, c["audio"].Data, 1e-5, 1e-6)
		})
	}
}

// TestOldLayoutCheckpoint loads a legacy-format NVIDIA training checkpoint
// of the pre-2019 WN layout (made by testdata/torch/make_fixtures.py) and
// compares it with what NVIDIA's convert_model.py + weight-norm removal
// give, and the same state dict saved in float16.
func TestOldLayoutCheckpoint(t *testing.T) {
	want, err := npy.ReadNPZ(filepath.Join("..", "testdata", "torch", "old_layout_legacy.converted.npz"))
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"old_layout_legacy.pt", "state_dict_fp16.pt"} {
		t.Run(file, func(t *testing.T) {
			m, err := Load(filepath.Join("..", "testdata", "torch", file), LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got := m.StateDict()
			if len(got) != len(want) {
				t.Errorf("%d tensors, want %d", len(got), len(want))
			}
			// float16 keeps 11 significant bits.
			rtol := 1e-6
			if file == "state_dict_fp16.pt" {
				rtol = 1e-3
			}
			for name, w := range want {
				g, ok := got[name]
				if !ok {
					t.Errorf("tensor %s missing", name)
					continue
				}
				d, _ := maxAbsDiff(g.Data, w.Data)
				if d > rtol*maxAbs(w.Data) {
					t.Errorf("%s: max abs error %.3g", name, d)
				}
			}
		})
	}
}
