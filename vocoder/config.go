// Package vocoder implements WaveGlow (Prenger, Valle and Catanzaro, 2019):
// a normalising flow that turns a mel spectrogram and Gaussian noise into
// speech in one parallel pass, and audio back into noise with an exact
// log-likelihood.
//
// The numerics follow NVIDIA's PyTorch reference (glow.py, denoiser.py)
// closely enough that, for the same weights and noise, audio agrees to
// float32 rounding. A loaded Model is immutable and safe for concurrent use.
package vocoder

import (
	"errors"
	"fmt"

	"github.com/glowvoc/glowvoc/melspec"
)

// WNConfig is the topology of the WaveNet-like network inside each affine
// coupling (NVIDIA's WN_config).
type WNConfig struct {
	Layers     int `json:"n_layers"`
	Channels   int `json:"n_channels"`
	KernelSize int `json:"kernel_size"`
}

// Config is a WaveGlow topology (NVIDIA's waveglow_config) plus the mel
// front end the model was trained with, so that a model file is
// self-describing.
type Config struct {
	NMels      int      `json:"n_mel_channels"`
	Flows      int      `json:"n_flows"`
	Group      int      `json:"n_group"`
	EarlyEvery int      `json:"n_early_every"`
	EarlySize  int      `json:"n_early_size"`
	WN         WNConfig `json:"WN_config"`
	// UpsampleKernel is the kernel length of the transposed convolution
	// that upsamples the mel to the audio rate (1024 in every NVIDIA
	// model). Its stride is Mel.Hop.
	UpsampleKernel int `json:"upsample_kernel"`
	// Mel is the analysis the model expects its input mel to come from.
	Mel melspec.Config `json:"-"`
}

// DefaultUpsampleKernel is the upsampling kernel length of NVIDIA's WaveGlow.
const DefaultUpsampleKernel = 1024

// Validate reports whether c describes a buildable WaveGlow.
func (c Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.NMels > 0, "n_mel_channels %d must be positive", c.NMels)
	check(c.Flows > 0, "n_flows %d must be positive", c.Flows)
	check(c.Group > 0 && c.Group%2 == 0, "n_group %d must be positive and even", c.Group)
	check(c.EarlyEvery > 0, "n_early_every %d must be positive", c.EarlyEvery)
	check(c.EarlySize >= 0, "n_early_size %d must not be negative", c.EarlySize)
	check(c.WN.Layers > 0, "WN n_layers %d must be positive", c.WN.Layers)
	check(c.WN.Channels > 0 && c.WN.Channels%2 == 0, "WN n_channels %d must be positive and even", c.WN.Channels)
	check(c.WN.KernelSize > 0 && c.WN.KernelSize%2 == 1, "WN kernel_size %d must be odd", c.WN.KernelSize)
	check(c.WN.Layers <= 24, "WN n_layers %d is implausibly large (dilation 2^(n-1))", c.WN.Layers)
	if err := c.Mel.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("mel config: %w", err))
	}
	check(c.Mel.NMels == c.NMels, "mel config has %d channels, the model %d", c.Mel.NMels, c.NMels)
	check(c.UpsampleKernel >= c.Mel.Hop, "upsample kernel %d shorter than hop %d", c.UpsampleKernel, c.Mel.Hop)
	if c.Group > 0 && c.Mel.Hop > 0 {
		check(c.Mel.Hop%c.Group == 0, "hop %d must be a multiple of n_group %d", c.Mel.Hop, c.Group)
	}
	if len(errs) == 0 {
		// Every flow must keep at least two channels to split in halves.
		ch := c.Group
		for k := 0; k < c.Flows; k++ {
			if k%c.EarlyEvery == 0 && k > 0 {
				ch -= c.EarlySize
			}
			if ch < 2 || ch%2 != 0 {
				errs = append(errs, fmt.Errorf("flow %d would have %d channels: need an even number ≥ 2 (check n_group, n_early_every, n_early_size)", k, ch))
				break
			}
		}
	}
	return errors.Join(errs...)
}

// FlowChannels returns the number of channels flow k transforms.
func (c Config) FlowChannels(k int) int {
	return c.Group - c.EarlySize*(k/c.EarlyEvery)
}

// isEarly reports whether flow k first drops an early output.
func (c Config) isEarly(k int) bool { return k%c.EarlyEvery == 0 && k > 0 }

// RemainingChannels returns the channels left after the last flow: the
// final block of the latent z.
func (c Config) RemainingChannels() int { return c.FlowChannels(c.Flows - 1) }

// SamplesPerFrame is the number of audio samples one mel frame becomes.
func (c Config) SamplesPerFrame() int { return c.Mel.Hop }
