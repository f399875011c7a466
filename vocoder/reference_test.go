package vocoder

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"sync"
	"testing"

	"github.com/glowvoc/glowvoc/internal/npy"
	"github.com/glowvoc/glowvoc/melspec"
)

// The reference fixtures (testdata/reference/README.md) were produced by
// NVIDIA's PyTorch WaveGlow. These tests hold the Go model to them with
// the tolerances the README derives from float32-vs-float64 drift.

var refModels = []string{"tiny", "small", "tiny_mel8"}

func refDir(model string) string {
	return filepath.Join("..", "testdata", "reference", "waveglow", model)
}

var (
	modelCacheMu sync.Mutex
	modelCache   = map[string]*Model{}
)

// refModel loads a reference model from its folded weights.npz and
// config.json, once per test binary.
func refModel(t testing.TB, name string) *Model {
	t.Helper()
	modelCacheMu.Lock()
	defer modelCacheMu.Unlock()
	if m, ok := modelCache[name]; ok {
		return m
	}
	cfg, err := ReadConfigFile(filepath.Join(refDir(name), "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(filepath.Join(refDir(name), "weights.npz"), LoadOptions{Config: &cfg})
	if err != nil {
		t.Fatal(err)
	}
	modelCache[name] = m
	return m
}

// privateModel returns a new copy of reference model name, which a test
// may change (its one-pass limit, say) without affecting the others.
func privateModel(t testing.TB, name string) *Model {
	t.Helper()
	ref := refModel(t, name)
	m, err := New(ref.StateDict(), ref.Config())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// variants returns m and, if m uses fused conditioning weights, the same
// model without them, so that both code paths meet the reference.
func variants(t testing.TB, m *Model) map[string]*Model {
	t.Helper()
	if !m.fused() {
		return map[string]*Model{"plain": m}
	}
	plain, err := newModel(m.StateDict(), m.cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]*Model{"fused": m, "plain": plain}
}

func readNPZ(t testing.TB, model, file string) map[string]npy.Array {
	t.Helper()
	a, err := npy.ReadNPZ(filepath.Join(refDir(model), file))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// melOf returns batch item b of a [B, n_mels, T] array.
func melOf(a npy.Array, b int) melspec.Spectrogram {
	n, T := a.Shape[1], a.Shape[2]
	return melspec.Spectrogram{NMels: n, Frames: T, Data: a.Data[b*n*T : (b+1)*n*T]}
}

// maxAbs returns max|x|.
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
	at := -1
	for i := range want {
		if d := math.Abs(float64(got[i]) - float64(want[i])); d > m || at < 0 {
			m, at = math.Max(m, d), i
		}
	}
	return m, at
}

// closeTo fails t unless |got−want| ≤ rtol·max|want| + atol everywhere.
func closeTo(t *testing.T, what string, got, want []float32, rtol, atol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	ref := maxAbs(want)
	d, at := maxAbsDiff(got, want)
	tol := rtol*ref + atol
	t.Logf("%s: max abs err %.3g (%.3g of max %.3g), tolerance %.3g", what, d, d/ref, ref, tol)
	if d > tol || math.IsNaN(d) {
		t.Errorf("%s: max abs error %.3g at %d (got %v, want %v) exceeds %.3g", what, d, at, got[at], want[at], tol)
	}
}

func relClose(t *testing.T, what string, got, want, rtol float64) {
	t.Helper()
	rel := math.Abs(got-want) / math.Max(math.Abs(want), 1e-30)
	t.Logf("%s: got %.9g want %.9g rel err %.3g", what, got, want, rel)
	if !(rel <= rtol) {
		t.Errorf("%s = %.9g, want %.9g (rel err %.3g > %.3g)", what, got, want, rel, rtol)
	}
}

func TestUpsampleCase(t *testing.T) {
	m := refModel(t, "tiny")
	c := readNPZ(t, "tiny", "upsample_case.npz")
	mel := melOf(c["mel"], 0)
	// The raw transposed convolution, untrimmed.
	full := (mel.Frames-1)*m.cfg.Mel.Hop + m.cfg.UpsampleKernel
	cond, err := m.upsample(context.Background(), m.workspace(), mel, full)
	if err != nil {
		t.Fatal(err)
	}
	up := unsqueezeRows(cond, m.cfg.NMels, m.cfg.Group, full/m.cfg.Group)
	closeTo(t, "upsampled", up, c["upsampled"].Data, 1e-5, 1e-7)
	cond, err = m.upsample(context.Background(), m.workspace(), mel, m.Samples(mel.Frames))
	if err != nil {
		t.Fatal(err)
	}
	closeTo(t, "cond_input", cond, c["cond_input"].Data, 1e-5, 1e-7)
}

// unsqueezeRows undoes the grouping of conditioning: [n·G × cols] → [n × cols·G].
func unsqueezeRows(cond []float32, n, G, cols int) []float32 {
	out := make([]float32, len(cond))
	for c := 0; c < n; c++ {
		unsqueeze(out[c*G*cols:(c+1)*G*cols], cond[c*G*cols:(c+1)*G*cols], G, cols)
	}
	return out
}

func TestInverseMatrices(t *testing.T) {
	for _, name := range refModels {
		t.Run(name, func(t *testing.T) {
			m := refModel(t, name)
			ref := readNPZ(t, name, "convinv_inverse.npz")
			for k, f := range m.flows {
				want := ref[fmt.Sprintf("convinv.%d.W_inverse", k)]
				closeTo(t, fmt.Sprintf("W_inverse %d", k), f.wInv, want.Data, 1e-5, 0)
			}
		})
	}
}

func TestSynthesizeReference(t *testing.T) {
	for _, name := range refModels {
		for _, file := range []string{"infer_sigma0.6.npz", "infer_sigma0.npz"} {
			t.Run(name+"/"+file, func(t *testing.T) {
				c := readNPZ(t, name, file)
				for v, m := range variants(t, refModel(t, name)) {
					audio, err := m.Synthesize(context.Background(), melOf(c["mel"], 0), SynthesizeOptions{Noise: c["z"].Data})
					if err != nil {
						t.Fatal(err)
					}
					closeTo(t, v+" audio", audio, c["audio"].Data, 1e-5, 1e-6)
				}
			})
		}
	}
}

func TestInferTrace(t *testing.T) {
	m := refModel(t, "tiny")
	c := readNPZ(t, "tiny", "infer_trace.npz")
	audio, err := m.Synthesize(context.Background(), melOf(c["mel"], 0), SynthesizeOptions{Noise: c["z"].Data})
	if err != nil {
		t.Fatal(err)
	}
	closeTo(t, "audio", audio, c["audio"].Data, 1e-5, 1e-6)
}

func TestForwardReference(t *testing.T) {
	for _, name := range refModels {
		for v, m := range variants(t, refModel(t, name)) {
			t.Run(name+"/"+v, func(t *testing.T) {
				c := readNPZ(t, name, "train.npz")
				B, T := c["audio"].Shape[0], c["audio"].Shape[1]
				G, cols := m.cfg.Group, T/m.cfg.Group
				var results []*ForwardResult
				logS := make([]float64, m.cfg.Flows)
				logDet := make([]float64, m.cfg.Flows)
				for b := 0; b < B; b++ {
					r, err := m.Forward(context.Background(), c["audio"].Data[b*T:(b+1)*T], melOf(c["mel"], b))
					if err != nil {
						t.Fatal(err)
					}
					closeTo(t, fmt.Sprintf("z[%d]", b), r.Z, c["z"].Data[b*G*cols:(b+1)*G*cols], 0, 1e-5)
					for k := range logS {
						logS[k] += r.LogSSum[k]
						logDet[k] += r.LogDetW[k]
					}
					results = append(results, r)
				}
				for k := range logS {
					relClose(t, fmt.Sprintf("log_s_sum[%d]", k), logS[k], float64(c["log_s_sum"].Data[k]), 1e-5)
					relClose(t, fmt.Sprintf("log_det_W[%d]", k), logDet[k], float64(c["log_det_W"].Data[k]), 1e-5)
				}
				relClose(t, "loss", Loss(results, 1), float64(c["loss"].Data[0]), 1e-5)
			})
		}
	}
}

func TestDenoiserReference(t *testing.T) {
	m := refModel(t, "tiny")
	c := readNPZ(t, "tiny", "denoiser.npz")
	bias, _, err := m.denoiserBias(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	closeTo(t, "bias_spec", bias, c["bias_spec"].Data, 1e-5, 0)
	out, err := m.Denoise(context.Background(), c["audio"].Data, float64(c["strength"].Data[0]))
	if err != nil {
		t.Fatal(err)
	}
	closeTo(t, "denoised", out, c["denoised"].Data, 1e-5, 0)
}

func TestWeightNormImport(t *testing.T) {
	// small's weights_wn.npz is not copied to testdata (8 MB).
	for _, name := range []string{"tiny", "tiny_mel8"} {
		t.Run(name, func(t *testing.T) {
			folded := refModel(t, name)
			wn, err := Load(filepath.Join(refDir(name), "weights_wn.npz"), LoadOptions{Config: &folded.cfg})
			if err != nil {
				t.Fatal(err)
			}
			got, want := wn.StateDict(), folded.StateDict()
			for k, w := range want {
				closeTo(t, k, got[k].Data, w.Data, 1e-6, 0)
			}
		})
	}
}
