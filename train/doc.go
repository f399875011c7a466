// Package train computes exact gradients of NVIDIA's WaveGlow training loss
// and applies PyTorch's Adam update: the numerical core of training a
// vocoder.Model in Go.
//
// A Model holds the trainable parameters in NVIDIA's weight-norm
// parameterisation, named and ordered like PyTorch's named_parameters()
// ("upsample.weight", "WN.0.in_layers.0.weight_g", ...,
// "convinv.3.conv.weight"). Model.Gradients runs the flow forward over a
// batch of (mel, audio) examples and back again, filling every parameter's
// gradient of WaveGlowLoss
//
//	(Σz²/(2σ²) − Σ log s − Σ_k columns·log|det W_k|) / (number of z elements).
//
// Adam reproduces torch.optim.Adam bit for bit and reads and writes its
// state by parameter name, so NVIDIA checkpoints can be resumed. Trainer
// combines the two into one training step that skips updates whose loss or
// gradient is not finite.
//
// A Session runs a whole training run as NVIDIA's train.py does, on
// batches from a corpus.Loader, with an optional learning-rate Schedule
// and validation; it writes atomic, self-describing Checkpoints (weights,
// Adam state, iteration, loader position, RunConfig) from which a run
// resumes bit for bit, a JSONL log and a loss plot. ReadConfigFile reads
// NVIDIA's config.json, FromTorch continues an NVIDIA training checkpoint
// and LoadModelFile starts from any model file. TRAINING.md is the user's
// guide.
//
// # Computation
//
// Batch items are independent terms of the loss: each is pushed forward and
// back on its own, and the per-item parameter gradients are summed in a
// fixed order, so results are deterministic for a given Options.Workers.
// Every convolution is a GEMM (internal/nn) on [channels × time] slices;
// products with a transposed operand use an explicit transposed copy.
//
// Two memory modes give the same gradients up to float32 rounding. By
// default every flow's activations are kept from the forward pass for the
// backward pass. With Options.Recompute the backward pass instead rebuilds
// each flow's input from its output through the flow's inverse,
// x = W⁻¹·uncouple(y), and re-evaluates one WN at a time, so memory does
// not grow with the number of flows, at the cost of one more WN
// evaluation per flow.
package train
