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
// GEMM when all frames do not fit its scratch at once; it bounds the
// scratch memory.
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
//
// It is one GEMM, P[(o,k), t] = Σ_i w[(o,k), i]·x[i, t], plus overlap-add
// of P's columns into y. When all frames fit the scratch, the GEMM runs
// over blocks of whole output channels with every frame, so the weights
// (the large operand) are read once; otherwise over chunks of frames.
func ConvTranspose1d(y []float32, outLen int, w []float32, bias []float32, cin, cout, kernel, stride int, x []float32, frames int, scratch []float32) {
	for o := 0; o < cout; o++ {
		yo := y[o*outLen : (o+1)*outLen]
		for s := range yo {
			yo[s] = bias[o]
		}
	}
	if frames == 0 {
		return
	}
	budget := ConvTranspose1dScratch(cout, kernel)
	if chans := budget / (kernel * frames); chans > 0 {
		for o0 := 0; o0 < cout; o0 += chans {
			nc := min(chans, cout-o0)
			p := scratch[:nc*kernel*frames]
			Gemm(nc*kernel, frames, cin, w[o0*kernel*cin:], cin, x, frames, p, frames, false)
			overlapAdd(y[o0*outLen:], outLen, p, nc, kernel, stride, 0, frames)
		}
		return
	}
	for f0 := 0; f0 < frames; f0 += convTransposeChunk {
		nf := min(convTransposeChunk, frames-f0)
		p := scratch[:cout*kernel*nf]
		Gemm(cout*kernel, nf, cin, w, cin, x[f0:], frames, p, nf, false)
		overlapAdd(y, outLen, p, cout, kernel, stride, f0, nf)
	}
}

// overlapAdd adds P [channels·kernel × nf] (row (o, k), column t, frames
// f0 onwards) into y [channels × outLen]: y[o, stride·(f0+t) + k] +=
// P[(o,k), t] where that index is below outLen.
func overlapAdd(y []float32, outLen int, p []float32, channels, kernel, stride, f0, nf int) {
	// Row by row of P: its reads are contiguous, and the strided writes
	// stay within one output channel, which is small enough to stay cached.
	tmax := min(nf, ceilDiv(outLen-stride*f0, stride)) // frames starting inside y
	for o := 0; o < channels; o++ {
		yo := y[o*outLen : (o+1)*outLen]
		po := p[o*kernel*nf : (o+1)*kernel*nf]
		for k := 0; k < kernel; k++ {
			row := po[k*nf : k*nf+tmax]
			s := stride*f0 + k
			for _, v := range row {
				if s >= outLen {
					break
				}
				yo[s] += v
				s += stride
			}
		}
	}
}
