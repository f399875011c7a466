package vocoder

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/glowvoc/glowvoc/melspec"
)

// configJSON is the layout of NVIDIA's config.json (waveglow_config and
// data_config; train_config is ignored here), which model files and
// `vocode info` use too.
type configJSON struct {
	WaveGlow *waveGlowJSON `json:"waveglow_config"`
	Data     *dataJSON     `json:"data_config,omitempty"`
}

type waveGlowJSON struct {
	NMels          int      `json:"n_mel_channels"`
	Flows          int      `json:"n_flows"`
	Group          int      `json:"n_group"`
	EarlyEvery     int      `json:"n_early_every"`
	EarlySize      int      `json:"n_early_size"`
	WN             WNConfig `json:"WN_config"`
	UpsampleKernel int      `json:"upsample_kernel,omitempty"`
}

type dataJSON struct {
	SegmentLength int     `json:"segment_length,omitempty"`
	SampleRate    int     `json:"sampling_rate"`
	FilterLength  int     `json:"filter_length"`
	HopLength     int     `json:"hop_length"`
	WinLength     int     `json:"win_length"`
	MelFMin       float64 `json:"mel_fmin"`
	MelFMax       float64 `json:"mel_fmax"`
}

// MarshalJSON writes c in NVIDIA's config.json layout:
// {"waveglow_config": {...}, "data_config": {...}}.
func (c Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(configJSON{
		WaveGlow: &waveGlowJSON{
			NMels: c.NMels, Flows: c.Flows, Group: c.Group,
			EarlyEvery: c.EarlyEvery, EarlySize: c.EarlySize,
			WN: c.WN, UpsampleKernel: c.UpsampleKernel,
		},
		Data: &dataJSON{
			SampleRate: c.Mel.SampleRate, FilterLength: c.Mel.NFFT,
			HopLength: c.Mel.Hop, WinLength: c.Mel.Win,
			MelFMin: c.Mel.FMin, MelFMax: c.Mel.FMax,
		},
	})
}

// UnmarshalJSON reads NVIDIA's config.json layout. A missing data_config
// means the WaveGlow defaults (melspec.DefaultConfig); a missing upsample
// kernel means DefaultUpsampleKernel. Unknown fields are ignored, as
// NVIDIA's configs carry training settings too.
func (c *Config) UnmarshalJSON(b []byte) error {
	var j configJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	if j.WaveGlow == nil {
		return fmt.Errorf("no waveglow_config")
	}
	w := j.WaveGlow
	*c = Config{
		NMels: w.NMels, Flows: w.Flows, Group: w.Group,
		EarlyEvery: w.EarlyEvery, EarlySize: w.EarlySize,
		WN: w.WN, UpsampleKernel: w.UpsampleKernel,
		Mel: melspec.DefaultConfig(),
	}
	if c.UpsampleKernel == 0 {
		c.UpsampleKernel = DefaultUpsampleKernel
	}
	if d := j.Data; d != nil {
		c.Mel = melspec.Config{
			SampleRate: d.SampleRate, NFFT: d.FilterLength, Hop: d.HopLength,
			Win: d.WinLength, FMin: d.MelFMin, FMax: d.MelFMax,
		}
	}
	c.Mel.NMels = c.NMels
	return nil
}

// ReadConfigFile reads a configuration in NVIDIA's config.json layout.
func ReadConfigFile(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return Config{}, fmt.Errorf("parse %s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}
