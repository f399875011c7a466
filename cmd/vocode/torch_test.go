package main

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"
)

// torchDir holds PyTorch files of the test data.
var torchDir = filepath.Join("..", "..", "testdata", "torch")

// TestPyTorchInputs runs the commands on NVIDIA's PyTorch files as they are:
// a training checkpoint as --model (and through convert), and Tacotron2-style
// mel tensors saved with torch.save (a non-contiguous view, a batched one and
// a legacy-format view) as synth inputs.
func TestPyTorchInputs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ckpt := filepath.Join(trainRefDir, "checkpoint.pt")

	// --noise synthesis from the checkpoint reproduces the reference audio.
	c := readNPZ(t, filepath.Join(trainRefDir, "infer_sigma0.6.npz"))
	mel := writeNPY(t, filepath.Join(dir, "ref_mel.npy"), c["mel"])
	z := writeNPY(t, filepath.Join(dir, "ref_z.npy"), c["z"])
	out := filepath.Join(dir, "ref.npy")
	mustSucceed(t, vocode(t, "synth", "--model", ckpt, "--noise", z, "-o", out, mel))
	checkClose(t, readNPY(t, out).Data, c["audio"].Data, 1e-5, 1e-6)

	// convert + info keep the topology.
	st := filepath.Join(dir, "mel8.safetensors")
	mustSucceed(t, vocode(t, "convert", "-o", st, ckpt))
	r := vocode(t, "info", st)
	mustSucceed(t, r)
	var info struct {
		WaveGlow struct {
			NMels int `json:"n_mel_channels"`
			Flows int `json:"n_flows"`
		} `json:"waveglow_config"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil {
		t.Fatalf("info output: %v\n%s", err, r.stdout)
	}
	if info.WaveGlow.NMels != 8 || info.WaveGlow.Flows != 4 {
		t.Errorf("converted checkpoint: %+v", info.WaveGlow)
	}

	// A mel .pt gives the same audio as the same values in a .npy.
	want := readNPZ(t, filepath.Join(torchDir, "mels.expected.npz"))
	for _, name := range []string{"mel_transposed.pt", "mel_batched.pt", "mel_legacy_view.pt"} {
		fromPT := filepath.Join(dir, name+".out.npy")
		mustSucceed(t, vocode(t, "synth", "--model", st, "--seed", "5", "-o", fromPT, filepath.Join(torchDir, name)))
		npyMel := writeNPY(t, filepath.Join(dir, name+".mel.npy"), want[name])
		fromNPY := filepath.Join(dir, name+".ref.npy")
		mustSucceed(t, vocode(t, "synth", "--model", st, "--seed", "5", "-o", fromNPY, npyMel))
		if a, b := readNPY(t, fromPT).Data, readNPY(t, fromNPY).Data; len(a) == 0 || !slices.Equal(a, b) {
			t.Errorf("%s: synthesis differs from the same mel as .npy", name)
		}
	}
}
