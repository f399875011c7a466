package train

import (
	"fmt"
	"math"
	"math/big"
	"runtime"
	"slices"

	"github.com/glowvoc/glowvoc/internal/torchfile"
)

// Adam is torch.optim.Adam (no weight decay, no AMSGrad) reproduced bit
// for bit: the same float32 operations in the same order, including the
// fused multiply-adds of PyTorch's CPU kernels (README §2.6). Explicit
// float32 conversions keep the compiler from fusing other products.
type Adam struct {
	// LR is the learning rate; Beta1, Beta2 and Eps the other
	// hyperparameters, PyTorch's defaults 0.9, 0.999 and 1e-8 from NewAdam.
	LR, Beta1, Beta2, Eps float64

	steps    int64
	names    []string
	expAvg   [][]float32
	expAvgSq [][]float32
}

// NewAdam returns an optimizer with fresh (zero) state for params and
// PyTorch's default hyperparameters with learning rate lr.
func NewAdam(params []*Param, lr float64) *Adam {
	a := &Adam{LR: lr, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	for _, p := range params {
		a.names = append(a.names, p.Name)
		a.expAvg = append(a.expAvg, make([]float32, len(p.Value)))
		a.expAvgSq = append(a.expAvgSq, make([]float32, len(p.Value)))
	}
	return a
}

// Steps returns the number of updates applied (PyTorch's state "step").
func (a *Adam) Steps() int64 { return a.steps }

// Update applies one Adam step to every parameter from its Grad. params
// must be the parameters the optimizer was created for, in the same order.
func (a *Adam) Update(params []*Param) error {
	if err := a.check(params); err != nil {
		return err
	}
	a.steps++
	// Scalars as PyTorch's _single_tensor_adam computes them, in float64.
	bc1 := 1 - pow(a.Beta1, a.steps)
	bc2 := 1 - pow(a.Beta2, a.steps)
	h := adamScalars{
		stepSize: float32(-(a.LR / bc1)),
		bc2Sqrt:  float32(math.Sqrt(bc2)),
		b1:       float32(a.Beta1), b2: float32(a.Beta2),
		omb1: float32(1 - a.Beta1), omb2: float32(1 - a.Beta2),
		eps: float32(a.Eps),
	}
	// The update is elementwise: split it into equal ranges of the
	// concatenated parameters, one per thread.
	total := 0
	for _, p := range params {
		total += len(p.Value)
	}
	workers := max(1, min(runtime.GOMAXPROCS(0), total/adamMinPerWorker))
	forRanges(params, workers, func(_, i, from, to int) {
		p := params[i]
		h.update(p.Value[from:to], p.Grad[from:to], a.expAvg[i][from:to], a.expAvgSq[i][from:to])
	})
	return nil
}

// adamMinPerWorker is the fewest elements worth a goroutine of Update.
const adamMinPerWorker = 1 << 16

// adamScalars are the float32 constants of one Adam step. adamAVX2 reads
// the fields by offset: keep their order.
type adamScalars struct {
	stepSize, bc2Sqrt, b1, b2, omb1, omb2, eps float32
}

// updateGo applies the step to parameter values p with gradients g and
// moments m and v, all of the same length, one element at a time.
func (h *adamScalars) updateGo(p, g, m, v []float32) {
	g, m, v = g[:len(p)], m[:len(p)], v[:len(p)]
	for j, gj := range g {
		// exp_avg.mul_(β1).add_(g, alpha=1−β1)
		mj := fma(gj, h.omb1, float32(m[j]*h.b1))
		// exp_avg_sq.mul_(β2).addcmul_(g, g, value=1−β2)
		vj := fma(float32(h.omb2*gj), gj, float32(v[j]*h.b2))
		m[j], v[j] = mj, vj
		// denom = (exp_avg_sq.sqrt() / sqrt(bc2)).add_(eps)
		den := float32(float32(math.Sqrt(float64(vj)))/h.bc2Sqrt) + h.eps
		// param.addcdiv_(exp_avg, denom, value=−step_size)
		p[j] += float32(float32(h.stepSize*mj) / den)
	}
}

// fma returns float32(a·b + c) rounded once from float64 (a·b is exact in
// float64), as PyTorch's vectorised CPU kernels compute it.
func fma(a, b, c float32) float32 {
	return float32(float64(a)*float64(b) + float64(c))
}

// pow returns bˢ correctly rounded, as C's pow (which CPython's ** calls)
// computes it; math.Pow's repeated squaring can be an ulp off.
func pow(b float64, s int64) float64 {
	x := new(big.Float).SetPrec(256).SetFloat64(b)
	r := new(big.Float).SetPrec(256).SetInt64(1)
	for ; s > 0; s >>= 1 {
		if s&1 == 1 {
			r.Mul(r, x)
		}
		x.Mul(x, x)
	}
	f, _ := r.Float64()
	return f
}

// check reports whether params match the optimizer's state.
func (a *Adam) check(params []*Param) error {
	if len(params) != len(a.names) {
		return fmt.Errorf("train: Adam has state for %d parameters, got %d", len(a.names), len(params))
	}
	for i, p := range params {
		if p.Name != a.names[i] || len(p.Value) != len(a.expAvg[i]) || len(p.Grad) != len(p.Value) {
			return fmt.Errorf("train: parameter %d is %s with %d values, Adam's state is for %s with %d", i, p.Name, len(p.Value), a.names[i], len(a.expAvg[i]))
		}
	}
	return nil
}

// AdamState is an Adam optimizer's state by parameter name: what a
// checkpoint records (PyTorch's optimizer state_dict).
type AdamState struct {
	// LR, Beta1, Beta2 and Eps are the hyperparameters.
	LR, Beta1, Beta2, Eps float64
	// Steps is the number of updates applied so far.
	Steps int64
	// ExpAvg and ExpAvgSq are the first and second moment estimates.
	ExpAvg, ExpAvgSq map[string][]float32
}

// State returns a copy of the optimizer's state.
func (a *Adam) State() AdamState {
	s := AdamState{
		LR: a.LR, Beta1: a.Beta1, Beta2: a.Beta2, Eps: a.Eps, Steps: a.steps,
		ExpAvg:   make(map[string][]float32, len(a.names)),
		ExpAvgSq: make(map[string][]float32, len(a.names)),
	}
	for i, name := range a.names {
		s.ExpAvg[name] = slices.Clone(a.expAvg[i])
		s.ExpAvgSq[name] = slices.Clone(a.expAvgSq[i])
	}
	return s
}

// SetState replaces the optimizer's state and hyperparameters by s, which
// must hold moments of the right sizes for every parameter and nothing
// else.
func (a *Adam) SetState(s AdamState) error {
	if s.Steps < 0 {
		return fmt.Errorf("train: Adam state has step count %d", s.Steps)
	}
	if len(s.ExpAvg) != len(a.names) || len(s.ExpAvgSq) != len(a.names) {
		return fmt.Errorf("train: Adam state has moments for %d and %d parameters, the model %d", len(s.ExpAvg), len(s.ExpAvgSq), len(a.names))
	}
	for i, name := range a.names {
		m, ok1 := s.ExpAvg[name]
		v, ok2 := s.ExpAvgSq[name]
		if !ok1 || !ok2 {
			return fmt.Errorf("train: Adam state has no moments for %s", name)
		}
		if len(m) != len(a.expAvg[i]) || len(v) != len(a.expAvg[i]) {
			return fmt.Errorf("train: Adam state for %s has %d and %d values, want %d", name, len(m), len(v), len(a.expAvg[i]))
		}
	}
	for i, name := range a.names {
		copy(a.expAvg[i], s.ExpAvg[name])
		copy(a.expAvgSq[i], s.ExpAvgSq[name])
	}
	a.LR, a.Beta1, a.Beta2, a.Eps, a.steps = s.LR, s.Beta1, s.Beta2, s.Eps, s.Steps
	return nil
}

// AdamStateFromTorch converts the optimizer state of a PyTorch checkpoint
// (torchfile.Checkpoint.Optimizer). Weight decay and AMSGrad are not
// supported, and every parameter must have the same step count.
func AdamStateFromTorch(t *torchfile.AdamState) (AdamState, error) {
	if t == nil {
		return AdamState{}, fmt.Errorf("train: checkpoint has no Adam state")
	}
	if t.WeightDecay != 0 || t.AMSGrad {
		return AdamState{}, fmt.Errorf("train: Adam with weight decay %v, amsgrad %v is not supported", t.WeightDecay, t.AMSGrad)
	}
	s := AdamState{
		LR: t.LR, Beta1: t.Beta1, Beta2: t.Beta2, Eps: t.Eps,
		ExpAvg:   make(map[string][]float32, len(t.ExpAvg)),
		ExpAvgSq: make(map[string][]float32, len(t.ExpAvgSq)),
	}
	first := true
	for name, step := range t.Step {
		if step < 0 || step != math.Trunc(step) || step > 1<<53 {
			return AdamState{}, fmt.Errorf("train: Adam step count %v of %s is not a count", step, name)
		}
		if !first && int64(step) != s.Steps {
			return AdamState{}, fmt.Errorf("train: Adam step counts differ between parameters (%v and %d)", step, s.Steps)
		}
		s.Steps, first = int64(step), false
	}
	for name, x := range t.ExpAvg {
		s.ExpAvg[name] = x.Data
	}
	for name, x := range t.ExpAvgSq {
		s.ExpAvgSq[name] = x.Data
	}
	return s, nil
}
