package nn

import (
	"flag"
	"math"
	"testing"
)

// sweepStep is the distance, in float32 bit patterns, between the inputs
// TestActivationAccuracy tries; -sweepstep=1 tries every float32 in range.
var sweepStep = flag.Int("sweepstep", 1<<12, "stride through the float32 bit patterns in TestActivationAccuracy")

// ulpError returns |got − want| in units of the float32 spacing at want.
func ulpError(got float32, want float64) float64 {
	if math.IsNaN(want) {
		if math.IsNaN(float64(got)) {
			return 0
		}
		return math.Inf(1)
	}
	if float64(got) == want || got == float32(want) && math.IsInf(float64(got), 0) {
		return 0 // exact, or the float32 overflow of a huge value
	}
	_, e := math.Frexp(math.Abs(want))
	ulp := math.Ldexp(1, max(e-24, -149))
	return math.Abs(float64(got)-want) / ulp
}

// sweep calls f with float32 values from lo to hi (both finite), every
// step bit patterns apart, in batches, and returns the largest ulp error
// against ref and an input where it occurs.
func sweep(lo, hi float32, step int, f func(dst, src []float32), ref func(float64) float64) (worst float64, at float32) {
	// Order the float32 values as integers: negative ones below positive.
	key := func(v float32) int64 {
		b := int64(math.Float32bits(v))
		if b&(1<<31) != 0 {
			return -(b &^ (1 << 31))
		}
		return b
	}
	value := func(k int64) float32 {
		if k < 0 {
			return math.Float32frombits(uint32(-k) | 1<<31)
		}
		return math.Float32frombits(uint32(k))
	}
	const batch = 4096
	src := make([]float32, 0, batch)
	dst := make([]float32, batch)
	flush := func() {
		f(dst[:len(src)], src)
		for i, x := range src {
			if e := ulpError(dst[i], ref(float64(x))); e > worst || math.IsNaN(e) {
				worst, at = e, x
			}
		}
		src = src[:0]
	}
	for k := key(lo); k <= key(hi); k += int64(step) {
		src = append(src, value(k))
		if len(src) == batch {
			flush()
		}
	}
	flush()
	return worst, at
}

func sigmoid(y float64) float64 { return 1 / (1 + math.Exp(-y)) }

// TestActivationAccuracy measures the largest error of the gated
// activation's tanh and σ halves, and of Exp, over a sweep of float32
// inputs, on the dispatched (assembly) path and the portable one. Both
// evaluate in float64 and round once, so they must stay within one ulp.
func TestActivationAccuracy(t *testing.T) {
	step := *sweepStep
	if testing.Short() || raceEnabled {
		step *= 16
	}
	// A filter of 100 makes tanh exactly 1 in float64, and a gate of 100
	// makes σ exactly 1, isolating the other half.
	const one = 100
	tanhVia := func(g func(dst, filter, gate []float32, fb, gb float32)) func(dst, src []float32) {
		return func(dst, src []float32) {
			gate := make([]float32, len(src))
			for i := range gate {
				gate[i] = one
			}
			g(dst, src, gate, 0, 0)
		}
	}
	sigmoidVia := func(g func(dst, filter, gate []float32, fb, gb float32)) func(dst, src []float32) {
		return func(dst, src []float32) {
			filter := make([]float32, len(src))
			for i := range filter {
				filter[i] = one
			}
			g(dst, filter, src, 0, 0)
		}
	}
	tests := []struct {
		name   string
		f      func(dst, src []float32)
		ref    func(float64) float64
		lo, hi float32
	}{
		{"tanh", tanhVia(gated), math.Tanh, -20, 20},
		{"tanh/portable", tanhVia(gatedGo), math.Tanh, -20, 20},
		{"sigmoid", sigmoidVia(gated), sigmoid, -110, 40},
		{"sigmoid/portable", sigmoidVia(gatedGo), sigmoid, -110, 40},
		{"exp", exp, math.Exp, -110, 90},
		{"exp/portable", expGo, math.Exp, -110, 90},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			worst, at := sweep(tt.lo, tt.hi, step, tt.f, tt.ref)
			t.Logf("max error %.6f ulp at %v (inputs in [%v, %v], every %d-th float32)", worst, at, tt.lo, tt.hi, step)
			if !(worst <= 1) {
				t.Errorf("max error %v ulp at %v, want ≤ 1", worst, at)
			}
		})
	}
}

// TestActivationSpecial checks infinities, NaN, signed zeros and values
// around the ends of the ranges on the dispatched path against the
// portable one.
func TestActivationSpecial(t *testing.T) {
	inf := float32(math.Inf(1))
	nan := float32(math.NaN())
	vals := []float32{0, float32(math.Copysign(0, -1)), 1e-45, -1e-45, 1e-30, -1e-30, 0.25, -0.25, 0.34657359, -0.34657359,
		9, -9, 20, -20, 88.7, 88.8, -103.9, -104, -150, 150, 1e30, -1e30, inf, -inf, nan}
	for _, x := range vals {
		for _, y := range vals {
			var got, want [1]float32
			gated(got[:], []float32{x}, []float32{y}, 0, 0)
			gatedGo(want[:], []float32{x}, []float32{y}, 0, 0)
			if e := ulpError(got[0], float64(want[0])); !(e <= 1) || !math.IsNaN(float64(got[0])) && math.Signbit(float64(got[0])) != math.Signbit(float64(want[0])) {
				t.Errorf("gated(%v, %v) = %v, want %v", x, y, got[0], want[0])
			}
		}
		var got, want [1]float32
		exp(got[:], []float32{x})
		expGo(want[:], []float32{x})
		if e := ulpError(got[0], float64(want[0])); !(e <= 1) {
			t.Errorf("exp(%v) = %v, want %v", x, got[0], want[0])
		}
	}
}
