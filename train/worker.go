package train

import (
	"github.com/glowvoc/glowvoc/internal/nn"
	"github.com/glowvoc/glowvoc/melspec"
	"github.com/glowvoc/glowvoc/vocoder"
)

// flowGrads accumulates one flow's gradients in the layouts the backward
// pass produces them in: effective (folded) weights, transposed where the
// GEMMs give them transposed.
type flowGrads struct {
	startW, startB []float32   // [C × half], [C]
	inWT, inB      [][]float32 // per layer: taps [K][C × 2C], [2C]
	rsW, rsB       [][]float32 // per layer: [rows × C], [rows]
	endW, endB     []float32   // [2·half × C], [2·half]
	condWT         []float32   // [NMels·Group × 2CL]; the cond bias gradient equals inB's
	convW          []float32   // [c × c], without the log-det term
}

// gradAcc is a worker's gradient accumulator: every gradient is a window
// of buf, so clearing and reducing are flat loops.
type gradAcc struct {
	buf      []float32
	upW, upB []float32 // [NMels, NMels, kernel] as the parameter, [NMels]
	flows    []flowGrads
}

// newGradAcc allocates an accumulator for m's topology.
func newGradAcc(m *Model) *gradAcc {
	a := &gradAcc{}
	total := 0
	a.layout(m, func(n int) []float32 { total += n; return nil })
	a.buf = make([]float32, total)
	rest := a.buf
	a.layout(m, func(n int) []float32 {
		s := rest[:n:n]
		rest = rest[n:]
		return s
	})
	return a
}

// layout assigns every gradient of a its window, in order, from carve.
func (a *gradAcc) layout(m *Model, carve func(n int) []float32) {
	cfg := m.cfg
	C, L, K := cfg.WN.Channels, cfg.WN.Layers, cfg.WN.KernelSize
	nc := cfg.NMels * cfg.Group
	a.upW = carve(len(m.upW.Value))
	a.upB = carve(len(m.upB.Value))
	a.flows = make([]flowGrads, cfg.Flows)
	for k := range a.flows {
		g, f := &a.flows[k], &m.flows[k]
		c := cfg.FlowChannels(k)
		half := c / 2
		g.startW = carve(C * half)
		g.startB = carve(C)
		g.inWT, g.inB = make([][]float32, L), make([][]float32, L)
		g.rsW, g.rsB = make([][]float32, L), make([][]float32, L)
		for i := 0; i < L; i++ {
			g.inWT[i] = carve(K * 2 * C * C)
			g.inB[i] = carve(2 * C)
			g.rsW[i] = carve(len(f.resSkip[i].v.Value))
			g.rsB[i] = carve(len(f.resSkip[i].bias.Value))
		}
		g.endW = carve(2 * half * C)
		g.endB = carve(2 * half)
		g.condWT = carve(nc * 2 * C * L)
		g.convW = carve(c * c)
	}
}

// flowTape is what the backward pass of one flow needs from its forward
// pass.
type flowTape struct {
	actIn, xw []float32   // input of the 1x1 convolution and its output (the coupling's input) [c × n]
	h         [][]float32 // per layer: WN residual stream entering it [C × (n + 2·pad)], zero pads
	t, s      [][]float32 // per layer: tanh and σ of the gate halves [C × n]
	skip      []float32   // WN skip sum [C × n]
	out       []float32   // WN output [2·half × n]: shift b, then log s
}

// worker is the working memory of one goroutine processing batch items.
type worker struct {
	acc *gradAcc

	n, pad, ld int // columns of the current item, WN padding, padded row stride

	melT, chunk []float32 // upsampling: mel transposed, one block of the transposed conv
	cond, dCond []float32 // conditioning [NMels·Group × n] and its gradient
	// condPacked is cond packed for the products with it on the left, the
	// cond weight gradients of every flow.
	condPacked nn.PackedMatrix
	x, dx      []float32 // flow state [Group × n] and its gradient
	tapes      []flowTape
	pre        []float32 // WN pre-activations [2CL × n]
	a          []float32 // gated activations [C × n]
	dpre       []float32 // their gradient [2CL × ld], zero pads
	dh         []float32 // gradient of the residual stream [C × ld]
	dskip, da  []float32 // [C × n]
	taps       []float32 // a layer's input at each tap's shift [K·C × n]
	dout       []float32 // gradient of the WN output [Group × n]
	tmp, tmp2  []float32 // [Group × n]

	zz, logS float64 // Σz² and Σ log s of the last item
}

// resize sizes w's buffers for items of n columns and tapes for the
// requested number of flows.
func (w *worker) resize(m *Model, n, frames, tapes int, grad bool) {
	cfg := m.cfg
	C, L, K, G := cfg.WN.Channels, cfg.WN.Layers, cfg.WN.KernelSize, cfg.Group
	nc := cfg.NMels * G
	w.n = n
	w.pad = (K - 1) / 2 << (L - 1)
	w.ld = n + 2*w.pad
	w.melT = grow(w.melT, frames*cfg.NMels)
	w.cond = grow(w.cond, nc*n)
	w.x = grow(w.x, G*n)
	w.pre = grow(w.pre, 2*C*L*n)
	w.a = grow(w.a, C*n)
	w.tmp = grow(w.tmp, G*n)
	if len(w.tapes) < tapes {
		w.tapes = append(w.tapes, make([]flowTape, tapes-len(w.tapes))...)
	}
	for i := range w.tapes[:tapes] {
		tp := &w.tapes[i]
		if tp.h == nil {
			tp.h, tp.t, tp.s = make([][]float32, L), make([][]float32, L), make([][]float32, L)
		}
		for l := 0; l < L; l++ {
			tp.h[l] = grow(tp.h[l], C*w.ld)
			tp.t[l] = grow(tp.t[l], C*n)
			tp.s[l] = grow(tp.s[l], C*n)
		}
		tp.actIn = grow(tp.actIn, G*n)
		tp.xw = grow(tp.xw, G*n)
		tp.skip = grow(tp.skip, C*n)
		tp.out = grow(tp.out, G*n)
	}
	if !grad {
		return
	}
	w.dCond = grow(w.dCond, nc*n)
	w.dx = grow(w.dx, G*n)
	w.dpre = grow(w.dpre, 2*C*L*w.ld)
	w.dh = grow(w.dh, C*w.ld)
	w.dskip = grow(w.dskip, C*n)
	w.taps = grow(w.taps, K*C*n)
	w.da = grow(w.da, C*n)
	w.dout = grow(w.dout, G*n)
	w.tmp2 = grow(w.tmp2, G*n)
}

// upChannels is the number of output channels one block of the transposed
// convolution covers: a block [frames × channels·kernel] of about 1 MiB.
func upChannels(cfg vocoder.Config, frames int) int {
	return max(1, min(cfg.NMels, (1<<18)/(frames*cfg.UpsampleKernel)))
}

// forward runs one example through the flow, leaving z in w.x, Σz² in
// w.zz and Σ log s in w.logS. With store, every flow's tape is kept for
// backward; otherwise tape 0 is reused.
func (w *worker) forward(m *Model, ex Example, store bool) {
	cfg := m.cfg
	G, n := cfg.Group, w.n
	w.upsample(m, ex.Mel, len(ex.Audio))
	for t := 0; t < n; t++ {
		for j := 0; j < G; j++ {
			w.x[j*n+t] = ex.Audio[t*G+j]
		}
	}
	w.logS = 0
	for k := range m.wts.flows {
		fw := &m.wts.flows[k]
		c, half := fw.c, fw.half
		act := w.x[(G-c)*n : G*n] // early outputs stay behind in the leading rows
		tp := &w.tapes[0]
		if store {
			tp = &w.tapes[k]
			copy(tp.actIn, act)
		}
		nn.Gemm(c, n, c, fw.w, c, act, n, w.tmp, n, false)
		copy(act, w.tmp[:c*n])
		if store {
			copy(tp.xw, act)
		}
		w.wnForward(m, k, tp, act[:half*n])
		w.logS += coupleForward(act[half*n:], tp.out, w.tmp, half*n)
	}
	var zz float64
	for _, v := range w.x[:G*n] {
		zz += float64(v) * float64(v)
	}
	w.zz = zz
}

// backward propagates the loss gradient from w.x (= z) back to the
// parameters, accumulating into w.acc. dzScale is 1/(σ²N) and invN 1/N for
// N latent elements in the batch.
func (w *worker) backward(m *Model, ex Example, store bool, dzScale, invN float32) {
	cfg := m.cfg
	G, n := cfg.Group, w.n
	for i, z := range w.x[:G*n] {
		w.dx[i] = z * dzScale
	}
	clear(w.dCond)
	w.condPacked.Pack(cfg.NMels*G, n, w.cond, n)
	for k := len(m.wts.flows) - 1; k >= 0; k-- {
		fw, acc := &m.wts.flows[k], &w.acc.flows[k]
		c, half := fw.c, fw.half
		act, dact := w.x[(G-c)*n:G*n], w.dx[(G-c)*n:G*n]
		var tp *flowTape
		var xw, actIn []float32
		if store {
			tp = &w.tapes[k]
			xw, actIn = tp.xw, tp.actIn
		} else {
			// Invert the flow: the coupling left x0 unchanged, so its WN
			// can be evaluated again, then x1 and W are undone.
			tp = &w.tapes[0]
			w.wnForward(m, k, tp, act[:half*n])
			uncouple(act[half*n:], tp.out, w.tmp, half*n)
			xw, actIn = act, w.tmp[:c*n]
			nn.Gemm(c, n, c, fw.wInv, c, xw, n, actIn, n, false)
		}
		dout := w.dout[:2*half*n]
		coupleBackward(dout, dact[half*n:], xw[half*n:c*n], tp.out, w.tmp2, half*n, invN)
		w.wnBackward(m, k, tp, dout, xw[:half*n], dact[:half*n])

		nn.GemmNT(c, c, n, dact, n, actIn, n, acc.convW, c, true)
		nn.Gemm(c, n, c, fw.wT, c, dact, n, w.tmp2, n, false)
		copy(dact, w.tmp2[:c*n])
		if !store {
			copy(act, actIn)
		}
	}
	w.upsampleBackward(m, ex.Mel, len(ex.Audio))
}

// coupleForward applies the affine coupling x1 ← exp(log s)·x1 + b in
// place (out holds b, then log s, each of length size) and returns Σ log s.
// e (length size) is scratch for exp(log s).
func coupleForward(x1, out, e []float32, size int) float64 {
	b, logS := out[:size], out[size:2*size]
	nn.Exp(e, logS)
	var total float64
	for i, ls := range logS {
		x1[i] = e[i]*x1[i] + b[i]
		total += float64(ls)
	}
	return total
}

// uncouple undoes the affine coupling in place: x1 ← (x1 − b)/exp(log s).
// e (length size) is scratch.
func uncouple(x1, out, e []float32, size int) {
	b, logS := out[:size], out[size:2*size]
	nn.Exp(e, logS)
	for i := range logS {
		x1[i] = (x1[i] - b[i]) / e[i]
	}
}

// coupleBackward takes dx1, the gradient of the coupling output
// x1' = exp(log s)·x1 + b, and the coupling input x1. It writes the
// gradient of the WN output to dout (db = dx1, then dlog s = dx1·exp(log
// s)·x1 − invN, the −Σlog s/N term of the loss) and replaces dx1 by the
// gradient of x1, exp(log s)·dx1. e (length size) is scratch.
func coupleBackward(dout, dx1, x1, out, e []float32, size int, invN float32) {
	logS := out[size : 2*size]
	nn.Exp(e, logS)
	db, dls := dout[:size], dout[size:2*size]
	for i, d := range dx1[:size] {
		db[i] = d
		dls[i] = d*e[i]*x1[i] - invN
		dx1[i] = e[i] * d
	}
}

// wnForward evaluates flow k's WN on x0 [half × n] and the item's
// conditioning, recording its activations in tp.
func (w *worker) wnForward(m *Model, k int, tp *flowTape, x0 []float32) {
	cfg := m.cfg
	f, fw := &m.flows[k], &m.wts.flows[k]
	C, L, K := cfg.WN.Channels, cfg.WN.Layers, cfg.WN.KernelSize
	nc := cfg.NMels * cfg.Group
	n, pad, ld, half := w.n, w.pad, w.ld, fw.half

	h0 := tp.h[0]
	clearPads(h0, C, n, pad)
	nn.Gemm(C, n, half, fw.startW, half, x0, n, h0[pad:], ld, false)
	nn.AddBias(h0[pad:], C, n, ld, f.start.bias.Value)
	// All layers' conditioning in one product; each layer's slice then
	// accumulates its dilated convolution in place.
	nn.Gemm(2*C*L, n, nc, fw.condW, nc, w.cond, n, w.pre, n, false)
	for i := 0; i < L; i++ {
		pre := w.pre[2*C*i*n : 2*C*(i+1)*n]
		h := tp.h[i]
		nn.DilatedConv(pre, n, fw.inW[i], K, 2*C, C, h, ld, pad, n, 1<<i, true)
		nn.AddBias(pre, 2*C, n, n, fw.gateB[i])
		gateForward(tp.t[i], tp.s[i], w.a, pre, C, n)
		rsW, rsB := fw.rsW[i], f.resSkip[i].bias.Value
		if i == L-1 {
			nn.Gemm(C, n, C, rsW, C, w.a, n, tp.skip, n, i > 0)
			nn.AddBias(tp.skip, C, n, n, rsB)
			break
		}
		next := tp.h[i+1]
		clearPads(next, C, n, pad)
		for c := 0; c < C; c++ {
			copy(next[c*ld+pad:c*ld+pad+n], h[c*ld+pad:c*ld+pad+n])
		}
		nn.Gemm(C, n, C, rsW[:C*C], C, w.a, n, next[pad:], ld, true)
		nn.AddBias(next[pad:], C, n, ld, rsB[:C])
		nn.Gemm(C, n, C, rsW[C*C:], C, w.a, n, tp.skip, n, i > 0)
		nn.AddBias(tp.skip, C, n, n, rsB[C:])
	}
	nn.Gemm(2*half, n, C, f.endW.Value, C, tp.skip, n, tp.out, n, false)
	nn.AddBias(tp.out, 2*half, n, n, f.endB.Value)
}

// wnBackward propagates dout, the gradient of flow k's WN output, through
// the WN recorded in tp: parameter gradients go to w.acc, the gradient of
// the conditioning to w.dCond, and that of the input x0 [half × n] is
// added to dx0.
func (w *worker) wnBackward(m *Model, k int, tp *flowTape, dout, x0, dx0 []float32) {
	cfg := m.cfg
	fw, acc := &m.wts.flows[k], &w.acc.flows[k]
	C, L, K := cfg.WN.Channels, cfg.WN.Layers, cfg.WN.KernelSize
	nc := cfg.NMels * cfg.Group
	n, pad, ld, half := w.n, w.pad, w.ld, fw.half
	rows := 2 * C * L // rows of pre and dpre

	nn.GemmNT(2*half, C, n, dout, n, tp.skip, n, acc.endW, C, true)
	addRowSums(acc.endB, dout, 2*half, n, n)
	nn.Gemm(C, n, 2*half, fw.endWT, 2*half, dout, n, w.dskip, n, false)

	clearPads(w.dpre, rows, n, pad)
	dh := w.dh[pad:] // interior view, row stride ld
	for i := L - 1; i >= 0; i-- {
		a := w.a[:C*n]
		for j, tv := range tp.t[i][:len(a)] {
			a[j] = tv * tp.s[i][j] // the layer's activation again
		}
		// Res/skip 1x1 conv: its output gradient is [dh; dskip], dh being
		// the gradient of the residual stream after this layer.
		rsWT := fw.rsWT[i]
		if i == L-1 {
			nn.GemmNT(C, C, n, w.dskip, n, a, n, acc.rsW[i], C, true)
			addRowSums(acc.rsB[i], w.dskip, C, n, n)
			nn.Gemm(C, n, C, rsWT, C, w.dskip, n, w.da, n, false)
		} else {
			nn.GemmNT(C, C, n, dh, ld, a, n, acc.rsW[i][:C*C], C, true)
			nn.GemmNT(C, C, n, w.dskip, n, a, n, acc.rsW[i][C*C:], C, true)
			addRowSums(acc.rsB[i][:C], dh, C, n, ld)
			addRowSums(acc.rsB[i][C:], w.dskip, C, n, n)
			nn.Gemm(C, n, C, rsWT, 2*C, dh, ld, w.da, n, false)
			nn.Gemm(C, n, C, rsWT[C:], 2*C, w.dskip, n, w.da, n, true)
		}
		// Gate, then the dilated conv: weight gradient tap by tap against
		// shifted views of the layer input, input gradient as the
		// transposed, reversed dilated conv.
		dpre := w.dpre[2*C*i*ld:]
		gateBackward(dpre[pad:], ld, w.da, tp.t[i], tp.s[i], C, n)
		addRowSums(acc.inB[i], dpre[pad:], 2*C, n, ld)
		// The taps' shifted views of the layer input, stacked [K·C × n],
		// make the weight gradient of all taps one product.
		dil := 1 << i
		h := tp.h[i]
		for j := 0; j < K; j++ {
			off := pad + (j-K/2)*dil
			for c := 0; c < C; c++ {
				copy(w.taps[(j*C+c)*n:(j*C+c+1)*n], h[c*ld+off:])
			}
		}
		nn.GemmNT(K*C, 2*C, n, w.taps, n, dpre[pad:], ld, acc.inWT[i], 2*C, true)
		nn.DilatedConv(dh, ld, fw.inWT[i], K, C, 2*C, dpre, ld, pad, n, dil, i < L-1)
	}
	// dh is now the gradient of the start conv's output.
	nn.GemmNT(C, half, n, dh, ld, x0, n, acc.startW, half, true)
	addRowSums(acc.startB, dh, C, n, ld)
	nn.Gemm(half, n, C, fw.startWT, C, dh, ld, dx0, n, true)

	// The conditioning 1x1 conv, all layers at once. Its bias gradient is
	// that of the in layers' biases.
	w.condPacked.MulNT(rows, w.dpre[pad:], ld, acc.condWT, rows, true)
	nn.Gemm(nc, n, rows, fw.condWT, rows, w.dpre[pad:], ld, w.dCond, n, true)
}

// clearPads zeroes the pad columns on both sides of each of the rows of x
// [rows × (n + 2·pad)].
func clearPads(x []float32, rows, n, pad int) {
	ld := n + 2*pad
	for r := 0; r < rows; r++ {
		clear(x[r*ld : r*ld+pad])
		clear(x[r*ld+pad+n : (r+1)*ld])
	}
}

// upsample computes the item's conditioning into w.cond: the transposed
// convolution of the mel, trimmed to samples values per channel and
// grouped, row o·Group + j, column t = upsampled[o, t·Group + j].
func (w *worker) upsample(m *Model, mel melspec.Spectrogram, samples int) {
	cfg := m.cfg
	nm, K, hop, G := cfg.NMels, cfg.UpsampleKernel, cfg.Mel.Hop, cfg.Group
	n := w.n
	frames := min(mel.Frames, (samples-1)/hop+1) // later frames reach no kept sample
	bias := m.upB.Value
	for o := 0; o < nm; o++ {
		row := w.cond[o*G*n : (o+1)*G*n]
		for i := range row {
			row[i] = bias[o]
		}
	}
	transpose(w.melT, nm, mel.Data, mel.Frames, nm, frames)
	per := upChannels(cfg, frames)
	w.chunk = grow(w.chunk, frames*per*K)
	for o0 := 0; o0 < nm; o0 += per {
		ob := min(per, nm-o0)
		// P[t, (o, k)] = Σ_i mel[i, t]·weight[i, o, k]: the weight's own
		// layout [in, out·kernel] is the right-hand operand.
		p := w.chunk[:frames*ob*K]
		nn.Gemm(frames, ob*K, nm, w.melT, nm, m.upW.Value[o0*K:], nm*K, p, ob*K, false)
		for t := 0; t < frames; t++ {
			col0 := t * (hop / G)
			for o := 0; o < ob; o++ {
				src := p[(t*ob+o)*K : (t*ob+o+1)*K]
				for j := 0; j < G; j++ {
					dst := w.cond[((o0+o)*G+j)*n+col0 : ((o0+o)*G+j+1)*n]
					dst = dst[:min(len(dst), (K-j+G-1)/G)] // samples hop·t + q·G + j, q·G + j < K
					for q := range dst {
						dst[q] += src[q*G+j]
					}
				}
			}
		}
	}
}

// upsampleBackward accumulates the upsampler's gradients from w.dCond.
func (w *worker) upsampleBackward(m *Model, mel melspec.Spectrogram, samples int) {
	cfg := m.cfg
	nm, K, hop, G := cfg.NMels, cfg.UpsampleKernel, cfg.Mel.Hop, cfg.Group
	n := w.n
	frames := min(mel.Frames, (samples-1)/hop+1)
	for o := 0; o < nm; o++ {
		var s float64
		for _, v := range w.dCond[o*G*n : (o+1)*G*n] {
			s += float64(v)
		}
		w.acc.upB[o] += float32(s)
	}
	per := upChannels(cfg, frames)
	w.chunk = grow(w.chunk, frames*per*K)
	for o0 := 0; o0 < nm; o0 += per {
		ob := min(per, nm-o0)
		// D[t, (o, k)] = dUp[o, hop·t + k], zero past the kept samples;
		// dWeight[i, (o, k)] += Σ_t mel[i, t]·D[t, (o, k)].
		d := w.chunk[:frames*ob*K]
		clear(d)
		for t := 0; t < frames; t++ {
			col0 := t * (hop / G)
			for o := 0; o < ob; o++ {
				dst := d[(t*ob+o)*K : (t*ob+o+1)*K]
				for j := 0; j < G; j++ {
					src := w.dCond[((o0+o)*G+j)*n+col0 : ((o0+o)*G+j+1)*n]
					src = src[:min(len(src), (K-j+G-1)/G)]
					for q, v := range src {
						dst[q*G+j] = v
					}
				}
			}
		}
		nn.Gemm(nm, ob*K, frames, mel.Data, mel.Frames, d, ob*K, w.acc.upW[o0*K:], nm*K, true)
	}
}
