package vocoder

import (
	"fmt"
	"slices"
	"sync"

	"gonum.org/v1/gonum/mat"

	"github.com/glowvoc/glowvoc/melspec"
)

// Model is a loaded WaveGlow. It is immutable after construction and safe
// for concurrent use by any number of goroutines.
type Model struct {
	cfg Config

	// upW is the upsampling kernel rearranged for nn.ConvTranspose1d:
	// [NMels·UpsampleKernel × NMels], row (o, k), column i.
	upW, upB []float32
	flows    []flow

	analyzer *melspec.Analyzer // the model's own mel front end

	workspaces sync.Pool // of *workspace
	// maxWholeFrames is the longest mel Synthesize does in one pass.
	maxWholeFrames int

	denoiseMu   sync.Mutex        // guards the two fields below
	denoiseBias []float32         // bias spectrum for the denoiser, computed on first use
	denoiseSTFT *melspec.Analyzer // the denoiser's 1024/256/1024 STFT
}

// MaxWholeFrames is the longest mel (in frames: 11.9 s at 22.05 kHz and a
// hop of 256) that Synthesize inverts in one pass; longer ones are done in
// chunks of this length with full receptive-field context, bounding the
// working memory of a call.
const MaxWholeFrames = 1024

// flow holds one flow's parameters in the layouts the kernels use: every
// 1x1 convolution as a row-major [out × in] matrix, every dilated
// convolution as its taps one after another, each [out × in].
type flow struct {
	channels, half int

	w, wInv []float32 // invertible 1x1 convolution and its inverse, [channels × channels]
	logDetW float64   // log|det w|

	startW, startB []float32 // [C × half]
	inW, inB       [][]float32
	gateB          [][]float32 // per layer: in-layer bias + its slice of the cond bias
	resSkipW       [][]float32 // per layer [2C × C], the last [C × C]
	resSkipB       [][]float32
	endW, endB     []float32 // [2·half × C]
	condW, condB   []float32 // [2·C·L × NMels·Group]

	// fusedW and fusedB, when set, are the conditioning 1x1 conv composed
	// with the upsampling transposed conv: one transposed conv from mel
	// frames straight to this flow's conditioning [2·C·L × columns], kernel
	// UpsampleKernel/Group, stride Hop/Group, weight rows (r, q), column i.
	fusedW, fusedB []float32
}

// New builds a model from an inference state dict (weight norm folded,
// NVIDIA names; see InferenceStateDict) and its configuration. Every
// tensor's presence, shape and finiteness is checked.
func New(sd StateDict, cfg Config) (*Model, error) {
	return newModel(sd, cfg, true)
}

// newModel is New; fuse allows fused conditioning weights where they pay
// (see fuseConditioning).
func newModel(sd StateDict, cfg Config, fuse bool) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid config: %w", err)
	}
	if err := checkStateDict(sd, cfg); err != nil {
		return nil, err
	}
	an, err := melspec.NewAnalyzer(cfg.Mel)
	if err != nil {
		return nil, fmt.Errorf("mel front end: %w", err)
	}
	m := &Model{cfg: cfg, analyzer: an, maxWholeFrames: MaxWholeFrames}

	// ConvTranspose1d weight [in, out, k] -> rows (out, k), columns in.
	up := sd["upsample.weight"].Data
	n, kl := cfg.NMels, cfg.UpsampleKernel
	m.upW = make([]float32, n*kl*n)
	for i := 0; i < n; i++ {
		for o := 0; o < n; o++ {
			for k := 0; k < kl; k++ {
				m.upW[(o*kl+k)*n+i] = up[(i*n+o)*kl+k]
			}
		}
	}
	m.upB = sd["upsample.bias"].Data

	var upTaps []float32 // the upsampler's taps for fused conditioning, if it pays
	if fuse && m.fuseConditioning() {
		upTaps = upsampleTaps(cfg, m.upW)
	}

	C, L, K := cfg.WN.Channels, cfg.WN.Layers, cfg.WN.KernelSize
	for k := 0; k < cfg.Flows; k++ {
		p := fmt.Sprintf("WN.%d.", k)
		ch := cfg.FlowChannels(k)
		f := flow{channels: ch, half: ch / 2}
		f.w = sd[fmt.Sprintf("convinv.%d.conv.weight", k)].Data
		f.wInv, f.logDetW, err = invert(f.w, ch)
		if err != nil {
			return nil, fmt.Errorf("convinv.%d.conv.weight: %w", k, err)
		}
		f.startW, f.startB = sd[p+"start.weight"].Data, sd[p+"start.bias"].Data
		for i := 0; i < L; i++ {
			// Conv1d weight [out, in, k] -> taps [k][out][in].
			w := sd[fmt.Sprintf("%sin_layers.%d.weight", p, i)].Data
			taps := make([]float32, len(w))
			for o := 0; o < 2*C; o++ {
				for in := 0; in < C; in++ {
					for j := 0; j < K; j++ {
						taps[(j*2*C+o)*C+in] = w[(o*C+in)*K+j]
					}
				}
			}
			f.inW = append(f.inW, taps)
			f.inB = append(f.inB, sd[fmt.Sprintf("%sin_layers.%d.bias", p, i)].Data)
			f.resSkipW = append(f.resSkipW, sd[fmt.Sprintf("%sres_skip_layers.%d.weight", p, i)].Data)
			f.resSkipB = append(f.resSkipB, sd[fmt.Sprintf("%sres_skip_layers.%d.bias", p, i)].Data)
		}
		f.endW, f.endB = sd[p+"end.weight"].Data, sd[p+"end.bias"].Data
		f.condW, f.condB = sd[p+"cond_layer.weight"].Data, sd[p+"cond_layer.bias"].Data
		if upTaps != nil {
			f.fusedW, f.fusedB = fuseConditioning(cfg, upTaps, f.condW, f.condB, m.upB)
		}
		for i := 0; i < L; i++ {
			gb := slices.Clone(f.inB[i])
			if upTaps == nil { // else the cond bias is inside fusedB
				for r, b := range f.condB[2*C*i : 2*C*(i+1)] {
					gb[r] += b
				}
			}
			f.gateB = append(f.gateB, gb)
		}
		m.flows = append(m.flows, f)
	}
	return m, nil
}

// invert returns the inverse of the n×n matrix w (computed in float64 and
// rounded once) and log|det w|.
func invert(w []float32, n int) ([]float32, float64, error) {
	a := mat.NewDense(n, n, nil)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			a.Set(i, j, float64(w[i*n+j]))
		}
	}
	var inv mat.Dense
	if err := inv.Inverse(a); err != nil {
		return nil, 0, fmt.Errorf("1x1 convolution is not invertible: %w", err)
	}
	logDet, _ := mat.LogDet(a)
	out := make([]float32, n*n)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			out[i*n+j] = float32(inv.At(i, j))
		}
	}
	return out, logDet, nil
}

// fused reports whether the flows condition through fused weights (see
// fuseConditioning): all of them do or none.
func (m *Model) fused() bool { return m.flows[0].fusedW != nil }

// Config returns the model's configuration.
func (m *Model) Config() Config { return m.cfg }

// Analyzer returns the mel front end the model expects its input from.
func (m *Model) Analyzer() *melspec.Analyzer { return m.analyzer }

// checkMel validates a mel spectrogram against the model.
func (m *Model) checkMel(mel melspec.Spectrogram) error {
	if mel.NMels != m.cfg.NMels {
		return fmt.Errorf("mel has %d channels, the model expects %d", mel.NMels, m.cfg.NMels)
	}
	if mel.Frames < 1 {
		return fmt.Errorf("mel has no frames")
	}
	return mel.Validate()
}
