package vocoder

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/glowvoc/glowvoc/internal/npy"
	"github.com/glowvoc/glowvoc/internal/safetensors"
	"github.com/glowvoc/glowvoc/internal/torchfile"
	"github.com/glowvoc/glowvoc/melspec"
)

// Metadata keys and values of glowvoc's native model files (safetensors).
const (
	metaFormat        = "format"
	metaFormatValue   = "glowvoc-waveglow"
	metaFormatVersion = "format_version"
	metaConfig        = "config"
)

// LoadOptions supply what a model file may lack.
type LoadOptions struct {
	// Mel is the mel front end for files that do not record one (.npz and
	// PyTorch files). nil means melspec.DefaultConfig() with the model's
	// n_mel_channels.
	Mel *melspec.Config
	// Config, when non-nil, is the expected topology (e.g. from NVIDIA's
	// config.json); loading fails if the tensors disagree with it. It also
	// supplies the mel front end when Mel is nil.
	Config *Config
}

// Load reads a model: glowvoc's native .safetensors files
// (self-describing), PyTorch files (.pt, .pth, .ckpt: NVIDIA training
// checkpoints with the pickled WaveGlow module, or state dicts), or an .npz
// state dict. Tensors use NVIDIA's naming, folded or in weight-norm form,
// in the current or the pre-2019 WN layout.
func Load(path string, opts LoadOptions) (*Model, error) {
	m, err := load(path, opts)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", path, err)
	}
	return m, nil
}

func load(path string, opts LoadOptions) (*Model, error) {
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".safetensors":
		f, err := safetensors.ReadFile(path)
		if err != nil {
			return nil, err
		}
		return fromSafetensors(f, opts)
	case ".pt", ".pth", ".ckpt":
		ck, err := torchfile.Load(path)
		if err != nil {
			return nil, err
		}
		sd := make(StateDict, len(ck.Tensors))
		for name, t := range ck.Tensors {
			sd[name] = Tensor{Shape: t.Shape, Data: t.Data}
		}
		return FromStateDict(sd, opts)
	case ".npz":
		arrays, err := npy.ReadNPZ(path)
		if err != nil {
			return nil, err
		}
		sd := make(StateDict, len(arrays))
		for name, a := range arrays {
			sd[name] = Tensor{Shape: a.Shape, Data: a.Data}
		}
		return FromStateDict(sd, opts)
	default:
		return nil, fmt.Errorf("unknown model file extension %q (want .safetensors, .pt or .npz)", ext)
	}
}

// Read reads a model in glowvoc's native safetensors format from r, which
// holds size bytes (e.g. a bytes.Reader over an embedded file).
func Read(r io.ReaderAt, size int64) (*Model, error) {
	f, err := safetensors.Read(r, size)
	if err != nil {
		return nil, fmt.Errorf("read model: %w", err)
	}
	if f.Metadata[metaFormat] != metaFormatValue {
		return nil, fmt.Errorf("read model: not a glowvoc model file (no %q metadata)", metaFormatValue)
	}
	m, err := fromSafetensors(f, LoadOptions{})
	if err != nil {
		return nil, fmt.Errorf("read model: %w", err)
	}
	return m, nil
}

func fromSafetensors(f *safetensors.File, opts LoadOptions) (*Model, error) {
	sd := make(StateDict, len(f.Tensors))
	for _, t := range f.Tensors {
		sd[t.Name] = Tensor{Shape: t.Shape, Data: t.Data}
	}
	if f.Metadata[metaFormat] == metaFormatValue {
		var cfg Config
		if err := json.Unmarshal([]byte(f.Metadata[metaConfig]), &cfg); err != nil {
			return nil, fmt.Errorf("model config in metadata: %w", err)
		}
		if opts.Config != nil && !sameTopology(*opts.Config, cfg) {
			return nil, fmt.Errorf("file's topology %+v differs from the expected %+v", cfg, *opts.Config)
		}
		opts.Config = &cfg
		if opts.Mel == nil {
			opts.Mel = &cfg.Mel
		}
	}
	return FromStateDict(sd, opts)
}

// FromStateDict builds a model from a state dict in NVIDIA's naming, in
// any of the forms InferenceStateDict accepts. The topology is inferred
// from the tensor shapes and checked against opts.Config if given.
func FromStateDict(sd StateDict, opts LoadOptions) (*Model, error) {
	inf, err := InferenceStateDict(sd)
	if err != nil {
		return nil, err
	}
	cfg, err := InferConfig(inf)
	if err != nil {
		return nil, err
	}
	if opts.Config != nil {
		want := *opts.Config
		if cfg.EarlySize == 0 && (want.EarlySize == 0 || want.EarlyEvery >= cfg.Flows) {
			// No flow drops channels: the shapes cannot tell these apart.
			cfg.EarlyEvery, cfg.EarlySize = want.EarlyEvery, want.EarlySize
		}
		if !sameTopology(cfg, want) {
			return nil, fmt.Errorf("tensor shapes give topology %s, but the configuration says %s", topology(cfg), topology(want))
		}
	}
	switch {
	case opts.Mel != nil:
		cfg.Mel = *opts.Mel
	case opts.Config != nil:
		cfg.Mel = opts.Config.Mel
	default:
		cfg.Mel = melspec.DefaultConfig()
	}
	cfg.Mel.NMels = cfg.NMels
	return New(inf, cfg)
}

func sameTopology(a, b Config) bool {
	a.Mel, b.Mel = melspec.Config{}, melspec.Config{}
	return a == b
}

func topology(c Config) string {
	return fmt.Sprintf("{n_mel_channels %d, n_flows %d, n_group %d, n_early_every %d, n_early_size %d, WN %d layers × %d channels, kernel %d, upsample kernel %d}",
		c.NMels, c.Flows, c.Group, c.EarlyEvery, c.EarlySize, c.WN.Layers, c.WN.Channels, c.WN.KernelSize, c.UpsampleKernel)
}

// StateDict returns the model's inference state dict in NVIDIA's naming
// and layouts (weight norm folded). The tensors may share memory with the
// model: do not modify them.
func (m *Model) StateDict() StateDict {
	cfg := m.cfg
	names, shapes := expectedShapes(cfg)
	sd := make(StateDict, len(names))
	set := func(name string, data []float32) { sd[name] = Tensor{Shape: shapes[name], Data: data} }

	n, kl := cfg.NMels, cfg.UpsampleKernel
	up := make([]float32, len(m.upW))
	for i := 0; i < n; i++ {
		for o := 0; o < n; o++ {
			for k := 0; k < kl; k++ {
				up[(i*n+o)*kl+k] = m.upW[(o*kl+k)*n+i]
			}
		}
	}
	set("upsample.weight", up)
	set("upsample.bias", m.upB)
	C, K := cfg.WN.Channels, cfg.WN.KernelSize
	for k, f := range m.flows {
		p := fmt.Sprintf("WN.%d.", k)
		for i := range f.inW {
			w := make([]float32, len(f.inW[i]))
			for o := 0; o < 2*C; o++ {
				for in := 0; in < C; in++ {
					for j := 0; j < K; j++ {
						w[(o*C+in)*K+j] = f.inW[i][(j*2*C+o)*C+in]
					}
				}
			}
			set(fmt.Sprintf("%sin_layers.%d.weight", p, i), w)
			set(fmt.Sprintf("%sin_layers.%d.bias", p, i), f.inB[i])
			set(fmt.Sprintf("%sres_skip_layers.%d.weight", p, i), f.resSkipW[i])
			set(fmt.Sprintf("%sres_skip_layers.%d.bias", p, i), f.resSkipB[i])
		}
		set(p+"start.weight", f.startW)
		set(p+"start.bias", f.startB)
		set(p+"end.weight", f.endW)
		set(p+"end.bias", f.endB)
		set(p+"cond_layer.weight", f.condW)
		set(p+"cond_layer.bias", f.condB)
		set(fmt.Sprintf("convinv.%d.conv.weight", k), f.w)
	}
	return sd
}

// Save writes the model atomically as a self-describing safetensors file:
// the inference tensors in NVIDIA's naming and order, and the full model
// and mel configuration as JSON in the metadata.
func (m *Model) Save(path string) error {
	cfgJSON, err := json.Marshal(m.cfg)
	if err != nil {
		return err
	}
	f := &safetensors.File{Metadata: map[string]string{
		metaFormat:        metaFormatValue,
		metaFormatVersion: "1",
		metaConfig:        string(cfgJSON),
	}}
	sd := m.StateDict()
	names, _ := expectedShapes(m.cfg)
	for _, name := range names {
		t := sd[name]
		f.Tensors = append(f.Tensors, safetensors.Tensor{Name: name, Shape: slices.Clone(t.Shape), Data: t.Data})
	}
	if err := safetensors.WriteFile(path, f); err != nil {
		return fmt.Errorf("save model %s: %w", path, err)
	}
	return nil
}
