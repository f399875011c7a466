package train

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/glowvoc/glowvoc/internal/npy"
	"github.com/glowvoc/glowvoc/internal/torchfile"
	"github.com/glowvoc/glowvoc/vocoder"
)

// setRefGrads sets every gradient from grads.npz. A tensor stored only at
// taps ::64 gets those taps and zeros elsewhere; the update is elementwise,
// so the stored taps are still exact.
func setRefGrads(t *testing.T, model string, m *Model) {
	t.Helper()
	grads := readNPZ(t, model, "grads.npz")
	for _, p := range m.Params() {
		if g, ok := grads[p.Name]; ok {
			copy(p.Grad, g.Data)
			continue
		}
		s, ok := stridedSums(t, model, "grads.npz", p.Name)
		if !ok {
			t.Fatalf("%s: no reference gradient", p.Name)
		}
		clear(p.Grad)
		k := p.Shape[2]
		for i, v := range grads[s.Key].Data {
			p.Grad[i/16*k+i%16*64] = v
		}
	}
}

// checkBitExact compares every parameter with want (strided tensors at
// their stored taps) and requires identical float32 values.
func checkBitExact(t *testing.T, model, file string, m *Model, want map[string]npy.Array) {
	t.Helper()
	for _, p := range m.Params() {
		got := p.Value
		w, ok := want[p.Name]
		if !ok {
			s, strided := stridedSums(t, model, file, p.Name)
			if !strided {
				t.Errorf("%s: not in %s", p.Name, file)
				continue
			}
			w, got = want[s.Key], taps64(p.Value, p.Shape)
		}
		differ, first := 0, -1
		for i := range w.Data {
			if math.Float32bits(got[i]) != math.Float32bits(w.Data[i]) {
				if first < 0 {
					first = i
				}
				differ++
			}
		}
		if differ > 0 {
			t.Errorf("%s: %d of %d values differ, first at %d: %v, want %v", p.Name, differ, len(w.Data), first, got[first], w.Data[first])
		}
	}
}

// TestAdamFresh applies one step of a fresh Adam(lr=1e-4) to grads.npz.
func TestAdamFresh(t *testing.T) {
	for _, model := range []string{"tiny", "tiny_mel8"} {
		t.Run(model, func(t *testing.T) {
			m := refModel(t, model)
			setRefGrads(t, model, m)
			opt := NewAdam(m.Params(), 1e-4)
			if err := opt.Update(m.Params()); err != nil {
				t.Fatal(err)
			}
			if opt.Steps() != 1 {
				t.Errorf("Steps() = %d, want 1", opt.Steps())
			}
			checkBitExact(t, model, "after_adam_step.npz", m, readNPZ(t, model, "after_adam_step.npz"))
		})
	}
}

// TestAdamResumed restores the optimizer of tiny_mel8's checkpoints (or
// adam_state.npz) and takes one more step (step count 3 → 4).
func TestAdamResumed(t *testing.T) {
	const model = "tiny_mel8"
	fromTorch := func(file string) func(t *testing.T) (*Model, AdamState) {
		return func(t *testing.T) (*Model, AdamState) {
			ck, err := torchfile.Load(filepath.Join(refDir(model), file))
			if err != nil {
				t.Fatal(err)
			}
			sd := stateDictOf(ck)
			m, err := FromStateDict(sd, refConfig(t, model))
			if err != nil {
				t.Fatal(err)
			}
			s, err := AdamStateFromTorch(ck.Optimizer)
			if err != nil {
				t.Fatal(err)
			}
			return m, s
		}
	}
	fromNPZ := func(t *testing.T) (*Model, AdamState) {
		a := readNPZ(t, model, "adam_state.npz")
		s := AdamState{LR: 1e-4, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8,
			Steps: int64(a["step"].Data[0]), ExpAvg: map[string][]float32{}, ExpAvgSq: map[string][]float32{}}
		for key, x := range a {
			if name, ok := strings.CutSuffix(key, ".exp_avg_sq"); ok {
				s.ExpAvgSq[name] = x.Data
			} else if name, ok := strings.CutSuffix(key, ".exp_avg"); ok {
				s.ExpAvg[name] = x.Data
			}
		}
		return refModel(t, model), s
	}
	tests := []struct {
		name string
		load func(t *testing.T) (*Model, AdamState)
	}{
		{"checkpoint.pt", fromTorch("checkpoint.pt")},
		{"checkpoint_legacy_cuda.pt", fromTorch("checkpoint_legacy_cuda.pt")},
		{"adam_state.npz", fromNPZ},
	}
	want := readNPZ(t, model, "after_adam_step_resumed.npz")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, s := tt.load(t)
			if s.Steps != 3 || s.LR != 1e-4 || s.Beta1 != 0.9 || s.Beta2 != 0.999 || s.Eps != 1e-8 {
				t.Fatalf("state: steps %d, lr %v, betas %v %v, eps %v", s.Steps, s.LR, s.Beta1, s.Beta2, s.Eps)
			}
			opt := NewAdam(m.Params(), 0)
			if err := opt.SetState(s); err != nil {
				t.Fatal(err)
			}
			setRefGrads(t, model, m)
			if err := opt.Update(m.Params()); err != nil {
				t.Fatal(err)
			}
			if opt.Steps() != 4 {
				t.Errorf("Steps() = %d, want 4", opt.Steps())
			}
			checkBitExact(t, model, "after_adam_step_resumed.npz", m, want)

			// The state round-trips.
			again := NewAdam(m.Params(), 0)
			if err := again.SetState(opt.State()); err != nil {
				t.Fatal(err)
			}
			if got, want := again.State(), opt.State(); got.Steps != want.Steps || got.LR != want.LR ||
				!equalMoments(got.ExpAvg, want.ExpAvg) || !equalMoments(got.ExpAvgSq, want.ExpAvgSq) {
				t.Error("State/SetState round trip changed the state")
			}
		})
	}
}

func equalMoments(a, b map[string][]float32) bool {
	if len(a) != len(b) {
		return false
	}
	for k, x := range a {
		y := b[k]
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
				return false
			}
		}
	}
	return true
}

func TestAdamErrors(t *testing.T) {
	m := refModel(t, "tiny_mel8")
	opt := NewAdam(m.Params(), 1e-4)
	if err := opt.Update(m.Params()[1:]); err == nil {
		t.Error("Update with missing parameters: no error")
	}
	s := opt.State()
	delete(s.ExpAvg, "upsample.bias")
	if err := opt.SetState(s); err == nil {
		t.Error("SetState with a missing moment: no error")
	}
	s = opt.State()
	s.ExpAvgSq["upsample.bias"] = s.ExpAvgSq["upsample.bias"][1:]
	if err := opt.SetState(s); err == nil {
		t.Error("SetState with a short moment: no error")
	}
	for _, bad := range []*torchfile.AdamState{
		nil,
		{WeightDecay: 0.1},
		{AMSGrad: true},
		{Step: map[string]float64{"a": 1, "b": 2}},
		{Step: map[string]float64{"a": 1.5}},
	} {
		if _, err := AdamStateFromTorch(bad); err == nil {
			t.Errorf("AdamStateFromTorch(%+v): no error", bad)
		}
	}
}

// stateDictOf returns a checkpoint's tensors as a state dict.
func stateDictOf(ck *torchfile.Checkpoint) vocoder.StateDict {
	sd := make(vocoder.StateDict, len(ck.Tensors))
	for name, t := range ck.Tensors {
		sd[name] = vocoder.Tensor{Shape: t.Shape, Data: t.Data}
	}
	return sd
}

// TestAdamKernel checks the dispatched element update against the scalar
// one bit for bit, on lengths around the vector width and on values from
// tiny to huge.
func TestAdamKernel(t *testing.T) {
	h := adamScalars{stepSize: -1e-4 / 0.1, bc2Sqrt: float32(math.Sqrt(0.001)), b1: 0.9, b2: 0.999, omb1: 0.1, omb2: 0.001, eps: 1e-8}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 7, 8, 9, 31, 1000} {
		vals := func(scale float64) []float32 {
			s := make([]float32, n)
			for i := range s {
				s[i] = float32(scale * rng.NormFloat64() * math.Pow(10, float64(rng.IntN(12)-6)))
			}
			return s
		}
		p, g, m := vals(1), vals(1), vals(0.1)
		v := vals(0.01)
		for i := range v {
			v[i] = float32(math.Abs(float64(v[i])))
		}
		p2, g2, m2, v2 := slices.Clone(p), slices.Clone(g), slices.Clone(m), slices.Clone(v)
		h.update(p, g, m, v)
		h.updateGo(p2, g2, m2, v2)
		for i := range p {
			if math.Float32bits(p[i]) != math.Float32bits(p2[i]) || math.Float32bits(m[i]) != math.Float32bits(m2[i]) || math.Float32bits(v[i]) != math.Float32bits(v2[i]) {
				t.Fatalf("n=%d, element %d: p, m, v = %v, %v, %v; scalar %v, %v, %v", n, i, p[i], m[i], v[i], p2[i], m2[i], v2[i])
			}
		}
	}
}
