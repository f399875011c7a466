package train

import (
	"context"
	"math"
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
// accumulated in float64: NaN or +Inf if any gradient element is.
func GradNorm(params []*Param) float64 {
	var ss float64
	for _, p := range params {
		for _, g := range p.Grad {
			ss += float64(g) * float64(g)
		}
	}
	return math.Sqrt(ss)
}
