package train

import (
	"math"
	"testing"
)

func TestGate(t *testing.T) {
	const C, n = 3, 7
	pre := []float32{
		0, 1e-8, -1e-8, 0.5, -0.5, 3, -3,
		20, -20, 100, -100, 1e30, -1e30, 0.1,
		float32(math.NaN()), 2, -2, 1, -1, 0.25, 7,
		0, 1e-8, -1e-8, 0.5, -0.5, 3, -3,
		100, -100, 20, -20, -1e30, 1e30, 0.1,
		1, float32(math.NaN()), 2, -2, 1, -1, 0.25,
	}
	ts, ss, as := make([]float32, C*n), make([]float32, C*n), make([]float32, C*n)
	gateForward(ts, ss, as, pre, C, n)
	for i := range ts {
		f, g := float64(pre[i]), float64(pre[C*n+i])
		wt, ws := float32(math.Tanh(f)), float32(1/(1+math.Exp(-g)))
		if math.IsNaN(f) || math.IsNaN(g) {
			if !math.IsNaN(float64(as[i])) {
				t.Errorf("element %d: NaN input gives activation %v", i, as[i])
			}
			continue
		}
		if math.Abs(float64(ts[i]-wt)) > 1e-7*math.Abs(float64(wt)) {
			t.Errorf("tanh(%v) = %v, want %v", f, ts[i], wt)
		}
		if math.Abs(float64(ss[i]-ws)) > 1e-7*math.Abs(float64(ws))+1e-34 {
			t.Errorf("σ(%v) = %v, want %v", g, ss[i], ws)
		}
		if as[i] != ts[i]*ss[i] {
			t.Errorf("activation %d = %v, want %v", i, as[i], ts[i]*ss[i])
		}
	}
}
