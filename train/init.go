package train

import (
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/glowvoc/glowvoc/vocoder"
)

// New returns a freshly initialised model for cfg, drawn from the same
// distributions as NVIDIA's WaveGlow(**waveglow_config) under PyTorch (the
// random stream itself is Go's PCG, selected by seed):
//
//   - every convolution weight and bias ~ U(−1/√fan_in, 1/√fan_in), PyTorch's
//     default (fan_in = in_channels·kernel for Conv1d, out_channels·kernel
//     for the ConvTranspose1d upsampler, as PyTorch computes it);
//   - weight norm applied afterwards: v = weight, g = ‖weight‖ per output
//     channel;
//   - WN.k.end weight and bias zero, so every coupling starts as the
//     identity;
//   - every invertible 1x1 convolution the Q of a QR factorisation of a
//     standard normal matrix, its first column negated if det < 0.
func New(cfg vocoder.Config, seed uint64) (*Model, error) {
	m, err := newModel(cfg)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, 0x747261696e)) // "train"
	uniform := func(dst []float32, fanIn int) {
		bound := 1 / math.Sqrt(float64(fanIn))
		for i := range dst {
			dst[i] = float32(bound * (2*rng.Float64() - 1))
		}
	}
	upFanIn := cfg.NMels * cfg.UpsampleKernel
	uniform(m.upW.Value, upFanIn)
	uniform(m.upB.Value, upFanIn)
	initConv := func(c wnConv) {
		fanIn := len(c.v.Value) / len(c.g.Value)
		uniform(c.v.Value, fanIn)
		uniform(c.bias.Value, fanIn)
		rowNorms(c.g.Value, c.v.Value, len(c.g.Value))
	}
	for k := range m.flows {
		f := &m.flows[k]
		// glow.py's construction order: the 1x1 convolution, then WN's
		// start, cond layer and each layer's in and res/skip convolutions.
		orthogonal(f.convinv.Value, cfg.FlowChannels(k), rng)
		initConv(f.start)
		initConv(f.cond)
		for i := range f.in {
			initConv(f.in[i])
			initConv(f.resSkip[i])
		}
	}
	return m, nil
}

// orthogonal fills the n×n matrix w with a random orthogonal matrix of
// determinant +1: the Q factor of a standard normal matrix, with its first
// column negated if det Q < 0 (NVIDIA's Invertible1x1Conv).
func orthogonal(w []float32, n int, rng *rand.Rand) {
	a := mat.NewDense(n, n, nil)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			a.Set(i, j, rng.NormFloat64())
		}
	}
	var qr mat.QR
	qr.Factorize(a)
	var q mat.Dense
	qr.QTo(&q)
	sign := 1.0
	if mat.Det(&q) < 0 {
		sign = -1
	}
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			v := q.At(i, j)
			if j == 0 {
				v *= sign
			}
			w[i*n+j] = float32(v)
		}
	}
}
