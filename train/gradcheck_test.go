package train

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/glowvoc/glowvoc/melspec"
	"github.com/glowvoc/glowvoc/vocoder"
)

// ref64 is an independent float64 transcription of NVIDIA's glow.py
// forward pass and WaveGlowLoss, written for clarity, not speed: the
// ground truth for finite differences.
type ref64 struct {
	cfg vocoder.Config
	p   map[string][]float64
}

func newRef64(m *Model) *ref64 {
	r := &ref64{cfg: m.cfg, p: map[string][]float64{}}
	for _, p := range m.Params() {
		v := make([]float64, len(p.Value))
		for i, x := range p.Value {
			v[i] = float64(x)
		}
		r.p[p.Name] = v
	}
	return r
}

// weight returns a convolution's weight, folding weight norm if needed.
func (r *ref64) weight(prefix string) []float64 {
	if w, ok := r.p[prefix+".weight"]; ok {
		return w
	}
	g, v := r.p[prefix+".weight_g"], r.p[prefix+".weight_v"]
	per := len(v) / len(g)
	w := make([]float64, len(v))
	for o := range g {
		var ss float64
		for _, x := range v[o*per : (o+1)*per] {
			ss += x * x
		}
		for i := o * per; i < (o+1)*per; i++ {
			w[i] = g[o] * v[i] / math.Sqrt(ss)
		}
	}
	return w
}

// conv applies a Conv1d with "same" zero padding: x [in][T] → [out][T].
func (r *ref64) conv(prefix string, x [][]float64, out, K, dil int) [][]float64 {
	w, b := r.weight(prefix), r.p[prefix+".bias"]
	in, T := len(x), len(x[0])
	y := make([][]float64, out)
	for o := range y {
		y[o] = make([]float64, T)
		for t := range y[o] {
			s := b[o]
			for c := 0; c < in; c++ {
				for j := 0; j < K; j++ {
					if u := t + (j-(K-1)/2)*dil; u >= 0 && u < T {
						s += w[(o*in+c)*K+j] * x[c][u]
					}
				}
			}
			y[o][t] = s
		}
	}
	return y
}

// loss is WaveGlowLoss of the batch.
func (r *ref64) loss(batch []Example, sigma float64) float64 {
	cfg := r.cfg
	G, C, L, K := cfg.Group, cfg.WN.Channels, cfg.WN.Layers, cfg.WN.KernelSize
	var zz, logS, logDet float64
	var N int
	for _, ex := range batch {
		T, n, nm := len(ex.Audio), len(ex.Audio)/G, cfg.NMels
		// ConvTranspose1d, keep T samples, group.
		upW, upB := r.p["upsample.weight"], r.p["upsample.bias"]
		up := make([][]float64, nm)
		for o := range up {
			up[o] = make([]float64, T)
			for s := range up[o] {
				up[o][s] = upB[o]
			}
			for i := 0; i < nm; i++ {
				for t := 0; t < ex.Mel.Frames; t++ {
					for k := 0; k < cfg.UpsampleKernel; k++ {
						if s := t*cfg.Mel.Hop + k; s < T {
							up[o][s] += upW[(i*nm+o)*cfg.UpsampleKernel+k] * float64(ex.Mel.At(i, t))
						}
					}
				}
			}
		}
		cond := make([][]float64, nm*G)
		for o := 0; o < nm; o++ {
			for j := 0; j < G; j++ {
				cond[o*G+j] = make([]float64, n)
				for t := range n {
					cond[o*G+j][t] = up[o][t*G+j]
				}
			}
		}
		x := make([][]float64, G)
		for j := range x {
			x[j] = make([]float64, n)
			for t := range n {
				x[j][t] = float64(ex.Audio[t*G+j])
			}
		}
		var z [][]float64
		for k := 0; k < cfg.Flows; k++ {
			if k%cfg.EarlyEvery == 0 && k > 0 {
				z = append(z, x[:cfg.EarlySize]...)
				x = x[cfg.EarlySize:]
			}
			c := len(x)
			W := r.p[fmt.Sprintf("convinv.%d.conv.weight", k)]
			logDet += float64(n) * math.Log(math.Abs(mat.Det(mat.NewDense(c, c, W))))
			y := make([][]float64, c)
			for i := range y {
				y[i] = make([]float64, n)
				for t := range n {
					for j := 0; j < c; j++ {
						y[i][t] += W[i*c+j] * x[j][t]
					}
				}
			}
			half := c / 2
			p := fmt.Sprintf("WN.%d.", k)
			h := r.conv(p+"start", y[:half], C, 1, 1)
			cl := r.conv(p+"cond_layer", cond, 2*C*L, 1, 1)
			skip := make([][]float64, C)
			for i := range skip {
				skip[i] = make([]float64, n)
			}
			for i := 0; i < L; i++ {
				in := r.conv(fmt.Sprintf("%sin_layers.%d", p, i), h, 2*C, K, 1<<i)
				acts := make([][]float64, C)
				for c := range acts {
					acts[c] = make([]float64, n)
					for t := range n {
						a := in[c][t] + cl[2*C*i+c][t]
						b := in[C+c][t] + cl[2*C*i+C+c][t]
						acts[c][t] = math.Tanh(a) / (1 + math.Exp(-b))
					}
				}
				rows := 2 * C
				if i == L-1 {
					rows = C
				}
				rs := r.conv(fmt.Sprintf("%sres_skip_layers.%d", p, i), acts, rows, 1, 1)
				for c := 0; c < C; c++ {
					for t := range n {
						if i < L-1 {
							h[c][t] += rs[c][t]
							skip[c][t] += rs[C+c][t]
						} else {
							skip[c][t] += rs[c][t]
						}
					}
				}
			}
			out := r.conv(p+"end", skip, 2*half, 1, 1)
			for c := 0; c < half; c++ {
				for t := range n {
					y[half+c][t] = math.Exp(out[half+c][t])*y[half+c][t] + out[c][t]
					logS += out[half+c][t]
				}
			}
			x = y
		}
		z = append(z, x...)
		for _, row := range z {
			for _, v := range row {
				zz += v * v
			}
		}
		N += G * n
	}
	return (zz/(2*sigma*sigma) - logS - logDet) / float64(N)
}

// gradCheckCase is a tiny topology and batch for finite differences.
type gradCheckCase struct {
	name                     string
	nMels, flows, group      int
	earlyEvery, earlySize    int
	layers, channels, kernel int
	hop, upKernel            int
	lengths, frames          []int // per item: audio samples, mel frames
}

func (c gradCheckCase) config() vocoder.Config {
	return vocoder.Config{
		NMels: c.nMels, Flows: c.flows, Group: c.group,
		EarlyEvery: c.earlyEvery, EarlySize: c.earlySize,
		WN:             vocoder.WNConfig{Layers: c.layers, Channels: c.channels, KernelSize: c.kernel},
		UpsampleKernel: c.upKernel,
		Mel: melspec.Config{SampleRate: 8000, NFFT: 4 * c.hop, Hop: c.hop, Win: 4 * c.hop,
			NMels: c.nMels, FMin: 0, FMax: 4000},
	}
}

var gradCheckCases = []gradCheckCase{
	{name: "early_k3", nMels: 4, flows: 2, group: 4, earlyEvery: 1, earlySize: 2,
		layers: 2, channels: 4, kernel: 3, hop: 8, upKernel: 32,
		lengths: []int{64, 48}, frames: []int{6, 5}},
	{name: "early_k5", nMels: 3, flows: 3, group: 6, earlyEvery: 2, earlySize: 2,
		layers: 2, channels: 4, kernel: 5, hop: 12, upKernel: 28,
		lengths: []int{72, 60}, frames: []int{5, 6}},
	{name: "no_early_1layer", nMels: 2, flows: 2, group: 2, earlyEvery: 4, earlySize: 2,
		layers: 1, channels: 2, kernel: 3, hop: 4, upKernel: 8,
		lengths: []int{20}, frames: []int{5}},
}

// randomModel returns a model for c with every parameter kind active: the
// end convolutions non-zero (NVIDIA zeroes them), g ≠ ‖v‖ and 1x1
// convolutions that are not orthogonal.
func randomModel(t testing.TB, c gradCheckCase, seed uint64) *Model {
	t.Helper()
	m, err := New(c.config(), seed)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	for _, p := range m.Params() {
		switch {
		case strings.Contains(p.Name, ".end."):
			for i := range p.Value {
				p.Value[i] = float32(0.3 * (2*rng.Float64() - 1))
			}
		case strings.HasSuffix(p.Name, ".weight_g"):
			for i := range p.Value {
				p.Value[i] *= float32(0.5 + rng.Float64())
			}
		case strings.HasPrefix(p.Name, "convinv."):
			for i := range p.Value {
				p.Value[i] += float32(0.15 * rng.NormFloat64())
			}
		case strings.HasPrefix(p.Name, "upsample."):
			for i := range p.Value {
				p.Value[i] *= 8 // reach the WN nonlinearities
			}
		}
	}
	return m
}

// randomBatch returns examples with audio and mel of unit scale.
func randomBatch(c gradCheckCase, seed uint64) []Example {
	rng := rand.New(rand.NewPCG(seed, 2))
	var batch []Example
	for i, T := range c.lengths {
		audio := make([]float32, T)
		for j := range audio {
			audio[j] = float32(0.5 * rng.NormFloat64())
		}
		mel := melspec.Spectrogram{NMels: c.nMels, Frames: c.frames[i], Data: make([]float32, c.nMels*c.frames[i])}
		for j := range mel.Data {
			mel.Data[j] = float32(rng.NormFloat64())
		}
		batch = append(batch, Example{Mel: mel, Audio: audio})
	}
	return batch
}

// TestFiniteDifferences compares every gradient element of small random
// models with float64 central differences of an independent float64
// implementation of the loss, in both memory modes.
func TestFiniteDifferences(t *testing.T) {
	const sigma = 0.7
	for i, c := range gradCheckCases {
		seed := uint64(100 + i)
		m := randomModel(t, c, seed)
		batch := randomBatch(c, seed)
		ref := newRef64(m)
		want := ref.loss(batch, sigma)
		// Central differences of every parameter element.
		fd := map[string][]float64{}
		for _, p := range m.Params() {
			v := ref.p[p.Name]
			g := make([]float64, len(v))
			for j, x := range v {
				h := 1e-5 * math.Max(1, math.Abs(x))
				v[j] = x + h
				lp := ref.loss(batch, sigma)
				v[j] = x - h
				lm := ref.loss(batch, sigma)
				v[j] = x
				g[j] = (lp - lm) / (2 * h)
			}
			fd[p.Name] = g
		}
		for _, opts := range []Options{{Recompute: true, Workers: 2}, {Recompute: false, Workers: 1}} {
			t.Run(fmt.Sprintf("%s/recompute=%v", c.name, opts.Recompute), func(t *testing.T) {
				m.SetOptions(opts)
				loss, err := m.Gradients(context.Background(), batch, sigma)
				if err != nil {
					t.Fatal(err)
				}
				if rel := math.Abs(loss-want) / math.Abs(want); rel > 1e-5 {
					t.Errorf("loss %.9g, float64 reference %.9g (rel %.2g)", loss, want, rel)
				}
				worst, worstName := 0.0, ""
				for _, p := range m.Params() {
					g := fd[p.Name]
					var ref, d float64
					at := 0
					for j, x := range g {
						ref = math.Max(ref, math.Abs(x))
						if e := math.Abs(float64(p.Grad[j]) - x); e > d {
							d, at = e, j
						}
					}
					tol := 1e-4*ref + 1e-6
					if d > tol || math.IsNaN(float64(p.Grad[at])) {
						t.Errorf("%s[%d]: gradient %.7g, finite difference %.7g (|Δ| %.2g, tolerance %.2g)", p.Name, at, p.Grad[at], g[at], d, tol)
					}
					// weight_v of a convolution with one input per output
					// channel has gradient 0 by construction (README §5).
					if ref == 0 && !(strings.HasSuffix(p.Name, ".weight_v") && len(p.Value) == p.Shape[0]) {
						t.Errorf("%s: finite-difference gradient is all zero: the check is vacuous", p.Name)
					}
					if r := d / tol; r > worst {
						worst, worstName = r, p.Name
					}
				}
				t.Logf("loss %.9g (float64 %.9g); worst gradient %.3f of tolerance (%s)", loss, want, worst, worstName)
			})
		}
	}
}
