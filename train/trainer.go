package train

import (
	"context"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
)

// Trainer takes training steps on a model: NVIDIA train.py's iteration of
// forward pass, WaveGlowLoss, backward pass and Adam update.
type Trainer struct {
	// Model is the model trained.
	Model *Model
	// Optimizer updates Model's parameters, in Model.Params() order.
	Optimizer *Adam
	// Sigma is the loss's σ (train_config.sigma, 1.0 in NVIDIA's configs).
	Sigma float64
}

// NewTrainer returns a trainer for m with a fresh Adam optimizer of
// learning rate lr.
func NewTrainer(m *Model, lr, sigma float64) *Trainer {
	return &Trainer{Model: m, Optimizer: NewAdam(m.Params(), lr), Sigma: sigma}
}

// StepResult reports one training step.
type StepResult struct {
	// Loss is the batch's loss before the update.
	Loss float64
	// GradNorm is the Euclidean norm of the gradient over all parameters.
	GradNorm float64
	// Skipped reports that the loss or the gradient was not finite, so
	// neither the weights nor the optimizer state were changed.
	Skipped bool
}

// Step computes the loss and gradients of batch and applies one Adam
// update, unless the loss or the gradient is NaN or infinite: then the step
// is skipped and reported in the result. Errors (invalid batch, cancelled
// ctx, singular 1x1 convolution) leave the weights untouched too.
func (t *Trainer) Step(ctx context.Context, batch []Example) (StepResult, error) {
	loss, err := t.Model.Gradients(ctx, batch, t.Sigma)
	if err != nil {
		return StepResult{}, err
	}
	r := StepResult{Loss: loss, GradNorm: GradNorm(t.Model.Params())}
	if math.IsNaN(loss) || math.IsInf(loss, 0) || math.IsNaN(r.GradNorm) || math.IsInf(r.GradNorm, 0) {
		r.Skipped = true
		return r, nil
	}
	if err := t.Optimizer.Update(t.Model.Params()); err != nil {
		return StepResult{}, err
	}
	return r, nil
}

// GradNorm returns the Euclidean norm of all the parameters' gradients,
// accumulated in float64: NaN or +Inf if any gradient element is. The
// gradients are summed in gradNormParts fixed ranges, in parallel, and
// the partial sums added in order, so the result does not depend on the
// number of threads.
func GradNorm(params []*Param) float64 {
	var parts [gradNormParts]float64
	forRanges(params, gradNormParts, func(part, i, from, to int) {
		var ss float64
		for _, v := range params[i].Grad[from:to] {
			ss += float64(v) * float64(v)
		}
		parts[part] += ss
	})
	var ss float64
	for _, v := range parts {
		ss += v
	}
	return math.Sqrt(ss)
}

// gradNormParts is the number of ranges GradNorm splits the gradients
// into.
const gradNormParts = 8

// forRanges splits the concatenated elements of params into parts equal
// ranges and calls f(part, i, from, to) for every piece of range part:
// elements [from, to) of params[i], one call per parameter the range
// spans, in order. Ranges run in parallel on up to GOMAXPROCS goroutines;
// calls for one range are sequential.
func forRanges(params []*Param, parts int, f func(part, i, from, to int)) {
	total := 0
	for _, p := range params {
		total += len(p.Grad)
	}
	run := func(part int) {
		lo, hi := total*part/parts, total*(part+1)/parts
		off := 0
		for i, p := range params {
			n := len(p.Grad)
			if from, to := max(lo-off, 0), min(hi-off, n); from < to {
				f(part, i, from, to)
			}
			off += n
		}
	}
	workers := min(runtime.GOMAXPROCS(0), parts)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for part := int(next.Add(1)) - 1; part < parts; part = int(next.Add(1)) - 1 {
				run(part)
			}
		}()
	}
	wg.Wait()
}
