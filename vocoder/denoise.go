package vocoder

import (
	"context"
	"fmt"

	"github.com/glowvoc/glowvoc/melspec"
)

// Denoiser settings of NVIDIA's denoiser.py: the bias is the σ = 0
// synthesis of an all-zero mel of denoiserFrames frames, analysed with a
// 1024/256/1024 STFT.
const (
	denoiserFrames = 88
	denoiserNFFT   = 1024
	denoiserHop    = 256
)

// Denoise removes the model's bias (a faint constant hiss every WaveGlow
// adds) from audio with NVIDIA's Denoiser semantics: the magnitude of
// frame 0 of the STFT of the model's σ = 0 output for an all-zero mel is
// subtracted, times strength, from every frame's magnitude, clamped at 0,
// and the audio is resynthesised with its original phase. The output has
// floor(len(audio)/256)·256 samples.
func (m *Model) Denoise(ctx context.Context, audio []float32, strength float64) ([]float32, error) {
	bias, stft, err := m.denoiserBias(ctx)
	if err != nil {
		return nil, err
	}
	return stft.Denoise(audio, bias, float32(strength))
}

// denoiserBias computes the bias spectrum once per model. A cancelled
// first computation is not cached, so a later call retries.
func (m *Model) denoiserBias(ctx context.Context) ([]float32, *melspec.Analyzer, error) {
	m.denoiseMu.Lock()
	defer m.denoiseMu.Unlock()
	if m.denoiseBias != nil {
		return m.denoiseBias, m.denoiseSTFT, nil
	}
	stftCfg := m.cfg.Mel
	stftCfg.NFFT, stftCfg.Win, stftCfg.Hop = denoiserNFFT, denoiserNFFT, denoiserHop
	an, err := melspec.NewAnalyzer(stftCfg)
	if err != nil {
		return nil, nil, fmt.Errorf("denoiser STFT: %w", err)
	}
	zero := melspec.Spectrogram{NMels: m.cfg.NMels, Frames: denoiserFrames, Data: make([]float32, m.cfg.NMels*denoiserFrames)}
	biasAudio, err := m.Synthesize(ctx, zero, SynthesizeOptions{Sigma: 0})
	if err != nil {
		return nil, nil, fmt.Errorf("denoiser bias: %w", err)
	}
	spec, err := an.STFT(biasAudio)
	if err != nil {
		return nil, nil, fmt.Errorf("denoiser bias spectrum: %w", err)
	}
	bias := make([]float32, spec.Bins)
	for b := range bias {
		bias[b] = spec.Magnitude[b*spec.Frames] // frame 0 only
	}
	m.denoiseBias, m.denoiseSTFT = bias, an
	return bias, an, nil
}
