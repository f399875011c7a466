package vocoder

import (
	"github.com/glowvoc/glowvoc/internal/nn"
)

// wnScratch is the working memory of one WN evaluation over cols columns.
type wnScratch struct {
	pad  int       // zero columns on each side of h: the largest dilation's reach
	h    []float32 // residual stream [C × (cols + 2·pad)]
	pre  []float32 // gate pre-activations [2C × cols]
	acts []float32 // gated activations [C × cols]
	skip []float32 // skip accumulator [C × cols]
}

// wn evaluates flow f's coupling network: out [2·half × cols] (rows
// [:half] the shift b, rows [half:] log s) from x0 [half × cols] and cond:
// the grouped upsampled mel [NMels·Group × cols], or with fused weights
// this flow's conditioning [2·C·L × cols] itself.
func (f *flow) wn(cfg Config, out, x0, cond []float32, cols int, s *wnScratch) {
	C, L, K := cfg.WN.Channels, cfg.WN.Layers, cfg.WN.KernelSize
	nc := cfg.NMels * cfg.Group
	ldh := cols + 2*s.pad
	h := s.h
	// Zero padding must read as zeros; the interior is overwritten below.
	for c := 0; c < C; c++ {
		row := h[c*ldh : (c+1)*ldh]
		clear(row[:s.pad])
		clear(row[s.pad+cols:])
	}
	nn.Gemm(C, cols, f.half, f.startW, f.half, x0, cols, h[s.pad:], ldh, false)
	nn.AddBias(h[s.pad:], C, cols, ldh, f.startB)

	for i := 0; i < L; i++ {
		dil := 1 << i
		// Dilated input conv plus this layer's slice of the conditioning
		// 1x1 conv, both accumulated into one pre-activation buffer.
		if f.fusedW != nil {
			copy(s.pre, cond[2*C*i*cols:2*C*(i+1)*cols])
			nn.DilatedConv(s.pre, cols, f.inW[i], K, 2*C, C, h, ldh, s.pad, cols, dil, true)
		} else {
			nn.DilatedConv(s.pre, cols, f.inW[i], K, 2*C, C, h, ldh, s.pad, cols, dil, false)
			nn.Gemm(2*C, cols, nc, f.condW[2*C*i*nc:], nc, cond, cols, s.pre, cols, true)
		}
		nn.GatedActivationBias(s.acts, s.pre, C, cols, f.gateB[i])

		rsW, rsB := f.resSkipW[i], f.resSkipB[i]
		if i < L-1 {
			nn.Gemm(C, cols, C, rsW[:C*C], C, s.acts, cols, h[s.pad:], ldh, true)
			nn.AddBias(h[s.pad:], C, cols, ldh, rsB[:C])
			nn.Gemm(C, cols, C, rsW[C*C:], C, s.acts, cols, s.skip, cols, i > 0)
			nn.AddBias(s.skip, C, cols, cols, rsB[C:])
		} else {
			nn.Gemm(C, cols, C, rsW, C, s.acts, cols, s.skip, cols, i > 0)
			nn.AddBias(s.skip, C, cols, cols, rsB)
		}
	}
	nn.Gemm(2*f.half, cols, C, f.endW, C, s.skip, cols, out, cols, false)
	nn.AddBias(out, 2*f.half, cols, cols, f.endB)
}

// coupleInverse undoes the affine coupling in place: x1 = (x1 − b) / exp(log s).
// It overwrites the log s half of out with exp(log s).
func coupleInverse(x1, out []float32, half, cols int) {
	b, s := out[:half*cols], out[half*cols:2*half*cols]
	nn.Exp(s, s)
	for i := range x1[:half*cols] {
		x1[i] = (x1[i] - b[i]) / s[i]
	}
}

// coupleForward applies the affine coupling in place: x1 = exp(log s)·x1 + b.
// It adds each column's Σ log s to colLogS and returns the total, and
// overwrites the log s half of out with exp(log s).
func coupleForward(x1, out []float32, half, cols int, colLogS []float64) float64 {
	b, s := out[:half*cols], out[half*cols:2*half*cols]
	var total float64
	for c := 0; c < half; c++ {
		for t, ls := range s[c*cols : (c+1)*cols] {
			colLogS[t] += float64(ls)
			total += float64(ls)
		}
	}
	nn.Exp(s, s)
	for i := range x1[:half*cols] {
		x1[i] = s[i]*x1[i] + b[i]
	}
	return total
}
