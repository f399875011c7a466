package vocoder

import (
	"github.com/glowvoc/glowvoc/internal/nn"
	"github.com/glowvoc/glowvoc/melspec"
)

// maxFusedBytes bounds the memory the fused conditioning weights may take.
const maxFusedBytes = 256 << 20

// fuseConditioning reports whether the model composes each flow's
// conditioning 1x1 conv with the upsampler.
//
// Both are linear, so cond_layer(group(upsample(mel))) is one transposed
// convolution from the mel frames to the conditioning columns, with kernel
// UpsampleKernel/Group and stride Hop/Group. Per column it costs
// 2·C·L·NMels·(UpsampleKernel/Hop) multiply-adds instead of the
// 2·C·L·NMels·Group of the 1x1 conv on upsampled input (half, for
// NVIDIA's 1024/256/8), and the upsampling itself disappears. The price is
// weights UpsampleKernel/Group times larger than the 1x1 conv's: worth it
// for narrow models like "small" (84 MB), not for the universal one (2 GB).
func (m *Model) fuseConditioning() bool {
	c := m.cfg
	if c.UpsampleKernel%c.Mel.Hop != 0 {
		return false
	}
	bytes := 4 * c.Flows * 2 * c.WN.Channels * c.WN.Layers * (c.UpsampleKernel / c.Group) * c.NMels
	return bytes <= maxFusedBytes
}

// upsampleTaps returns the upsampler's weights (upW [NMels·kernel ×
// NMels], rows (o, k)) regrouped for fuseConditioning, the same for every
// flow: U [(m, j) × (i, q)] holds the weight from mel channel i to channel
// m at tap G·q+j.
func upsampleTaps(cfg Config, upW []float32) []float32 {
	n, G, kl := cfg.NMels, cfg.Group, cfg.UpsampleKernel
	Q := kl / G
	u := make([]float32, n*G*n*Q)
	for m := 0; m < n; m++ {
		for j := 0; j < G; j++ {
			row := u[(m*G+j)*n*Q : (m*G+j+1)*n*Q]
			for i := 0; i < n; i++ {
				for q := 0; q < Q; q++ {
					row[i*Q+q] = upW[(m*kl+G*q+j)*n+i]
				}
			}
		}
	}
	return u
}

// fuseConditioning composes a flow's conditioning 1x1 conv (condW
// [R × NMels·G], condB) with the upsampler (its taps u from upsampleTaps;
// upB) into a transposed conv from mel frames:
//
//	F[r, q, i] = Σ_{m,j} condW[r, m·G+j] · up[i → m at tap G·q+j]
//	b[r]       = condB[r] + Σ_{m,j} condW[r, m·G+j] · upB[m]
//
// returned as F [(kernel/Hop)·NMels × R·(Hop/G)] (see flowConditioning) and b.
func fuseConditioning(cfg Config, u, condW, condB, upB []float32) ([]float32, []float32) {
	n, G := cfg.NMels, cfg.Group
	Q := cfg.UpsampleKernel / G
	R := len(condB)
	prod := make([]float32, R*n*Q) // [R × (i, q)]
	nn.Gemm(R, n*Q, n*G, condW, n*G, u, n*Q, prod, n*Q, false)
	// Store F as the right operand of flowConditioning's GEMM: row
	// (a, i) for tap a = q / S of stride S, column (r, q mod S).
	S := cfg.Mel.Hop / G
	A := Q / S
	fw := make([]float32, A*n*R*S)
	for r := 0; r < R; r++ {
		for i := 0; i < n; i++ {
			for q := 0; q < Q; q++ {
				a, k := q/S, q%S
				fw[(a*n+i)*R*S+r*S+k] = prod[r*n*Q+i*Q+q]
			}
		}
	}
	fb := make([]float32, R)
	for r := range fb {
		s := float64(condB[r])
		for m := 0; m < n; m++ {
			for j := 0; j < G; j++ {
				s += float64(condW[r*n*G+m*G+j]) * float64(upB[m])
			}
		}
		fb[r] = float32(s)
	}
	return fw, fb
}

// melWindows returns the window matrix the fused conditioning multiplies:
// [T × A·NMels] for the T = ⌈cols/S⌉ frame positions, row t holding
// mel[:, t−a] for the A = UpsampleKernel/Hop taps a (zeros outside the mel).
func (m *Model) melWindows(w *workspace, mel melspec.Spectrogram, cols int) []float32 {
	c := m.cfg
	n, S, A := c.NMels, c.Mel.Hop/c.Group, c.UpsampleKernel/c.Mel.Hop
	T := (cols + S - 1) / S
	w.window = grow(w.window, T*A*n)
	for t := 0; t < T; t++ {
		row := w.window[t*A*n : (t+1)*A*n]
		for a := 0; a < A; a++ {
			for i := 0; i < n; i++ {
				v := float32(0)
				if ft := t - a; ft >= 0 && ft < mel.Frames {
					v = mel.Data[i*mel.Frames+ft]
				}
				row[a*n+i] = v
			}
		}
	}
	return w.window
}

// flowConditioning returns what flow k's WN conditions on, given the
// call's shared conditioning input cond: with fused weights, this flow's
// conditioning [2·C·L × cols], computed into w.condK from cond, the mel's
// tap windows; otherwise cond itself, the grouped upsampled mel.
//
// The fused transposed convolution has stride S = Hop/Group and kernel
// A·S. Column c = S·t + s of the output is Σ_a Σ_i F[(a, i), (r, s)] ·
// mel[i, t − a]: one GEMM of the window matrix [T × A·NMels] with F, whose
// rows (t) hold S consecutive columns of every output channel;
// nn.TransposeBlocks puts them in place and adds the bias.
func (m *Model) flowConditioning(w *workspace, k int, cond []float32, cols int) []float32 {
	f := &m.flows[k]
	if f.fusedW == nil {
		return cond
	}
	c := m.cfg
	n, R := c.NMels, 2*c.WN.Channels*c.WN.Layers
	S := c.Mel.Hop / c.Group
	A := c.UpsampleKernel / c.Mel.Hop
	T := (cols + S - 1) / S
	w.upScratch = grow(w.upScratch, T*R*S)
	nn.Gemm(T, R*S, A*n, cond, A*n, f.fusedW, R*S, w.upScratch, R*S, false)
	w.condK = grow(w.condK, R*cols)
	nn.TransposeBlocks(w.condK, cols, w.upScratch, R, S, f.fusedB)
	return w.condK
}

// InferenceFLOPs returns the floating-point operations this model
// executes to synthesise frames mel frames: Config.InferenceFLOPs, less
// the upsampling and conditioning work that fused conditioning weights
// replace, plus the fused transposed convolutions.
func (m *Model) InferenceFLOPs(frames int) float64 {
	c := m.cfg
	total := c.InferenceFLOPs(frames)
	if !m.fused() {
		return total
	}
	R := float64(2 * c.WN.Channels * c.WN.Layers)
	cols := float64(frames * c.Mel.Hop / c.Group)
	total -= c.upsampleFLOPs(frames)                                    // upsampling
	total -= float64(c.Flows) * 2 * R * float64(c.NMels*c.Group) * cols // conditioning 1x1
	S := float64(c.Mel.Hop / c.Group)
	A := float64(c.UpsampleKernel / c.Mel.Hop)
	total += float64(c.Flows) * 2 * float64(frames) * R * S * A * float64(c.NMels) // fused GEMM
	return total
}
