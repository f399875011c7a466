package train

import (
	"fmt"
	"math"
)

// flowWeights holds one flow's effective weights (weight norm folded) in
// the layouts the kernels use, each 1x1 convolution as a row-major
// [out × in] matrix, plus the transposes the backward pass multiplies by.
type flowWeights struct {
	c, half int

	w, wT, wInv []float32 // invertible 1x1 convolution W, Wᵀ and W⁻¹ [c × c]
	wInvT       []float64 // W⁻ᵀ in float64: the gradient of log|det W|
	logDet      float64   // log|det W|

	startW, startWT []float32 // [C × half], [half × C]
	// inW holds each layer's taps one after another, tap j the row-major
	// [2C × C] matrix weight[:, :, j]; inWT the transposed taps in reverse
	// order, tap j = weight[:, :, K−1−j]ᵀ [C × 2C], so that the gradient of
	// the dilated convolution is again a dilated convolution.
	inW, inWT [][]float32
	gateB     [][]float32 // per layer: in-layer bias + its slice of the cond bias [2C]
	rsW, rsWT [][]float32 // res/skip [rows × C] and [C × rows]
	endWT     []float32   // [C × 2·half]
	condW     []float32   // [2CL × NMels·Group]
	condWT    []float32   // [NMels·Group × 2CL]
}

// weights is the effective weights of every flow for one call.
type weights struct {
	flows []flowWeights
	// scratch holds a folded dilated-conv weight [2C, C, K] in prepare and
	// a gradient in a parameter's layout in setGrads.
	scratch []float32
}

// prepare computes the effective weights from the current parameter
// values, reusing m.wts's memory.
func (m *Model) prepare() error {
	cfg := m.cfg
	C, L, K := cfg.WN.Channels, cfg.WN.Layers, cfg.WN.KernelSize
	nc := cfg.NMels * cfg.Group
	if m.wts == nil {
		m.wts = &weights{flows: make([]flowWeights, cfg.Flows)}
	}
	for k := range m.flows {
		f, fw := &m.flows[k], &m.wts.flows[k]
		c := cfg.FlowChannels(k)
		fw.c, fw.half = c, c/2
		fw.w = f.convinv.Value
		fw.wInv = grow(fw.wInv, c*c)
		if cap(fw.wInvT) < c*c {
			fw.wInvT = make([]float64, c*c)
		}
		fw.wInvT = fw.wInvT[:c*c]
		logDet, err := invertLogDet(fw.wInv, fw.wInvT, fw.w, c)
		if err != nil {
			return fmt.Errorf("train: %s: %w", f.convinv.Name, err)
		}
		fw.logDet = logDet
		fw.wT = grow(fw.wT, c*c)
		transpose(fw.wT, c, fw.w, c, c, c)

		fw.startW = fold(fw.startW, f.start)
		fw.startWT = grow(fw.startWT, len(fw.startW))
		transpose(fw.startWT, C, fw.startW, fw.half, C, fw.half)

		if fw.inW == nil {
			fw.inW, fw.inWT, fw.gateB = make([][]float32, L), make([][]float32, L), make([][]float32, L)
			fw.rsW, fw.rsWT = make([][]float32, L), make([][]float32, L)
		}
		for i := 0; i < L; i++ {
			m.wts.scratch = fold(m.wts.scratch, f.in[i]) // [2C, C, K]
			w := m.wts.scratch
			fw.inW[i] = grow(fw.inW[i], len(w))
			fw.inWT[i] = grow(fw.inWT[i], len(w))
			for o := 0; o < 2*C; o++ {
				for in := 0; in < C; in++ {
					for j := 0; j < K; j++ {
						v := w[(o*C+in)*K+j]
						fw.inW[i][(j*2*C+o)*C+in] = v
						fw.inWT[i][((K-1-j)*C+in)*2*C+o] = v
					}
				}
			}
			fw.gateB[i] = grow(fw.gateB[i], 2*C)
			for r, b := range f.in[i].bias.Value {
				fw.gateB[i][r] = b + f.cond.bias.Value[2*C*i+r]
			}
			fw.rsW[i] = fold(fw.rsW[i], f.resSkip[i])
			rows := len(f.resSkip[i].g.Value)
			fw.rsWT[i] = grow(fw.rsWT[i], rows*C)
			transpose(fw.rsWT[i], rows, fw.rsW[i], C, rows, C)
		}
		fw.endWT = grow(fw.endWT, len(f.endW.Value))
		transpose(fw.endWT, 2*fw.half, f.endW.Value, C, 2*fw.half, C)
		fw.condW = fold(fw.condW, f.cond)
		fw.condWT = grow(fw.condWT, len(fw.condW))
		transpose(fw.condWT, 2*C*L, fw.condW, nc, 2*C*L, nc)
	}
	return nil
}

// fold returns the effective weight g·v/‖v‖ of a weight-normed convolution
// (the norm per output channel, computed in float64), reusing dst's
// memory.
func fold(dst []float32, c wnConv) []float32 {
	g, v := c.g.Value, c.v.Value
	dst = grow(dst, len(v))
	per := len(v) / len(g)
	for r, gr := range g {
		row := v[r*per : (r+1)*per]
		var ss float64
		for _, x := range row {
			ss += float64(x) * float64(x)
		}
		scale := float64(gr) / math.Sqrt(ss)
		for i, x := range row {
			dst[r*per+i] = float32(float64(x) * scale)
		}
	}
	return dst
}

// weightNormBackward turns the gradient dw of an effective weight
// w = g·v/‖v‖ into the gradients of g and v:
//
//	dg = (dw·v)/‖v‖,  dv = (g/‖v‖)·(dw − (dg/‖v‖)·v),
//
// row by row, in float64.
func weightNormBackward(c wnConv, dw []float32) {
	g, v := c.g.Value, c.v.Value
	per := len(v) / len(g)
	for r, gr := range g {
		vr, dwr := v[r*per:(r+1)*per], dw[r*per:(r+1)*per]
		var ss, dot float64
		for i, x := range vr {
			ss += float64(x) * float64(x)
			dot += float64(dwr[i]) * float64(x)
		}
		norm := math.Sqrt(ss)
		dg := dot / norm
		c.g.Grad[r] = float32(dg)
		scale, proj := float64(gr)/norm, dg/norm
		dv := c.v.Grad[r*per : (r+1)*per]
		for i, x := range vr {
			dv[i] = float32(scale * (float64(dwr[i]) - proj*float64(x)))
		}
	}
}
