package train

import "github.com/glowvoc/glowvoc/internal/nn"

// gateForward evaluates WaveNet's gated activation on pre [2C × n] (filter
// rows, then gate rows): t = tanh(filter), s = σ(gate) and the activation
// a = t·s, each [C × n]; see nn.TanhSigmoid.
func gateForward(t, s, a, pre []float32, C, n int) {
	size := C * n
	nn.TanhSigmoid(t[:size], s[:size], a[:size], pre[:size], pre[size:2*size])
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
