package train

import (
	"archive/zip"
	"context"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/glowvoc/glowvoc/internal/npy"
)

var refModels = []string{"tiny", "small", "tiny_mel8"}

// TestParamOrder checks names, shapes and order against weights_wn.npz,
// whose members PyTorch wrote in named_parameters() order.
func TestParamOrder(t *testing.T) {
	for _, model := range refModels {
		t.Run(model, func(t *testing.T) {
			zr, err := zip.OpenReader(filepath.Join(refDir(model), "weights_wn.npz"))
			if err != nil {
				t.Fatal(err)
			}
			defer zr.Close()
			var want []string
			for _, f := range zr.File {
				want = append(want, strings.TrimSuffix(f.Name, ".npy"))
			}
			m, err := newModel(refConfig(t, model))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range m.Params() {
				got = append(got, p.Name)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("parameter order differs:\ngot  %v\nwant %v", got, want)
			}
			arrays := readNPZ(t, model, "weights_wn.npz")
			for _, p := range m.Params() {
				if !slices.Equal(p.Shape, arrays[p.Name].Shape) {
					t.Errorf("%s: shape %v, want %v", p.Name, p.Shape, arrays[p.Name].Shape)
				}
			}
		})
	}
}

// TestGradientsReference compares the loss and every parameter gradient
// with PyTorch's on train.npz, in both memory modes and with one and two
// workers.
func TestGradientsReference(t *testing.T) {
	modes := []struct {
		name string
		opts Options
	}{
		{"recompute", Options{Recompute: true, Workers: 2}},
		{"store", Options{Recompute: false, Workers: 1}},
	}
	for _, model := range refModels {
		m := refModel(t, model)
		batch, train := refBatch(t, model)
		grads := readNPZ(t, model, "grads.npz")
		wantLoss := float64(train["loss"].Data[0])
		for _, mode := range modes {
			if testing.Short() && model == "small" && !mode.opts.Recompute {
				continue
			}
			t.Run(model+"/"+mode.name, func(t *testing.T) {
				m.SetOptions(mode.opts)
				loss, err := m.Gradients(context.Background(), batch, 1.0)
				if err != nil {
					t.Fatal(err)
				}
				if rel := math.Abs(loss-wantLoss) / math.Abs(wantLoss); rel > 1e-5 {
					t.Errorf("loss %.9g, want %.9g (rel %.2g)", loss, wantLoss, rel)
				} else {
					t.Logf("loss %.9g, want %.9g (rel %.2g)", loss, wantLoss, rel)
				}
				checkGrads(t, model, m, grads)
			})
		}
	}
}

// checkGrads compares every gradient with grads.npz using README §5's
// tolerance, abs ≤ 1e-4·max|ref| + 1e-7, and logs the worst ratio.
func checkGrads(t *testing.T, model string, m *Model, grads map[string]npy.Array) {
	t.Helper()
	worst, worstName := 0.0, ""
	for _, p := range m.Params() {
		got := p.Grad
		want, ok := grads[p.Name]
		if s, strided := stridedSums(t, model, "grads.npz", p.Name); strided {
			want = grads[s.Key]
			got = taps64(p.Grad, p.Shape)
			gs, gs2, gsa := sums(p.Grad)
			for _, c := range []struct {
				what      string
				got, want float64
				scale     float64
			}{
				{"sum", gs, s.Sum, s.SumAbs},
				{"sum of squares", gs2, s.SumSquares, s.SumSquares},
				{"sum of abs", gsa, s.SumAbs, s.SumAbs},
			} {
				if d := math.Abs(c.got - c.want); d > 1e-6*c.scale {
					t.Errorf("%s: full-tensor %s %.9g, want %.9g", p.Name, c.what, c.got, c.want)
				} else {
					t.Logf("%s: full-tensor %s %.9g, want %.9g (|Δ| %.2g of scale %.3g)", p.Name, c.what, c.got, c.want, d, c.scale)
				}
			}
			ok = true
		}
		if !ok {
			t.Errorf("%s: no reference gradient", p.Name)
			continue
		}
		ref := maxAbs(want.Data)
		d, at := maxAbsDiff(got, want.Data)
		tol := 1e-4*ref + 1e-7
		if d > tol {
			t.Errorf("%s: |Δgrad| %.3g at %d (got %v, want %v), tolerance %.3g", p.Name, d, at, got[at], want.Data[at], tol)
		}
		if r := d / tol; r > worst {
			worst, worstName = r, fmt.Sprintf("%s (|Δ| %.3g, max|ref| %.3g)", p.Name, d, ref)
		}
	}
	t.Logf("worst gradient: %.3f of tolerance: %s", worst, worstName)
}
