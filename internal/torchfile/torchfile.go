package torchfile

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Errors returned (wrapped) by the loaders; test with errors.Is.
var (
	// ErrFormat reports a malformed file or a feature this package does not
	// support.
	ErrFormat = errors.New("malformed or unsupported PyTorch file")
	// ErrForbiddenGlobal reports a pickle that references a Python global
	// outside the allow-list, such as os.system or builtins.eval. The
	// message names the global.
	ErrForbiddenGlobal = errors.New("forbidden global")
	// ErrLimit reports a file that would exceed a resource limit (pickle
	// size, nesting, tensor memory out of proportion to the file size).
	ErrLimit = errors.New("resource limit exceeded")
)

// Tensor is a tensor converted to contiguous float32 in C (row-major) order,
// whatever its storage dtype (float32, float16, bfloat16, float64, or an
// integer or bool type), strides and storage offset. A 0-d tensor has an
// empty Shape and one element.
type Tensor struct {
	Shape []int
	Data  []float32
}

// Checkpoint is what a .pt file holding a WaveGlow model (or any module or
// state dict) provides.
type Checkpoint struct {
	// Names lists the tensors in state_dict() order, which for a model
	// without buffers is named_parameters() order: each module's parameters,
	// then its persistent buffers, then its submodules, depth first, e.g.
	// "upsample.weight", "WN.0.in_layers.0.weight_g". Names are returned as
	// stored: weight-normed convolutions have weight_g and weight_v, and the
	// pre-2019 WN layout keeps cond_layers, res_layers and skip_layers.
	Names []string
	// Tensors holds every tensor of Names, exactly as stored. The stale
	// `weight` attribute that weight-normed modules pickle in their
	// __dict__ is not a parameter and is not included.
	Tensors map[string]Tensor
	// Iteration is the checkpoint's "iteration" entry, 0 when absent.
	Iteration int
	// LearningRate is the checkpoint's "learning_rate" entry, 0 when absent.
	LearningRate float64
	// Optimizer is the checkpoint's Adam state; nil when the checkpoint has
	// no optimizer or a different one.
	Optimizer *AdamState
	// Attributes holds the scalar attributes of pickled modules (int,
	// float64, bool, string, and []int for tuples of ints), keyed by dotted
	// path like the tensors: "n_flows", "n_group", "WN.0.n_layers",
	// "WN.0.in_layers.1.dilation" ([]int{2}). Attributes whose name starts
	// with an underscore are left out. It is empty for state dicts.
	Attributes map[string]any
}

// AdamState is the state of a torch.optim.Adam optimizer, by parameter name.
type AdamState struct {
	// Step is the per-parameter step count (a Python int or a 0-d tensor
	// in the file).
	Step map[string]float64
	// ExpAvg and ExpAvgSq are the first and second moment estimates.
	ExpAvg, ExpAvgSq map[string]Tensor
	// Hyperparameters of the (single, or all identical) parameter groups.
	LR, Beta1, Beta2, Eps, WeightDecay float64
	// AMSGrad reports the amsgrad variant (whose max_exp_avg_sq state is
	// not returned).
	AMSGrad bool
}

// Load reads a checkpoint written by torch.save, in the zip format of
// PyTorch >= 1.6 or the legacy format. It accepts NVIDIA's training
// checkpoints {'model': module, 'iteration', 'optimizer', 'learning_rate'},
// a pickled module, a plain state dict (an OrderedDict from names to
// tensors), and {'state_dict': state dict} or {'model': state dict}.
//
// Optimizer state is keyed by parameter position (or, in old files, by
// id(param)) and mapped to names in parameter order; for a plain state dict
// every entry counts as a parameter.
func Load(path string) (*Checkpoint, error) {
	return loadFile(path, load)
}

// LoadReader is Load for a file of the given size read through r.
func LoadReader(r io.ReaderAt, size int64) (*Checkpoint, error) {
	return loadReader(r, size, load)
}

// LoadTensor reads a file holding a single saved tensor, such as a Tacotron2
// mel spectrogram ([n_mels, T] or [1, n_mels, T]), possibly a non-contiguous
// view such as a transpose.
func LoadTensor(path string) (Tensor, error) {
	return loadFile(path, loadTensor)
}

// LoadTensorReader is LoadTensor for a file of the given size read through r.
func LoadTensorReader(r io.ReaderAt, size int64) (Tensor, error) {
	return loadReader(r, size, loadTensor)
}

// loadFile runs a loader on the file at path, naming the path in its errors.
func loadFile[T any](path string, load func(io.ReaderAt, int64) (T, error)) (T, error) {
	var zero T
	f, err := os.Open(path)
	if err != nil {
		return zero, fmt.Errorf("torchfile: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return zero, fmt.Errorf("torchfile: %w", err)
	}
	v, err := load(f, fi.Size())
	if err != nil {
		return zero, fmt.Errorf("torchfile: %s: %w", path, err)
	}
	return v, nil
}

// loadReader runs a loader on r, prefixing its errors with the package name.
func loadReader[T any](r io.ReaderAt, size int64, load func(io.ReaderAt, int64) (T, error)) (T, error) {
	v, err := load(r, size)
	if err != nil {
		var zero T
		return zero, fmt.Errorf("torchfile: %w", err)
	}
	return v, nil
}

func loadTensor(r io.ReaderAt, size int64) (Tensor, error) {
	f, err := open(r, size)
	if err != nil {
		return Tensor{}, err
	}
	t, ok := f.root.(*tensorRef)
	if !ok {
		return Tensor{}, fmt.Errorf("%w: file holds a %s, not a tensor", ErrFormat, pyType(f.root))
	}
	return convert(t, f.order, f.budget)
}
