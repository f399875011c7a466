package train

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/glowvoc/glowvoc/internal/npy"
	"github.com/glowvoc/glowvoc/melspec"
	"github.com/glowvoc/glowvoc/vocoder"
)

// The reference fixtures (testdata/reference/README.md) were produced by
// NVIDIA's PyTorch WaveGlow and train.py.

func refDir(model string) string {
	return filepath.Join("..", "testdata", "reference", "waveglow", model)
}

func readNPZ(t testing.TB, model, file string) map[string]npy.Array {
	t.Helper()
	a, err := npy.ReadNPZ(filepath.Join(refDir(model), file))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func refConfig(t testing.TB, model string) vocoder.Config {
	t.Helper()
	cfg, err := vocoder.ReadConfigFile(filepath.Join(refDir(model), "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func stateDict(arrays map[string]npy.Array) vocoder.StateDict {
	sd := make(vocoder.StateDict, len(arrays))
	for name, a := range arrays {
		sd[name] = vocoder.Tensor{Shape: a.Shape, Data: a.Data}
	}
	return sd
}

// refModel loads a reference model from weights_wn.npz.
func refModel(t testing.TB, model string) *Model {
	t.Helper()
	m, err := FromStateDict(stateDict(readNPZ(t, model, "weights_wn.npz")), refConfig(t, model))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// refBatch returns the two examples of train.npz and the whole archive.
func refBatch(t testing.TB, model string) ([]Example, map[string]npy.Array) {
	t.Helper()
	a := readNPZ(t, model, "train.npz")
	mel, audio := a["mel"], a["audio"]
	B, nm, F, T := mel.Shape[0], mel.Shape[1], mel.Shape[2], audio.Shape[1]
	batch := make([]Example, B)
	for b := range batch {
		batch[b] = Example{
			Mel:   melspec.Spectrogram{NMels: nm, Frames: F, Data: mel.Data[b*nm*F : (b+1)*nm*F]},
			Audio: audio.Data[b*T : (b+1)*T],
		}
	}
	return batch, a
}

// tensorSums are the full-tensor checks meta.json records for tensors
// stored strided.
type tensorSums struct {
	Key        string  `json:"key"`
	Sum        float64 `json:"full_sum"`
	SumSquares float64 `json:"full_sum_of_squares"`
	SumAbs     float64 `json:"full_sum_abs"`
}

// stridedSums returns the meta.json entry of tensor name in file, if it
// is stored strided.
func stridedSums(t testing.TB, model, file, name string) (tensorSums, bool) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(refDir(model), "meta.json"))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Files map[string]map[string]json.RawMessage `json:"files"`
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		t.Fatal(err)
	}
	raw, ok := meta.Files[file][name]
	if !ok {
		return tensorSums{}, false
	}
	var s tensorSums
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	return s, s.Key != ""
}

// taps64 returns x[:, :, ::64] of an [a, b, k] tensor.
func taps64(x []float32, shape []int) []float32 {
	a, b, k := shape[0], shape[1], shape[2]
	var out []float32
	for i := 0; i < a*b; i++ {
		for j := 0; j < k; j += 64 {
			out = append(out, x[i*k+j])
		}
	}
	return out
}

// sums returns Σx, Σx² and Σ|x| in float64.
func sums(x []float32) (s, s2, sa float64) {
	for _, v := range x {
		f := float64(v)
		s += f
		s2 += f * f
		sa += math.Abs(f)
	}
	return s, s2, sa
}

func maxAbs(x []float32) float64 {
	var m float64
	for _, v := range x {
		m = math.Max(m, math.Abs(float64(v)))
	}
	return m
}

// maxAbsDiff returns max|got−want| and its index.
func maxAbsDiff(got, want []float32) (float64, int) {
	var m float64
	at := 0
	for i := range want {
		if d := math.Abs(float64(got[i]) - float64(want[i])); d > m || math.IsNaN(d) {
			m, at = d, i
			if math.IsNaN(d) {
				return math.Inf(1), i
			}
		}
	}
	return m, at
}
