package nn

// DilatedConv computes a "same"-padded dilated 1-D convolution as one GEMM
// per tap over shifted views of the input, with no im2col copy:
//
//	y[o, t] (+)= Σ_j Σ_i w[j, o, i] · x[i, col0 + t + (j − taps/2)·dilation]
//
// for o < cout, t < n. w holds the taps one after another, each a
// row-major [cout × cin] matrix; x is [cin × ldx] and must have at least
// (taps/2)·dilation readable columns (zeros, for zero padding) on either
// side of [col0, col0+n). y is [cout × ldy]. taps must be odd.
func DilatedConv(y []float32, ldy int, w []float32, taps, cout, cin int, x []float32, ldx, col0, n, dilation int, accumulate bool) {
	half := taps / 2
	for j := 0; j < taps; j++ {
		off := col0 + (j-half)*dilation
		Gemm(cout, n, cin, w[j*cout*cin:(j+1)*cout*cin], cin, x[off:], ldx, y, ldy, accumulate || j > 0)
	}
}

// convTransposeChunk is the number of frames ConvTranspose1d processes per
// GEMM, which bounds its scratch memory.
const convTransposeChunk = 32

// ConvTranspose1dScratch returns the scratch length ConvTranspose1d needs.
func ConvTranspose1dScratch(cout, kernel int) int { return cout * kernel * convTransposeChunk }

// ConvTranspose1d computes a strided transposed convolution (PyTorch's
// ConvTranspose1d without padding) and keeps the first outLen output
// samples of each channel:
//
//	y[o, s] = bias[o] + Σ_i Σ_{t,k: stride·t + k = s} w[o, k, i] · x[i, t]
//
// w is [cout·kernel × cin] (row (o, k), column i), x is [cin × frames]
// row-major, y is [cout × outLen] row-major. scratch must hold
// ConvTranspose1dScratch(cout, kernel) values; it is overwritten.
func ConvTranspose1d(y []float32, outLen int, w []float32, bias []float32, cin, cout, kernel, stride int, x []float32, frames int, scratch []float32) {
	for o := 0; o < cout; o++ {
		yo := y[o*outLen : (o+1)*outLen]
		for s := range yo {
			yo[s] = bias[o]
		}
	}
	for f0 := 0; f0 < frames; f0 += convTransposeChunk {
		nf := min(convTransposeChunk, frames-f0)
		// This chunk's contributions: P[(o,k), t] = Σ_i w[(o,k), i]·x[i, f0+t].
		p := scratch[:cout*kernel*nf]
		Gemm(cout*kernel, nf, cin, w, cin, x[f0:], frames, p, nf, false)
		// Overlap-add the columns of P into the output.
		for o := 0; o < cout; o++ {
			yo := y[o*outLen : (o+1)*outLen]
			po := p[o*kernel*nf : (o+1)*kernel*nf]
			for k := 0; k < kernel; k++ {
				for t, v := range po[k*nf : (k+1)*nf] {
					s := stride*(f0+t) + k
					if s >= outLen {
						break
					}
					yo[s] += v
				}
			}
		}
	}
}
