package nn

import "math"

// GatedActivation computes WaveNet's gated activation
//
//	dst[c, t] = tanh(pre[c, t]) · σ(pre[channels+c, t]),  σ(x) = 1/(1+e^(−x)),
//
// for c < channels and t < n. pre is a row-major [2·channels × n] buffer
// (filter rows first, then gate rows) and dst a row-major [channels × n]
// one. dst may be the filter rows of pre itself (pre[:channels*n]) but must
// not otherwise overlap pre. The functions are evaluated in float64 and
// rounded once.
func GatedActivation(dst, pre []float32, channels, n int) {
	size := channels * n
	gate := pre[size : 2*size]
	filter := pre[:len(gate)]
	dst = dst[:len(gate)]
	for i, g := range gate {
		dst[i] = float32(math.Tanh(float64(filter[i])) * (1 / (1 + math.Exp(-float64(g)))))
	}
}

// AddBias adds bias[i] to every element of row i of the m×n row-major
// matrix c with row stride ldc.
func AddBias(c []float32, m, n, ldc int, bias []float32) {
	checkMatrix("C", m, n, c, ldc)
	for i, v := range bias[:m] {
		row := c[i*ldc : i*ldc+n]
		for j := range row {
			row[j] += v
		}
	}
}
