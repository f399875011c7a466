package vocoder

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/glowvoc/glowvoc/internal/nn"
	"github.com/glowvoc/glowvoc/melspec"
)

// SynthesizeOptions controls inference.
type SynthesizeOptions struct {
	// Sigma is the standard deviation of the drawn latent noise (NVIDIA
	// uses 0.6 for speech, 0 for the denoiser's bias estimate).
	Sigma float64
	// Seed selects the noise; the same seed, mel and sigma give the same
	// audio, whatever the load or the number of threads.
	Seed uint64
	// Noise, when non-nil, is the latent z itself in the forward layout
	// [Group × samples/Group] row-major (early blocks first, then the final
	// channels), already scaled; Sigma and Seed are then unused.
	Noise []float32
}

// Samples returns the audio length that frames mel frames synthesise to.
func (m *Model) Samples(frames int) int { return frames * m.cfg.Mel.Hop }

// Synthesize turns a mel spectrogram into audio (Samples(mel.Frames)
// samples, nominally in [-1, 1]) by inverting the flow on latent noise in
// one parallel pass. It honours ctx between layers. The audio is a new
// slice; AppendSynthesis writes into one the caller reuses.
//
// A mel longer than MaxWholeFrames is synthesised in chunks of that many
// frames, each with the model's whole receptive field of extra context on
// both sides, so that working memory stays bounded; the result equals
// one-pass synthesis to float rounding.
func (m *Model) Synthesize(ctx context.Context, mel melspec.Spectrogram, opts SynthesizeOptions) ([]float32, error) {
	audio, err := m.AppendSynthesis(ctx, nil, mel, opts)
	if err != nil {
		return nil, err
	}
	return audio, nil
}

// AppendSynthesis is Synthesize appending the audio to dst: it returns
// dst extended by the Samples(mel.Frames) samples Synthesize would return,
// like strconv.AppendInt. When cap(dst)−len(dst) is at least that, the
// audio is written into dst's spare capacity and, once the model's pooled
// working memory has grown to the mel's length (after a first call of
// that length or longer), the call allocates nothing on the heap (bar a
// rare miss of the kernels' per-P pools when their work is split over
// goroutines); otherwise dst is grown once. On error it returns dst with
// its original length (its spare capacity may have been written) and the
// error.
//
// Mels longer than MaxWholeFrames are synthesised in chunks, as by
// Synthesize, and appended to dst too.
func (m *Model) AppendSynthesis(ctx context.Context, dst []float32, mel melspec.Spectrogram, opts SynthesizeOptions) ([]float32, error) {
	n := len(dst)
	if mel.Frames > m.maxWholeFrames {
		if err := m.checkMel(mel); err != nil {
			return dst, err
		}
		dst = slices.Grow(dst, m.Samples(mel.Frames))
		err := m.SynthesizeStream(ctx, mel, StreamOptions{
			SynthesizeOptions: opts,
			FirstChunkFrames:  m.maxWholeFrames,
			ChunkFrames:       m.maxWholeFrames,
			ContextFrames:     m.ReceptiveFrames(),
			CrossfadeFrames:   1,
		}, func(a []float32) error {
			dst = append(dst, a...)
			return nil
		})
		if err != nil {
			return dst[:n], err
		}
		return dst, nil
	}
	w := m.workspace()
	defer m.release(w)
	if err := m.latent(w, mel, opts); err != nil {
		return dst, err
	}
	samples := m.Samples(mel.Frames)
	dst = slices.Grow(dst, samples)
	if err := m.synthesize(ctx, w, mel, w.z, dst[n:n+samples]); err != nil {
		return dst[:n], err
	}
	return dst[:n+samples], nil
}

// latent validates mel and opts and sets w.z to the latent for the whole
// utterance in the forward layout [Group × Samples(mel.Frames)/Group].
func (m *Model) latent(w *workspace, mel melspec.Spectrogram, opts SynthesizeOptions) error {
	if err := m.checkMel(mel); err != nil {
		return err
	}
	G := m.cfg.Group
	cols := m.Samples(mel.Frames) / G
	w.z = grow(w.z, G*cols)
	z := w.z
	switch {
	case opts.Noise != nil:
		if len(opts.Noise) != len(z) {
			return fmt.Errorf("noise has %d values, want %d (%d groups × %d columns for %d frames)", len(opts.Noise), len(z), G, cols, mel.Frames)
		}
		for i, v := range opts.Noise {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("noise has a non-finite value at index %d", i)
			}
		}
		copy(z, opts.Noise)
	case opts.Sigma < 0 || math.IsNaN(opts.Sigma) || math.IsInf(opts.Sigma, 0):
		return fmt.Errorf("sigma %v must be finite and non-negative", opts.Sigma)
	case opts.Sigma > 0:
		fillNoise(z, w.noise(opts.Seed), opts.Sigma)
	default:
		clear(z)
	}
	return nil
}

// synthesize inverts the flow for a validated mel and its latent z
// [Group × Samples(mel.Frames)/Group] and writes the audio to
// audio[:Samples(mel.Frames)]; z is overwritten.
func (m *Model) synthesize(ctx context.Context, w *workspace, mel melspec.Spectrogram, z, audio []float32) error {
	samples := m.Samples(mel.Frames)
	cols := samples / m.cfg.Group
	m.fit(w, cols)
	cond, err := m.conditioning(ctx, w, mel, samples)
	if err != nil {
		return err
	}
	if err := m.inverse(ctx, w, z, cond, cols); err != nil {
		return err
	}
	unsqueeze(audio[:samples], z, m.cfg.Group, cols)
	return nil
}

// noiseStream is the second PCG seed of the latent noise ("glowvoc").
const noiseStream = 0x676c6f77766f63

// FillNoise fills z with N(0, sigma²) values from a PCG generator seeded by
// seed, in index order: the noise Synthesize draws for opts.Seed.
func FillNoise(z []float32, seed uint64, sigma float64) {
	fillNoise(z, rand.New(rand.NewPCG(seed, noiseStream)), sigma)
}

// fillNoise fills z with N(0, sigma²) values drawn from rng in index order.
func fillNoise(z []float32, rng *rand.Rand, sigma float64) {
	for i := range z {
		z[i] = float32(sigma * rng.NormFloat64())
	}
}

// conditioning upsamples mel with the transposed convolution, keeps the
// first samples values of each channel, and groups them to
// [NMels·Group × samples/Group]: row m·Group + j, column t holds
// upsampled[m, t·Group + j].
//
// With fused conditioning weights there is nothing to upsample: it returns
// the mel's tap windows instead (see melWindows), which every flow's
// conditioning is computed from.
func (m *Model) conditioning(ctx context.Context, w *workspace, mel melspec.Spectrogram, samples int) ([]float32, error) {
	if m.fused() {
		return m.melWindows(w, mel, samples/m.cfg.Group), nil
	}
	return m.upsample(ctx, w, mel, samples)
}

// upsample computes the grouped upsampled mel: see conditioning.
func (m *Model) upsample(ctx context.Context, w *workspace, mel melspec.Spectrogram, samples int) ([]float32, error) {
	n, G := m.cfg.NMels, m.cfg.Group
	w.up = grow(w.up, n*samples)
	w.upScratch = grow(w.upScratch, nn.ConvTranspose1dScratch(n, m.cfg.UpsampleKernel))
	up := w.up
	nn.ConvTranspose1d(up, samples, m.upW, m.upB, n, n, m.cfg.UpsampleKernel, m.cfg.Mel.Hop, mel.Data, mel.Frames, w.upScratch)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cols := samples / G
	w.cond = grow(w.cond, n*G*cols)
	cond := w.cond
	for c := 0; c < n; c++ {
		src := up[c*samples : (c+1)*samples]
		for j := 0; j < G; j++ {
			dst := cond[(c*G+j)*cols : (c*G+j+1)*cols]
			for t := range dst {
				dst[t] = src[t*G+j]
			}
		}
	}
	return cond, nil
}

// inverse runs the flows backwards in place on x, which holds z in the
// forward layout [Group × cols] and ends as the grouped audio.
func (m *Model) inverse(ctx context.Context, w *workspace, x, cond []float32, cols int) error {
	G := m.cfg.Group
	s, out, tmp := &w.wn, w.out, w.tmp
	for k := len(m.flows) - 1; k >= 0; k-- {
		f := &m.flows[k]
		act := x[(G-f.channels)*cols:] // the active channels: a suffix of the rows
		f.wn(m.cfg, out, act[:f.half*cols], m.flowConditioning(w, k, cond, cols), cols, s)
		coupleInverse(act[f.half*cols:], out, f.half, cols)
		nn.Gemm(f.channels, cols, f.channels, f.wInv, f.channels, act, cols, tmp, cols, false)
		copy(act, tmp[:f.channels*cols])
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// squeeze groups audio [Group·cols] into [Group × cols]: row j, column t
// holds sample t·Group + j.
func squeeze(audio []float32, G, cols int) []float32 {
	x := make([]float32, G*cols)
	for t := 0; t < cols; t++ {
		for j := 0; j < G; j++ {
			x[j*cols+t] = audio[t*G+j]
		}
	}
	return x
}

// unsqueeze is the inverse of squeeze, writing x [Group × cols] into
// audio [Group·cols].
func unsqueeze(audio, x []float32, G, cols int) {
	audio = audio[:G*cols]
	for j := 0; j < G; j++ {
		for t, v := range x[j*cols : (j+1)*cols] {
			audio[t*G+j] = v
		}
	}
}
