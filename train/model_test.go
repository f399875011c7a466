package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/glowvoc/glowvoc/melspec"
	"github.com/glowvoc/glowvoc/vocoder"
)

func TestNewInit(t *testing.T) {
	cfg := refConfig(t, "tiny_mel8")
	m, err := New(cfg, 7)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Params() {
		name := p.Name
		switch {
		case strings.Contains(name, ".end."):
			if maxAbs(p.Value) != 0 {
				t.Errorf("%s is not zero", name)
			}
		case strings.HasPrefix(name, "convinv."):
			c := p.Shape[0]
			w := mat.NewDense(c, c, nil)
			for i, v := range p.Value {
				w.Set(i/c, i%c, float64(v))
			}
			var wtw mat.Dense
			wtw.Mul(w.T(), w)
			for i := 0; i < c; i++ {
				for j := 0; j < c; j++ {
					want := 0.0
					if i == j {
						want = 1
					}
					if math.Abs(wtw.At(i, j)-want) > 1e-6 {
						t.Fatalf("%s is not orthogonal: (WᵀW)[%d,%d] = %v", name, i, j, wtw.At(i, j))
					}
				}
			}
			if d := mat.Det(w); d < 0 {
				t.Errorf("%s has det %v", name, d)
			}
		case strings.HasSuffix(name, ".weight_g"):
			v := m.Param(strings.TrimSuffix(name, "_g") + "_v").Value
			per := len(v) / len(p.Value)
			for r, g := range p.Value {
				var ss float64
				for _, x := range v[r*per : (r+1)*per] {
					ss += float64(x) * float64(x)
				}
				if math.Abs(float64(g)-math.Sqrt(ss)) > 1e-6*math.Sqrt(ss) {
					t.Fatalf("%s[%d] = %v, want ‖v‖ = %v", name, r, g, math.Sqrt(ss))
				}
			}
		default: // U(−1/√fan_in, 1/√fan_in)
			fanIn := cfg.NMels * cfg.UpsampleKernel
			if !strings.HasPrefix(name, "upsample.") {
				prefix := strings.TrimSuffix(strings.TrimSuffix(name, ".bias"), ".weight_v")
				v := m.Param(prefix + ".weight_v")
				fanIn = len(v.Value) / v.Shape[0]
			}
			bound := 1 / math.Sqrt(float64(fanIn))
			if got := maxAbs(p.Value); got > bound || got < 0.5*bound {
				t.Errorf("%s: max|x| = %v, want close to the bound %v", name, got, bound)
			}
		}
	}
	same, _ := New(cfg, 7)
	other, _ := New(cfg, 8)
	for i, p := range m.Params() {
		if !slices.Equal(p.Value, same.Params()[i].Value) {
			t.Fatalf("%s differs between two models of the same seed", p.Name)
		}
	}
	if slices.Equal(m.Param("convinv.0.conv.weight").Value, other.Param("convinv.0.conv.weight").Value) {
		t.Error("seeds 7 and 8 give the same 1x1 convolution")
	}
	if _, err := New(vocoder.Config{}, 1); err == nil {
		t.Error("New with an empty config: no error")
	}
}

func TestFromStateDictErrors(t *testing.T) {
	const model = "tiny_mel8"
	cfg := refConfig(t, model)
	base := stateDict(readNPZ(t, model, "weights_wn.npz"))
	tests := []struct {
		name   string
		modify func(sd vocoder.StateDict)
		want   string
	}{
		{"missing", func(sd vocoder.StateDict) { delete(sd, "WN.1.end.bias") }, "WN.1.end.bias missing"},
		{"extra", func(sd vocoder.StateDict) { sd["WN.9.end.bias"] = sd["WN.1.end.bias"] }, "unexpected tensors"},
		{"shape", func(sd vocoder.StateDict) {
			x := sd["WN.0.start.weight_v"]
			sd["WN.0.start.weight_v"] = vocoder.Tensor{Shape: []int{x.Shape[0], x.Shape[1]}, Data: x.Data}
		}, "WN.0.start.weight_v has shape"},
		{"short", func(sd vocoder.StateDict) {
			x := sd["upsample.bias"]
			sd["upsample.bias"] = vocoder.Tensor{Shape: x.Shape, Data: x.Data[1:]}
		}, "upsample.bias has"},
		{"nan", func(sd vocoder.StateDict) {
			x := sd["convinv.2.conv.weight"]
			d := slices.Clone(x.Data)
			d[3] = float32(math.NaN())
			sd["convinv.2.conv.weight"] = vocoder.Tensor{Shape: x.Shape, Data: d}
		}, "non-finite"},
		{"inference form, missing", func(sd vocoder.StateDict) {
			for name := range sd {
				delete(sd, name)
			}
			sd["upsample.bias"] = base["upsample.bias"]
		}, "missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sd := make(vocoder.StateDict, len(base))
			for k, v := range base {
				sd[k] = v
			}
			tt.modify(sd)
			_, err := FromStateDict(sd, cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// oldLayout rewrites a current-layout state dict into the pre-2019 WN
// layout (per-layer cond_layers, separate res_layers and skip_layers), the
// inverse of NVIDIA's convert_model.py. Weight norm is per output channel,
// so g and v split by rows like a plain weight.
func oldLayout(sd vocoder.StateDict, cfg vocoder.Config) vocoder.StateDict {
	C, L := cfg.WN.Channels, cfg.WN.Layers
	rows := func(t vocoder.Tensor, lo, hi int) vocoder.Tensor {
		per := len(t.Data) / t.Shape[0]
		shape := slices.Clone(t.Shape)
		shape[0] = hi - lo
		return vocoder.Tensor{Shape: shape, Data: t.Data[lo*per : hi*per]}
	}
	out := vocoder.StateDict{}
	for name, t := range sd {
		var k, i int
		var param string
		switch {
		case scan(name, "WN.%d.cond_layer.%s", &k, &param):
			for i := 0; i < L; i++ {
				out[fmt.Sprintf("WN.%d.cond_layers.%d.%s", k, i, param)] = rows(t, 2*C*i, 2*C*(i+1))
			}
		case scan(name, "WN.%d.res_skip_layers.%d.%s", &k, &i, &param):
			if i == L-1 {
				out[fmt.Sprintf("WN.%d.skip_layers.%d.%s", k, i, param)] = t
				continue
			}
			out[fmt.Sprintf("WN.%d.res_layers.%d.%s", k, i, param)] = rows(t, 0, C)
			out[fmt.Sprintf("WN.%d.skip_layers.%d.%s", k, i, param)] = rows(t, C, 2*C)
		default:
			out[name] = t
		}
	}
	return out
}

// scan reports whether name matches format (dots separate the fields).
func scan(name, format string, args ...any) bool {
	n, err := fmt.Sscanf(strings.ReplaceAll(name, ".", " "), strings.ReplaceAll(format, ".", " "), args...)
	return err == nil && n == len(args)
}

// TestOtherForms loads the inference form (weights.npz) and the pre-2019
// layout, folded and in weight-norm form: each must be re-parameterised
// with g = ‖w‖ and compute the reference loss.
func TestOtherForms(t *testing.T) {
	const model = "tiny_mel8"
	cfg := refConfig(t, model)
	folded := stateDict(readNPZ(t, model, "weights.npz"))
	wn := stateDict(readNPZ(t, model, "weights_wn.npz"))
	batch, train := refBatch(t, model)
	want := float64(train["loss"].Data[0])
	for _, tt := range []struct {
		name string
		sd   vocoder.StateDict
	}{
		{"inference", folded},
		{"old layout", oldLayout(folded, cfg)},
		{"old layout, weight norm", oldLayout(wn, cfg)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, old := tt.sd["WN.0.cond_layers.1.bias"]
			if strings.HasPrefix(tt.name, "old") != old {
				t.Fatalf("state dict not in the layout the case names")
			}
			m, err := FromStateDict(tt.sd, cfg)
			if err != nil {
				t.Fatal(err)
			}
			loss, err := m.Loss(context.Background(), batch, 1)
			if err != nil {
				t.Fatal(err)
			}
			if rel := math.Abs(loss-want) / math.Abs(want); rel > 1e-5 {
				t.Errorf("loss %.9g, want %.9g", loss, want)
			}
			g := m.Param("WN.0.cond_layer.weight_g").Value
			norms := make([]float32, len(g))
			rowNorms(norms, m.Param("WN.0.cond_layer.weight_v").Value, len(g))
			if !slices.Equal(g, norms) {
				t.Errorf("g = %v, want ‖v‖ = %v", g, norms)
			}
		})
	}
}

// TestExportInference checks the exported vocoder.Model against the
// trainable model: same loss (vocoder.Loss of Forward) and the same
// folded weights as weights.npz.
func TestExportInference(t *testing.T) {
	const model = "tiny_mel8"
	m := refModel(t, model)
	batch, _ := refBatch(t, model)
	vm, err := m.ExportInference()
	if err != nil {
		t.Fatal(err)
	}
	var results []*vocoder.ForwardResult
	for _, ex := range batch {
		r, err := vm.Forward(context.Background(), ex.Audio, ex.Mel)
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, r)
	}
	want := vocoder.Loss(results, 1)
	got, err := m.Loss(context.Background(), batch, 1)
	if err != nil {
		t.Fatal(err)
	}
	if rel := math.Abs(got-want) / math.Abs(want); rel > 1e-6 {
		t.Errorf("loss %.9g, exported model's %.9g", got, want)
	}
	folded := readNPZ(t, model, "weights.npz")
	for name, w := range vm.StateDict() {
		ref := folded[name]
		if d, _ := maxAbsDiff(w.Data, ref.Data); d > 1e-6*maxAbs(ref.Data) {
			t.Errorf("%s: exported weight differs by %.3g", name, d)
		}
	}
	// StateDict is a copy.
	sd := m.StateDict()
	sd["upsample.bias"].Data[0]++
	if m.Param("upsample.bias").Value[0] == sd["upsample.bias"].Data[0] {
		t.Error("StateDict shares memory with the model")
	}
}

func TestBatchErrors(t *testing.T) {
	m := refModel(t, "tiny_mel8")
	batch, _ := refBatch(t, "tiny_mel8")
	good := batch[0]
	mel := good.Mel
	tests := []struct {
		name  string
		batch []Example
		sigma float64
		want  string
	}{
		{"empty", nil, 1, "empty batch"},
		{"sigma", batch, 0, "sigma"},
		{"sigma nan", batch, math.NaN(), "sigma"},
		{"channels", []Example{{Mel: melspec.Spectrogram{NMels: 3, Frames: 16, Data: make([]float32, 48)}, Audio: good.Audio}}, 1, "channels"},
		{"length", []Example{{Mel: mel, Audio: good.Audio[:3999]}}, 1, "multiple of n_group"},
		{"too long", []Example{{Mel: melspec.Spectrogram{NMels: mel.NMels, Frames: 2, Data: mel.Data[:2*mel.NMels]}, Audio: good.Audio}}, 1, "more than"},
		{"audio nan", []Example{{Mel: mel, Audio: append(slices.Clone(good.Audio[:8]), float32(math.NaN()))[1:]}}, 1, "not finite"},
		{"bad mel", []Example{{Mel: melspec.Spectrogram{NMels: mel.NMels, Frames: 16, Data: mel.Data[:10]}, Audio: good.Audio}}, 1, "item 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.Gradients(context.Background(), tt.batch, tt.sigma)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Gradients(ctx, batch, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: error %v", err)
	}
}

// TestModesAgree runs the small model in every mode and worker count: the
// gradients agree to float32 rounding, and repeating a configuration
// reproduces it bit for bit.
func TestModesAgree(t *testing.T) {
	const model = "tiny"
	m := refModel(t, model)
	batch, _ := refBatch(t, model)
	batch = append(batch, batch[1], batch[0]) // 4 items: both workers accumulate twice
	run := func(o Options) (float64, [][]float32) {
		m.SetOptions(o)
		loss, err := m.Gradients(context.Background(), batch, 1)
		if err != nil {
			t.Fatal(err)
		}
		var g [][]float32
		for _, p := range m.Params() {
			g = append(g, slices.Clone(p.Grad))
		}
		return loss, g
	}
	baseLoss, base := run(Options{Recompute: false, Workers: 1})
	for _, o := range []Options{{Recompute: true, Workers: 1}, {Recompute: false, Workers: 2}, {Recompute: true, Workers: 3}} {
		loss, g := run(o)
		if math.Abs(loss-baseLoss) > 1e-6*math.Abs(baseLoss) {
			t.Errorf("%+v: loss %.9g, want %.9g", o, loss, baseLoss)
		}
		for i, p := range m.Params() {
			if d, at := maxAbsDiff(g[i], base[i]); d > 1e-5*maxAbs(base[i])+1e-9 {
				t.Errorf("%+v: %s differs by %.3g at %d", o, p.Name, d, at)
			}
		}
		loss2, g2 := run(o)
		if loss2 != loss {
			t.Errorf("%+v: loss not reproducible: %v then %v", o, loss, loss2)
		}
		for i, p := range m.Params() {
			if !slices.Equal(g[i], g2[i]) {
				t.Errorf("%+v: %s not reproducible", o, p.Name)
			}
		}
	}
}

func TestTrainerStep(t *testing.T) {
	c := gradCheckCases[1]
	m := randomModel(t, c, 3)
	batch := randomBatch(c, 3)
	tr := NewTrainer(m, 1e-3, 1)
	var first, last StepResult
	for i := 0; i < 20; i++ {
		r, err := tr.Step(context.Background(), batch)
		if err != nil {
			t.Fatal(err)
		}
		if r.Skipped || !(r.GradNorm > 0) {
			t.Fatalf("step %d: %+v", i, r)
		}
		if i == 0 {
			first = r
		}
		last = r
	}
	if tr.Optimizer.Steps() != 20 {
		t.Errorf("optimizer took %d steps, want 20", tr.Optimizer.Steps())
	}
	if !(last.Loss < first.Loss-0.01) {
		t.Errorf("loss went from %v to %v in 20 steps on one batch", first.Loss, last.Loss)
	}

	// A log s of 1000 overflows exp: the loss is infinite and the step is
	// skipped without touching the weights or the optimizer.
	endB := m.Param("WN.0.end.bias")
	endB.Value[len(endB.Value)-1] = 1000
	before := m.StateDict()
	r, err := tr.Step(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Skipped {
		t.Fatalf("step with log s = 1000 not skipped: %+v", r)
	}
	if tr.Optimizer.Steps() != 20 {
		t.Errorf("skipped step advanced the optimizer to %d", tr.Optimizer.Steps())
	}
	for name, w := range m.StateDict() {
		if !slices.Equal(w.Data, before[name].Data) {
			t.Errorf("skipped step changed %s", name)
		}
	}
}

// workBytes returns the bytes of float32 working memory a model's workers
// hold, gradient accumulators excepted.
func workBytes(m *Model) int {
	var walk func(v reflect.Value) int
	walk = func(v reflect.Value) int {
		switch v.Kind() {
		case reflect.Pointer:
			if v.IsNil() || v.Type() == reflect.TypeFor[*gradAcc]() {
				return 0
			}
			return walk(v.Elem())
		case reflect.Struct:
			n := 0
			for i := 0; i < v.NumField(); i++ {
				n += walk(v.Field(i))
			}
			return n
		case reflect.Slice:
			if v.Type().Elem().Kind() == reflect.Float32 {
				return 4 * v.Cap()
			}
			n := 0
			for i := 0; i < v.Len(); i++ {
				n += walk(v.Index(i))
			}
			return n
		}
		return 0
	}
	n := 0
	for _, w := range m.workers {
		n += walk(reflect.ValueOf(w))
	}
	return n
}

// TestRecomputeMemory checks that with Recompute the working memory does
// not depend on the number of flows, and that without it it grows.
func TestRecomputeMemory(t *testing.T) {
	c := gradCheckCases[0]
	c.earlyEvery = 100 // no early outputs: every flow has the same size
	mem := map[bool][]int{}
	for _, flows := range []int{2, 6} {
		c.flows = flows
		m := randomModel(t, c, 1)
		batch := randomBatch(c, 1)
		for _, recompute := range []bool{true, false} {
			m.SetOptions(Options{Recompute: recompute, Workers: 1})
			if _, err := m.Gradients(context.Background(), batch, 1); err != nil {
				t.Fatal(err)
			}
			mem[recompute] = append(mem[recompute], workBytes(m))
		}
	}
	t.Logf("working memory for 2 and 6 flows: recompute %v bytes, store %v bytes", mem[true], mem[false])
	if mem[true][0] != mem[true][1] {
		t.Errorf("with Recompute, working memory grows from %d to %d bytes", mem[true][0], mem[true][1])
	}
	if mem[false][1] <= mem[false][0] {
		t.Errorf("without Recompute, working memory does not grow: %v", mem[false])
	}
}
