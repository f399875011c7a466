//go:build noasm || !amd64

package nn

// gated sets dst[i] = tanh(filter[i]+fb)·σ(gate[i]+gb); see gatedGo.
func gated(dst, filter, gate []float32, fb, gb float32) { gatedGo(dst, filter, gate, fb, gb) }

// exp sets dst[i] = e^src[i]; see expGo.
func exp(dst, src []float32) { expGo(dst, src) }

// tanhSigmoid sets t, s and a as TanhSigmoid does; see tanhSigmoidGo.
func tanhSigmoid(t, s, a, filter, gate []float32) { tanhSigmoidGo(t, s, a, filter, gate) }
