package vocoder

import (
	"context"
	"fmt"
	"math"
)

// Score is the exact log-likelihood of audio under the model, conditioned
// on the audio's own mel spectrogram.
type Score struct {
	// Loss is NVIDIA's WaveGlowLoss for this audio.
	Loss float64 `json:"loss"`
	// LogSTotal is Σ log s over all flows, channels and columns.
	LogSTotal float64 `json:"log_s_total"`
	// LogDetWTotal is Σ over flows of columns·log|det W|.
	LogDetWTotal float64 `json:"log_det_w_total"`
	// NLLNatsPerSample is −log p(audio | mel) per sample in nats: Loss
	// plus the Gaussian normaliser ½·log(2πσ²).
	NLLNatsPerSample float64 `json:"nll_nats_per_sample"`
	// Sigma is the latent standard deviation the likelihood assumes.
	Sigma float64 `json:"sigma"`
	// Samples is the number of samples scored (the input trimmed to a
	// multiple of n_group).
	Samples int `json:"samples"`
	// Frames is the number of mel frames of the conditioning.
	Frames int `json:"frames"`
	// FrameNLL is the NLL in nats per sample of the samples under each
	// hop-long frame (the last may be partial): high values flag audio
	// the model finds unlikely.
	FrameNLL []float64 `json:"frame_nll"`
}

// Score computes the mel of audio with the model's own front end and
// returns the exact log-likelihood of audio given that mel, under a
// latent of standard deviation sigma (1 as in training).
func (m *Model) Score(ctx context.Context, audio []float32, sigma float64) (*Score, error) {
	if !(sigma > 0) || math.IsInf(sigma, 0) {
		return nil, fmt.Errorf("sigma %v must be positive and finite", sigma)
	}
	mel, err := m.analyzer.Mel(audio)
	if err != nil {
		return nil, fmt.Errorf("mel of audio: %w", err)
	}
	G := m.cfg.Group
	n := len(audio) / G * G
	r, err := m.Forward(ctx, audio[:n], mel)
	if err != nil {
		return nil, err
	}
	s := &Score{Loss: Loss([]*ForwardResult{r}, sigma), Sigma: sigma, Samples: n, Frames: mel.Frames}
	var logDetPerCol float64
	for k := range r.LogSSum {
		s.LogSTotal += r.LogSSum[k]
		s.LogDetWTotal += r.LogDetW[k]
		logDetPerCol += m.flows[k].logDetW
	}
	norm := 0.5 * math.Log(2*math.Pi*sigma*sigma)
	s.NLLNatsPerSample = s.Loss + norm

	colsPerFrame := m.cfg.Mel.Hop / G
	for c0 := 0; c0 < r.Columns; c0 += colsPerFrame {
		c1 := min(c0+colsPerFrame, r.Columns)
		var nll float64
		for t := c0; t < c1; t++ {
			for j := 0; j < G; j++ {
				z := float64(r.Z[j*r.Columns+t])
				nll += z * z / (2 * sigma * sigma)
			}
			nll -= r.ColumnLogS[t] + logDetPerCol
		}
		s.FrameNLL = append(s.FrameNLL, nll/float64((c1-c0)*G)+norm)
	}
	return s, nil
}
