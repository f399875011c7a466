package main

import (
	"cmp"
	"flag"
	"fmt"
	"math"

	"github.com/glowvoc/glowvoc/melspec"
	"github.com/glowvoc/glowvoc/vocoder"
	"github.com/glowvoc/glowvoc/weights"
)

// modelUsage documents the --model flag of the commands that run a model.
const modelUsage = "model `file` (.safetensors, NVIDIA PyTorch checkpoint or state dict .pt, or .npz; default: the bundled model)"

// modelFlags say how to load a model file: what to supply that the file
// may lack, and what to override.
type modelFlags struct {
	config string    // NVIDIA config.json, or ""
	mel    *melFlags // mel front-end overrides, or nil if the command has none
}

// register defines --config on fs.
func (f *modelFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.config, "config", "", "NVIDIA `config.json` (waveglow_config, data_config) for a model file that records no configuration (.pt, .npz); the topology is checked against the tensors")
}

// loadModel loads the model file at path (see vocoder.Load for the
// formats) with what f supplies: the configuration of --config for files
// that record none, then the mel front-end flags given on the command line,
// which override the model's front end. It is the one place every command
// loads a model.
func loadModel(path string, f *modelFlags) (*vocoder.Model, error) {
	if path == "" && f.config != "" {
		return nil, usagef("--config needs --model (the bundled model records its configuration)")
	}
	m, err := weights.Load(path, f.config)
	if err != nil {
		return nil, err
	}
	return withMel(m, cmp.Or(path, "the bundled model"), f)
}

// withMel applies the mel front-end flags given on the command line to m.
func withMel(m *vocoder.Model, name string, f *modelFlags) (*vocoder.Model, error) {
	if f.mel == nil {
		return m, nil
	}
	cfg := m.Config()
	mel, set := f.mel.apply(cfg.Mel)
	if !set {
		return m, nil
	}
	cfg.Mel = mel
	mm, err := vocoder.New(m.StateDict(), cfg)
	if err != nil {
		return nil, fmt.Errorf("model %s with the given mel front end: %w", name, err)
	}
	return mm, nil
}

// melFlags are the flags of a mel front end (melspec.Config). Only the
// flags given on the command line override a base configuration.
type melFlags struct {
	fs  *flag.FlagSet
	val melspec.Config
}

// registerMelFlags defines the mel front-end flags on fs with the default
// values of def (a zero value is not shown as a default). --n-mels is
// defined only if nMels is true.
func registerMelFlags(fs *flag.FlagSet, def melspec.Config, nMels bool) *melFlags {
	m := &melFlags{fs: fs}
	fs.IntVar(&m.val.SampleRate, "sample-rate", def.SampleRate, "sampling rate in Hz (sampling_rate)")
	fs.IntVar(&m.val.NFFT, "n-fft", def.NFFT, "FFT size in samples (filter_length)")
	fs.IntVar(&m.val.Hop, "hop", def.Hop, "hop between frames in samples (hop_length)")
	fs.IntVar(&m.val.Win, "win", def.Win, "Hann window length in samples (win_length)")
	if nMels {
		fs.IntVar(&m.val.NMels, "n-mels", def.NMels, "number of mel channels (n_mel_channels)")
	}
	fs.Float64Var(&m.val.FMin, "fmin", def.FMin, "lowest filterbank frequency in Hz (mel_fmin)")
	fs.Float64Var(&m.val.FMax, "fmax", def.FMax, "highest filterbank frequency in Hz (mel_fmax)")
	return m
}

// apply returns base with the values of the mel flags given on the
// command line, and whether any was given.
func (m *melFlags) apply(base melspec.Config) (melspec.Config, bool) {
	set := false
	m.fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "sample-rate":
			base.SampleRate = m.val.SampleRate
		case "n-fft":
			base.NFFT = m.val.NFFT
		case "hop":
			base.Hop = m.val.Hop
		case "win":
			base.Win = m.val.Win
		case "n-mels":
			base.NMels = m.val.NMels
		case "fmin":
			base.FMin = m.val.FMin
		case "fmax":
			base.FMax = m.val.FMax
		default:
			return // not a mel flag
		}
		set = true
	})
	return base, set
}

// synthFlags are the synthesis settings synth and resynth share.
type synthFlags struct {
	sigma   float64
	seed    uint64
	denoise float64
}

// defaultSeed is the noise seed when --seed is not given, so that runs are
// reproducible.
const defaultSeed = 1

// register defines --sigma, --seed and --denoise on fs.
func (s *synthFlags) register(fs *flag.FlagSet) {
	fs.Float64Var(&s.sigma, "sigma", 0.6, "standard deviation of the latent noise (0 gives the model's mean output)")
	fs.Uint64Var(&s.seed, "seed", defaultSeed, "noise seed; the same seed, mel and sigma give the same audio")
	fs.Float64Var(&s.denoise, "denoise", 0, "strength of the model's denoiser applied to the output (0: off; NVIDIA uses 0.01 to 0.1)")
}

// check validates the flag values.
func (s *synthFlags) check() error {
	if err := checkNonNegative("--sigma", s.sigma); err != nil {
		return err
	}
	return checkNonNegative("--denoise", s.denoise)
}

// checkNonNegative returns a usage error unless v is finite and >= 0.
func checkNonNegative(name string, v float64) error {
	if !(v >= 0) || math.IsInf(v, 0) {
		return usagef("%s %v must be finite and non-negative", name, v)
	}
	return nil
}
