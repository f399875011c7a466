package train

import "math"

// exp constants: x = (32·m + j)·ln2/32 + r with |r| ≤ ln2/64, ln2/32
// split so that k·ln2By32Hi is exact for |k| < 2^20.
const (
	expShift    = 0x1.8p52 // adding it rounds a float64 below 2^51 to an integer
	log2eBy32   = 32 * 1.44269504088896338700e+00
	ln2By32Hi   = 6.93147180369123816490e-01 / 32
	ln2By32Lo   = 1.90821492927058770002e-10 / 32
	expMax      = 709.0
	expMin      = -708.0
	sigmoidClip = 80.0 // σ(−80) ≈ 1.8e−35: further down only underflows
)

// exp2By32 holds 2^(j/32), j = 0..31.
var exp2By32 = func() (t [32]float64) {
	for j := range t {
		t[j] = math.Exp2(float64(j) / 32)
	}
	return t
}()

// exp returns eˣ with a relative error below 3e-15, several times faster
// than math.Exp: eˣ = 2^m · 2^(j/32) · e^r, the last a degree-5 Taylor
// polynomial. It returns NaN for NaN, +Inf above 709 and 0 below −708.
func exp(x float64) float64 {
	if !(x > expMin) {
		if x != x {
			return x
		}
		return 0
	}
	if x > expMax {
		return math.Inf(1)
	}
	kf := x*log2eBy32 + expShift
	k := int64(math.Float64bits(kf)) - int64(math.Float64bits(expShift))
	kf -= expShift
	r := (x - kf*ln2By32Hi) - kf*ln2By32Lo
	p := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24+r*(1.0/120)))))
	return exp2By32[k&31] * p * math.Float64frombits(uint64((k>>5)+1023)<<52)
}

// gateForward evaluates WaveNet's gated activation on pre [2C × n] (filter
// rows, then gate rows): t = tanh(filter), s = σ(gate) and the activation
// a = t·s, each [C × n]. With e₁ = e^(−2|f|) and e₂ = e^(−g),
// tanh f = ±(1−e₁)/(1+e₁) and σ(g) = 1/(1+e₂) share one division. The
// values are computed in float64 and rounded once.
func gateForward(t, s, a, pre []float32, C, n int) {
	size := C * n
	filter, gate := pre[:size], pre[size:2*size]
	t, s, a = t[:size], s[:size], a[:size]
	for i, f := range filter {
		ff := float64(f)
		e1 := exp(-2 * math.Abs(ff))
		e2 := exp(min(-float64(gate[i]), sigmoidClip))
		d1, d2 := 1+e1, 1+e2
		inv := 1 / (d1 * d2)
		tv := (1 - e1) * d2 * inv
		if ff < 0 {
			tv = -tv
		}
		tf, sf := float32(tv), float32(d1*inv)
		t[i], s[i], a[i] = tf, sf, tf*sf
	}
}

// gateBackward turns the gradient da [C × n] of the gated activation into
// the gradient of its pre-activations: dpre rows [0, C) get da·s·(1−t²)
// and rows [C, 2C) get da·t·s·(1−s). dpre has row stride ld.
func gateBackward(dpre []float32, ld int, da, t, s []float32, C, n int) {
	for c := 0; c < C; c++ {
		df := dpre[c*ld : c*ld+n]
		dg := dpre[(C+c)*ld : (C+c)*ld+n]
		row := c * n
		dac, tc, sc := da[row:row+n], t[row:row+n], s[row:row+n]
		for i, d := range dac {
			tv, sv := tc[i], sc[i]
			df[i] = d * sv * (1 - tv*tv)
			dg[i] = d * tv * sv * (1 - sv)
		}
	}
}

// activationsT writes aᵀ [n × C] for a = t·s with t, s [C × n].
func activationsT(aT, t, s []float32, C, n int) {
	for c0 := 0; c0 < C; c0 += transposeBlock {
		c1 := min(c0+transposeBlock, C)
		for i0 := 0; i0 < n; i0 += transposeBlock {
			i1 := min(i0+transposeBlock, n)
			for c := c0; c < c1; c++ {
				tc, sc := t[c*n+i0:c*n+i1], s[c*n+i0:c*n+i1]
				for i, tv := range tc {
					aT[(i0+i)*C+c] = tv * sc[i]
				}
			}
		}
	}
}
