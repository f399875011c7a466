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
