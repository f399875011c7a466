package train

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/glowvoc/glowvoc/vocoder"
)

// Param is one trainable tensor: its PyTorch name and shape, its value and
// the gradient Model.Gradients last computed, both dense row-major float32
// slices of the same length. Callers may change Value in place between
// calls (an optimizer does); they must not change its length.
type Param struct {
	Name  string
	Shape []int
	Value []float32
	Grad  []float32
}

// wnConv is the parameters of a weight-normed convolution: weight =
// g·v/‖v‖, the norm taken over all but the first (output channel) axis.
type wnConv struct{ bias, g, v *Param }

// flowParams is one flow's parameters.
type flowParams struct {
	in, resSkip []wnConv // per WN layer
	start       wnConv
	endW, endB  *Param
	cond        wnConv
	convinv     *Param // the invertible 1x1 convolution [c, c, 1]
}

// Options tune how Model computes. They change results by float32 rounding
// at most.
type Options struct {
	// Recompute rebuilds each flow's input from its output during the
	// backward pass instead of keeping every flow's activations from the
	// forward pass: memory no longer grows with the number of flows, at the
	// cost of evaluating each WN once more.
	Recompute bool
	// Workers is the number of batch items processed concurrently, each by
	// its own goroutine with its own gradient accumulator; the
	// accumulators are summed in worker order. Values below 1 mean 1. The
	// GEMMs inside spread over runtime.GOMAXPROCS(0) threads either way.
	Workers int
}

// DefaultOptions are the options New and FromStateDict start with: every
// flow's activations kept (the faster mode; items are processed one at a
// time per worker, so this costs one item's activations per flow) and two
// batch items at a time.
func DefaultOptions() Options { return Options{Recompute: false, Workers: 2} }

// Model is a trainable WaveGlow in NVIDIA's weight-norm parameterisation.
// It is not safe for concurrent use: Gradients and Loss reuse working
// memory kept in the model.
type Model struct {
	cfg      vocoder.Config
	params   []*Param
	byName   map[string]*Param
	upW, upB *Param
	flows    []flowParams
	opts     Options

	wts     *weights  // effective weights of the current call
	workers []*worker // per-worker memory, kept between calls
}

// newModel returns a model for cfg with every parameter allocated and zero.
func newModel(cfg vocoder.Config) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("train: invalid config: %w", err)
	}
	m := &Model{cfg: cfg, byName: map[string]*Param{}, opts: DefaultOptions()}
	add := func(name string, shape ...int) *Param {
		n := 1
		for _, d := range shape {
			n *= d
		}
		p := &Param{Name: name, Shape: shape, Value: make([]float32, n), Grad: make([]float32, n)}
		m.params = append(m.params, p)
		m.byName[name] = p
		return p
	}
	addConv := func(prefix string, out int, in ...int) wnConv {
		return wnConv{
			bias: add(prefix+".bias", out),
			g:    add(prefix+".weight_g", out, 1, 1),
			v:    add(prefix+".weight_v", append([]int{out}, in...)...),
		}
	}
	C, L, K := cfg.WN.Channels, cfg.WN.Layers, cfg.WN.KernelSize
	m.upW = add("upsample.weight", cfg.NMels, cfg.NMels, cfg.UpsampleKernel)
	m.upB = add("upsample.bias", cfg.NMels)
	m.flows = make([]flowParams, cfg.Flows)
	for k := range m.flows {
		f := &m.flows[k]
		half := cfg.FlowChannels(k) / 2
		p := fmt.Sprintf("WN.%d.", k)
		for i := 0; i < L; i++ {
			f.in = append(f.in, addConv(fmt.Sprintf("%sin_layers.%d", p, i), 2*C, C, K))
		}
		for i := 0; i < L; i++ {
			out := 2 * C
			if i == L-1 {
				out = C
			}
			f.resSkip = append(f.resSkip, addConv(fmt.Sprintf("%sres_skip_layers.%d", p, i), out, C, 1))
		}
		f.start = addConv(p+"start", C, half, 1)
		f.endW = add(p+"end.weight", 2*half, C, 1)
		f.endB = add(p+"end.bias", 2*half)
		f.cond = addConv(p+"cond_layer", 2*C*L, cfg.NMels*cfg.Group, 1)
	}
	for k := range m.flows {
		c := cfg.FlowChannels(k)
		m.flows[k].convinv = add(fmt.Sprintf("convinv.%d.conv.weight", k), c, c, 1)
	}
	return m, nil
}

// FromStateDict builds a trainable model for cfg from a state dict in
// NVIDIA's naming. In the current weight-norm form (the training
// parameterisation, e.g. "WN.0.cond_layer.weight_g" and
// "WN.0.cond_layer.weight_v", as in the checkpoints NVIDIA's train.py
// writes) the tensors are taken as they are. Any other form
// vocoder.InferenceStateDict accepts (folded inference weights, the
// pre-2019 WN layout with cond_layers, res_layers and skip_layers, folded
// or not) is folded and re-parameterised as torch.nn.utils.weight_norm
// does: v = weight, g = ‖weight‖ per output channel. Every tensor's
// presence, shape and finiteness is checked.
func FromStateDict(sd vocoder.StateDict, cfg vocoder.Config) (*Model, error) {
	m, err := newModel(cfg)
	if err != nil {
		return nil, err
	}
	if _, ok := sd["WN.0.cond_layer.weight_g"]; ok {
		if err := m.loadWeightNorm(sd); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
	} else if err := m.loadInference(sd); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	return m, nil
}

// loadWeightNorm copies a weight-norm form state dict holding exactly the
// model's parameters.
func (m *Model) loadWeightNorm(sd vocoder.StateDict) error {
	for _, p := range m.params {
		t, ok := sd[p.Name]
		if !ok {
			return fmt.Errorf("tensor %s missing", p.Name)
		}
		if err := setValue(p, t); err != nil {
			return err
		}
	}
	if len(sd) != len(m.params) {
		var extra []string
		for name := range sd {
			if _, ok := m.byName[name]; !ok {
				extra = append(extra, name)
			}
		}
		slices.Sort(extra)
		return fmt.Errorf("unexpected tensors for this topology: %s", strings.Join(extra, ", "))
	}
	return nil
}

// loadInference folds sd into inference form, checks it against the
// topology by building a vocoder.Model, and re-parameterises every
// weight-normed convolution with v = weight and g = ‖weight‖.
func (m *Model) loadInference(sd vocoder.StateDict) error {
	inf, err := vocoder.InferenceStateDict(sd)
	if err != nil {
		return err
	}
	if _, err := vocoder.New(inf, m.cfg); err != nil {
		return err
	}
	for _, p := range m.params {
		base, isG := strings.CutSuffix(p.Name, ".weight_g")
		switch {
		case isG:
			w := inf[base+".weight"]
			rowNorms(p.Value, w.Data, len(p.Value))
		case strings.HasSuffix(p.Name, ".weight_v"):
			copy(p.Value, inf[strings.TrimSuffix(p.Name, "_v")].Data)
		default:
			copy(p.Value, inf[p.Name].Data)
		}
	}
	return nil
}

// setValue copies t into p after checking its shape and values.
func setValue(p *Param, t vocoder.Tensor) error {
	if !slices.Equal(t.Shape, p.Shape) {
		return fmt.Errorf("tensor %s has shape %v, want %v for this topology", p.Name, t.Shape, p.Shape)
	}
	if len(t.Data) != len(p.Value) {
		return fmt.Errorf("tensor %s has %d values for shape %v", p.Name, len(t.Data), t.Shape)
	}
	for i, v := range t.Data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("tensor %s has a non-finite value %v at index %d", p.Name, v, i)
		}
	}
	copy(p.Value, t.Data)
	return nil
}

// rowNorms sets norms[r] to the Euclidean norm of row r of the rows-row
// matrix w, computed in float64.
func rowNorms(norms, w []float32, rows int) {
	per := len(w) / rows
	for r := 0; r < rows; r++ {
		var ss float64
		for _, x := range w[r*per : (r+1)*per] {
			ss += float64(x) * float64(x)
		}
		norms[r] = float32(math.Sqrt(ss))
	}
}

// Config returns the model's configuration.
func (m *Model) Config() vocoder.Config { return m.cfg }

// Options returns the model's computation options.
func (m *Model) Options() Options { return m.opts }

// SetOptions changes how the model computes. It releases the working
// memory kept from earlier calls.
func (m *Model) SetOptions(o Options) {
	m.opts = o
	m.workers = nil
}

// Params returns the parameters in PyTorch's named_parameters() order,
// which is also the order of the parameter indices in an optimizer's
// state_dict. The slice is the model's own: the values and gradients are
// live.
func (m *Model) Params() []*Param { return m.params }

// Param returns the parameter with the given name, or nil.
func (m *Model) Param(name string) *Param { return m.byName[name] }

// StateDict returns a copy of the parameters in the weight-norm form,
// keyed by name.
func (m *Model) StateDict() vocoder.StateDict {
	sd := make(vocoder.StateDict, len(m.params))
	for _, p := range m.params {
		sd[p.Name] = vocoder.Tensor{Shape: slices.Clone(p.Shape), Data: slices.Clone(p.Value)}
	}
	return sd
}

// ExportInference returns an inference model with the current weights
// (weight norm folded by vocoder.InferenceStateDict).
func (m *Model) ExportInference() (*vocoder.Model, error) {
	cfg := m.cfg
	vm, err := vocoder.FromStateDict(m.StateDict(), vocoder.LoadOptions{Config: &cfg, Mel: &cfg.Mel})
	if err != nil {
		return nil, fmt.Errorf("train: export: %w", err)
	}
	return vm, nil
}
