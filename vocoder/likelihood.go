package vocoder

import (
	"context"
	"fmt"
	"math"

	"github.com/glowvoc/glowvoc/internal/nn"
	"github.com/glowvoc/glowvoc/melspec"
)

// ForwardResult is the forward (audio → noise) pass of one utterance: the
// latent and every term of its exact log-likelihood.
type ForwardResult struct {
	// Z is the latent in the forward layout [Group × Columns] row-major.
	Z []float32
	// Columns is the number of time steps after grouping (samples/Group).
	Columns int
	// LogSSum is Σ log s of each flow's coupling (over channels and time).
	LogSSum []float64
	// LogDetW is each flow's 1x1-convolution term: Columns · log|det W_k|.
	LogDetW []float64
	// ColumnLogS is Σ over flows and channels of log s, per column.
	ColumnLogS []float64
}

// Forward runs the flow forward on audio conditioned on mel (NVIDIA's
// WaveGlow.forward): audio → z, with each flow's log-determinant terms.
// len(audio) must be a positive multiple of Group and at most what the
// upsampled mel covers, (Frames−1)·Hop + UpsampleKernel.
func (m *Model) Forward(ctx context.Context, audio []float32, mel melspec.Spectrogram) (*ForwardResult, error) {
	if err := m.checkMel(mel); err != nil {
		return nil, err
	}
	G := m.cfg.Group
	if len(audio) == 0 || len(audio)%G != 0 {
		return nil, fmt.Errorf("audio length %d must be a positive multiple of n_group %d", len(audio), G)
	}
	if maxLen := (mel.Frames-1)*m.cfg.Mel.Hop + m.cfg.UpsampleKernel; len(audio) > maxLen {
		return nil, fmt.Errorf("audio has %d samples, more than the %d that %d mel frames cover", len(audio), maxLen, mel.Frames)
	}
	for i, v := range audio {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("audio sample %d is not finite", i)
		}
	}
	cols := len(audio) / G
	w := m.workspace()
	defer m.release(w)
	m.fit(w, cols)
	cond, err := m.conditioning(ctx, w, mel, len(audio))
	if err != nil {
		return nil, err
	}
	r := &ForwardResult{
		Z:          squeeze(audio, G, cols),
		Columns:    cols,
		LogSSum:    make([]float64, len(m.flows)),
		LogDetW:    make([]float64, len(m.flows)),
		ColumnLogS: make([]float64, cols),
	}
	s, out, tmp := &w.wn, w.out, w.tmp
	x := r.Z
	for k := range m.flows {
		f := &m.flows[k]
		act := x[(G-f.channels)*cols:] // early outputs stay behind in the leading rows
		nn.Gemm(f.channels, cols, f.channels, f.w, f.channels, act, cols, tmp, cols, false)
		copy(act, tmp[:f.channels*cols])
		r.LogDetW[k] = float64(cols) * f.logDetW
		f.wn(m.cfg, out, act[:f.half*cols], m.flowConditioning(w, k, cond, cols), cols, s)
		r.LogSSum[k] = coupleForward(act[f.half*cols:], out, f.half, cols, r.ColumnLogS)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Loss is NVIDIA's WaveGlowLoss over a batch of forward results:
// (Σz²/(2σ²) − Σ log s − Σ log|det W|) divided by the number of latent
// elements. It is the negative log-likelihood per sample in nats, without
// the Gaussian normaliser ½·log(2πσ²).
func Loss(results []*ForwardResult, sigma float64) float64 {
	var zz, logS, logDet float64
	var n int
	for _, r := range results {
		for _, v := range r.Z {
			zz += float64(v) * float64(v)
		}
		for k := range r.LogSSum {
			logS += r.LogSSum[k]
			logDet += r.LogDetW[k]
		}
		n += len(r.Z)
	}
	return (zz/(2*sigma*sigma) - logS - logDet) / float64(n)
}
