package vocoder

import "math/rand/v2"

// workspace is the working memory of one synthesis or forward pass. Each
// model pools its workspaces, so steady-state calls reuse buffers instead
// of allocating; a workspace grows to the longest call it has served.
type workspace struct {
	wn                  wnScratch
	up, upScratch, cond []float32 // upsampled mel, its GEMM scratch, grouped conditioning
	z, out, tmp         []float32 // latent, WN output, 1x1-conv output
	condK, window       []float32 // with fused weights: one flow's conditioning, the mel's tap windows

	// SynthesizeStream's chunk buffers: audio, latent and mel of a chunk,
	// the cross-fade weights and the previous chunk's audio over a join.
	audio, subZ, subMel, ramp, tail []float32

	pcg rand.PCG   // the latent noise generator's state
	rng *rand.Rand // draws from pcg; nil until first used
}

// noise returns w's generator reseeded to draw the latent noise for seed,
// the values FillNoise draws, without allocating.
func (w *workspace) noise(seed uint64) *rand.Rand {
	if w.rng == nil {
		w.rng = rand.New(&w.pcg)
	}
	w.pcg.Seed(seed, noiseStream)
	return w.rng
}

// grow returns buf resliced to n values, reallocating only when too small.
func grow(buf []float32, n int) []float32 {
	if cap(buf) < n {
		return make([]float32, n)
	}
	return buf[:n]
}

// workspace returns a pooled workspace. Return it with m.release.
func (m *Model) workspace() *workspace {
	w, _ := m.workspaces.Get().(*workspace)
	if w == nil {
		w = new(workspace)
	}
	return w
}

// fit sizes the WN and flow buffers of w for cols columns.
func (m *Model) fit(w *workspace, cols int) {
	C := m.cfg.WN.Channels
	s := &w.wn
	s.pad = (1 << (m.cfg.WN.Layers - 1)) * (m.cfg.WN.KernelSize - 1) / 2
	s.h = grow(s.h, C*(cols+2*s.pad))
	s.pre = grow(s.pre, 2*C*cols)
	s.acts = grow(s.acts, C*cols)
	s.skip = grow(s.skip, C*cols)
	G := m.cfg.Group
	w.out = grow(w.out, G*cols)
	w.tmp = grow(w.tmp, G*cols)
}

func (m *Model) release(w *workspace) { m.workspaces.Put(w) }
