package vocoder

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Tensor is a named parameter's value: a dense row-major float32 array and
// its shape, as PyTorch stores it.
type Tensor struct {
	Shape []int
	Data  []float32
}

func (t Tensor) elements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// StateDict maps NVIDIA parameter names ("upsample.weight",
// "WN.0.in_layers.1.weight", "convinv.3.conv.weight", ...) to tensors.
type StateDict map[string]Tensor

// InferenceStateDict returns sd in the inference form the model is built
// from: weight norm folded (every "X.weight_g" and "X.weight_v" pair
// becomes "X.weight" = g·v/‖v‖, the norm taken per output channel) and the
// pre-2019 WN layout (per-layer "cond_layers" and separate "res_layers" /
// "skip_layers") converted to the current one exactly as NVIDIA's
// convert_model.py does. sd itself is not modified.
func InferenceStateDict(sd StateDict) (StateDict, error) {
	out := make(StateDict, len(sd))
	for name, t := range sd {
		switch {
		case strings.HasSuffix(name, ".weight_v"):
			continue // handled with its weight_g
		case strings.HasSuffix(name, ".weight_g"):
			base := strings.TrimSuffix(name, "_g")
			v, ok := sd[base+"_v"]
			if !ok {
				return nil, fmt.Errorf("%s has no matching %s_v", name, base)
			}
			if _, dup := sd[base]; dup {
				// A stale plain weight beside g and v: g and v are the truth.
				delete(out, base)
			}
			w, err := foldWeightNorm(t, v)
			if err != nil {
				return nil, fmt.Errorf("fold weight norm of %s: %w", base, err)
			}
			out[base] = w
		default:
			if strings.HasSuffix(name, ".weight") {
				if _, hasG := sd[name+"_g"]; hasG {
					continue
				}
			}
			out[name] = t
		}
	}
	for name := range sd {
		if strings.HasSuffix(name, ".weight_v") {
			if _, ok := sd[strings.TrimSuffix(name, "_v")+"_g"]; !ok {
				return nil, fmt.Errorf("%s has no matching weight_g", name)
			}
		}
	}
	if err := convertOldLayout(out); err != nil {
		return nil, err
	}
	return out, nil
}

// foldWeightNorm returns g·v/‖v‖ with the norm over every dimension but
// the first (PyTorch's weight_norm with dim=0), computed in float64.
func foldWeightNorm(g, v Tensor) (Tensor, error) {
	if len(v.Shape) == 0 || v.Shape[0] == 0 {
		return Tensor{}, fmt.Errorf("weight_v has shape %v", v.Shape)
	}
	rows := v.Shape[0]
	if g.elements() != rows {
		return Tensor{}, fmt.Errorf("weight_g has shape %v, want %d elements (one per output channel of weight_v %v)", g.Shape, rows, v.Shape)
	}
	if len(v.Data) != v.elements() || len(g.Data) != rows {
		return Tensor{}, fmt.Errorf("tensor data does not match its shape")
	}
	per := len(v.Data) / rows
	w := Tensor{Shape: slices.Clone(v.Shape), Data: make([]float32, len(v.Data))}
	for r := 0; r < rows; r++ {
		row := v.Data[r*per : (r+1)*per]
		var ss float64
		for _, x := range row {
			ss += float64(x) * float64(x)
		}
		norm := math.Sqrt(ss)
		if norm == 0 {
			return Tensor{}, fmt.Errorf("weight_v row %d is all zeros: weight norm undefined", r)
		}
		scale := float64(g.Data[r]) / norm
		for i, x := range row {
			w.Data[r*per+i] = float32(float64(x) * scale)
		}
	}
	return w, nil
}

var oldLayoutName = regexp.MustCompile(`^WN\.(\d+)\.(cond_layers|res_layers|skip_layers)\.(\d+)\.(weight|bias)$`)

// convertOldLayout rewrites, in place, the pre-2019 WN parameters
// (cond_layers.i, res_layers.i, skip_layers.i) into cond_layer and
// res_skip_layers.i.
func convertOldLayout(sd StateDict) error {
	type key struct {
		flow  int
		kind  string
		layer int
		param string
	}
	old := map[key]Tensor{}
	flows := map[int]bool{}
	for name, t := range sd {
		m := oldLayoutName.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		f, _ := strconv.Atoi(m[1])
		l, _ := strconv.Atoi(m[3])
		old[key{f, m[2], l, m[4]}] = t
		flows[f] = true
		delete(sd, name)
	}
	for f := range flows {
		layers := 0
		for k := range old {
			if k.flow == f && k.kind == "skip_layers" && k.layer+1 > layers {
				layers = k.layer + 1
			}
		}
		if layers == 0 {
			return fmt.Errorf("old WN layout in flow %d has no skip_layers", f)
		}
		for _, param := range []string{"weight", "bias"} {
			var conds []Tensor
			for i := 0; i < layers; i++ {
				c, ok := old[key{f, "cond_layers", i, param}]
				if !ok {
					return fmt.Errorf("old WN layout: WN.%d.cond_layers.%d.%s missing", f, i, param)
				}
				conds = append(conds, c)
				skip, ok := old[key{f, "skip_layers", i, param}]
				if !ok {
					return fmt.Errorf("old WN layout: WN.%d.skip_layers.%d.%s missing", f, i, param)
				}
				rs := skip
				if i < layers-1 {
					res, ok := old[key{f, "res_layers", i, param}]
					if !ok {
						return fmt.Errorf("old WN layout: WN.%d.res_layers.%d.%s missing", f, i, param)
					}
					var err error
					if rs, err = concatRows(res, skip); err != nil {
						return fmt.Errorf("WN.%d res/skip layer %d %s: %w", f, i, param, err)
					}
				}
				sd[fmt.Sprintf("WN.%d.res_skip_layers.%d.%s", f, i, param)] = rs
			}
			cond, err := concatRows(conds...)
			if err != nil {
				return fmt.Errorf("WN.%d cond_layers %s: %w", f, param, err)
			}
			sd[fmt.Sprintf("WN.%d.cond_layer.%s", f, param)] = cond
		}
	}
	return nil
}

// concatRows concatenates tensors along their first dimension.
func concatRows(ts ...Tensor) (Tensor, error) {
	out := Tensor{Shape: slices.Clone(ts[0].Shape)}
	out.Shape[0] = 0
	for _, t := range ts {
		if len(t.Shape) != len(out.Shape) || !slices.Equal(t.Shape[1:], out.Shape[1:]) {
			return Tensor{}, fmt.Errorf("cannot concatenate shapes %v and %v", ts[0].Shape, t.Shape)
		}
		out.Shape[0] += t.Shape[0]
		out.Data = append(out.Data, t.Data...)
	}
	return out, nil
}

// InferConfig recovers the WaveGlow topology from the shapes of an
// inference state dict (NVIDIA checkpoints carry no configuration). The
// mel front end cannot be inferred and is set to mel.
func InferConfig(sd StateDict) (Config, error) {
	var c Config
	up, ok := sd["upsample.weight"]
	if !ok || len(up.Shape) != 3 {
		return c, fmt.Errorf("upsample.weight missing or not 3-D (got shape %v): not a WaveGlow state dict", up.Shape)
	}
	c.NMels, c.UpsampleKernel = up.Shape[0], up.Shape[2]
	var chans []int
	for k := 0; ; k++ {
		w, ok := sd[fmt.Sprintf("convinv.%d.conv.weight", k)]
		if !ok {
			break
		}
		if len(w.Shape) != 3 || w.Shape[0] != w.Shape[1] || w.Shape[2] != 1 {
			return c, fmt.Errorf("convinv.%d.conv.weight has shape %v, want [c, c, 1]", k, w.Shape)
		}
		chans = append(chans, w.Shape[0])
	}
	if len(chans) == 0 {
		return c, fmt.Errorf("no convinv.0.conv.weight: not a WaveGlow state dict")
	}
	c.Flows, c.Group = len(chans), chans[0]
	c.EarlyEvery, c.EarlySize = c.Flows, 0
	for k := 1; k < len(chans); k++ {
		if chans[k] != chans[k-1] {
			c.EarlyEvery, c.EarlySize = k, chans[k-1]-chans[k]
			break
		}
	}
	for k, ch := range chans {
		if want := c.FlowChannels(k); ch != want {
			return c, fmt.Errorf("convinv.%d.conv.weight has %d channels, but the early outputs of earlier flows imply %d", k, ch, want)
		}
	}
	start, ok := sd["WN.0.start.weight"]
	if !ok || len(start.Shape) != 3 {
		return c, fmt.Errorf("WN.0.start.weight missing or not 3-D")
	}
	c.WN.Channels = start.Shape[0]
	in0, ok := sd["WN.0.in_layers.0.weight"]
	if !ok || len(in0.Shape) != 3 {
		return c, fmt.Errorf("WN.0.in_layers.0.weight missing or not 3-D")
	}
	c.WN.KernelSize = in0.Shape[2]
	for {
		if _, ok := sd[fmt.Sprintf("WN.0.in_layers.%d.weight", c.WN.Layers)]; !ok {
			break
		}
		c.WN.Layers++
	}
	return c, nil
}

// expectedShapes lists every tensor of an inference state dict for c,
// in NVIDIA's state-dict order.
func expectedShapes(c Config) (names []string, shapes map[string][]int) {
	shapes = map[string][]int{}
	add := func(name string, shape ...int) {
		names = append(names, name)
		shapes[name] = shape
	}
	C, L, K := c.WN.Channels, c.WN.Layers, c.WN.KernelSize
	add("upsample.weight", c.NMels, c.NMels, c.UpsampleKernel)
	add("upsample.bias", c.NMels)
	for k := 0; k < c.Flows; k++ {
		half := c.FlowChannels(k) / 2
		p := fmt.Sprintf("WN.%d.", k)
		for i := 0; i < L; i++ {
			add(fmt.Sprintf("%sin_layers.%d.bias", p, i), 2*C)
			add(fmt.Sprintf("%sin_layers.%d.weight", p, i), 2*C, C, K)
		}
		for i := 0; i < L; i++ {
			rs := 2 * C
			if i == L-1 {
				rs = C
			}
			add(fmt.Sprintf("%sres_skip_layers.%d.bias", p, i), rs)
			add(fmt.Sprintf("%sres_skip_layers.%d.weight", p, i), rs, C, 1)
		}
		add(p+"start.bias", C)
		add(p+"start.weight", C, half, 1)
		add(p+"end.weight", 2*half, C, 1)
		add(p+"end.bias", 2*half)
		add(p+"cond_layer.bias", 2*C*L)
		add(p+"cond_layer.weight", 2*C*L, c.NMels*c.Group, 1)
	}
	for k := 0; k < c.Flows; k++ {
		ch := c.FlowChannels(k)
		add(fmt.Sprintf("convinv.%d.conv.weight", k), ch, ch, 1)
	}
	return names, shapes
}

// checkStateDict verifies that sd holds exactly the tensors c needs, with
// the right shapes, finite values and data lengths. Errors name the
// offending tensor.
func checkStateDict(sd StateDict, c Config) error {
	names, shapes := expectedShapes(c)
	for _, name := range names {
		t, ok := sd[name]
		if !ok {
			return fmt.Errorf("tensor %s missing", name)
		}
		if !slices.Equal(t.Shape, shapes[name]) {
			return fmt.Errorf("tensor %s has shape %v, want %v for this topology", name, t.Shape, shapes[name])
		}
		if len(t.Data) != t.elements() {
			return fmt.Errorf("tensor %s has %d values for shape %v", name, len(t.Data), t.Shape)
		}
		for i, v := range t.Data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("tensor %s has a non-finite value %v at index %d", name, v, i)
			}
		}
	}
	if len(sd) != len(names) {
		var extra []string
		for name := range sd {
			if _, ok := shapes[name]; !ok {
				extra = append(extra, name)
			}
		}
		sort.Strings(extra)
		return fmt.Errorf("unexpected tensors for a WaveGlow of this topology: %s", strings.Join(extra, ", "))
	}
	return nil
}
