package train

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/glowvoc/glowvoc/internal/npy"
	"github.com/glowvoc/glowvoc/internal/safetensors"
	"github.com/glowvoc/glowvoc/internal/torchfile"
	"github.com/glowvoc/glowvoc/vocoder"
)

// LoadModelFile reads the weights of a model file as a trainable model of
// configuration cfg, to start training from (fine-tuning):
//
//   - .safetensors: a training checkpoint (its weights), a glowvoc model
//     (vocoder.Model.Save) or a plain state dict;
//   - .npz: a state dict;
//   - a PyTorch file (see IsPyTorchFile): an NVIDIA training checkpoint
//     or a state dict.
//
// Weight-norm tensors (weight_g, weight_v) are kept as they are; folded
// weights are re-parameterised (see FromStateDict). A file that records
// its configuration must agree with cfg in topology and mel front end.
func LoadModelFile(path string, cfg vocoder.Config) (*Model, error) {
	m, err := loadModelFile(path, cfg)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", path, err)
	}
	return m, nil
}

func loadModelFile(path string, cfg vocoder.Config) (*Model, error) {
	sd := vocoder.StateDict{}
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".safetensors":
		f, err := safetensors.ReadFile(path)
		if err != nil {
			return nil, err
		}
		if isCheckpoint(f) {
			c, err := checkpointFromFile(f)
			if err != nil {
				return nil, err
			}
			if err := sameConfig(c.Model.Config(), cfg); err != nil {
				return nil, err
			}
			return c.Model, nil
		}
		// A glowvoc model records its configuration: let vocoder check
		// the topology, and compare the front end here.
		vm, err := vocoder.Load(path, vocoder.LoadOptions{Config: &cfg})
		if err != nil {
			return nil, err
		}
		if err := sameConfig(vm.Config(), cfg); err != nil {
			return nil, err
		}
		for _, t := range f.Tensors {
			sd[t.Name] = vocoder.Tensor{Shape: t.Shape, Data: t.Data}
		}
	case ".npz":
		arrays, err := npy.ReadNPZ(path)
		if err != nil {
			return nil, err
		}
		for name, a := range arrays {
			sd[name] = vocoder.Tensor{Shape: a.Shape, Data: a.Data}
		}
	default:
		if !IsPyTorchFile(path) {
			return nil, fmt.Errorf("unknown model file type %q (want .safetensors, .npz or a PyTorch file)", ext)
		}
		ck, err := torchfile.Load(path)
		if err != nil {
			return nil, err
		}
		sd = torchStateDict(ck)
	}
	return FromStateDict(sd, cfg)
}

// torchStateDict returns the tensors of a PyTorch file as a state dict
// (sharing their data).
func torchStateDict(tc *torchfile.Checkpoint) vocoder.StateDict {
	sd := make(vocoder.StateDict, len(tc.Tensors))
	for name, t := range tc.Tensors {
		sd[name] = vocoder.Tensor{Shape: t.Shape, Data: t.Data}
	}
	return sd
}

// sameConfig reports an error if a model of configuration got cannot be
// trained under configuration want.
func sameConfig(got, want vocoder.Config) error {
	if got.Mel != want.Mel {
		return fmt.Errorf("the model's mel front end %+v differs from the training configuration's %+v", got.Mel, want.Mel)
	}
	if got != want {
		return fmt.Errorf("the model's topology %+v differs from the training configuration's %+v", got, want)
	}
	return nil
}

// IsPyTorchFile reports whether path names a file torch.save wrote: by
// its extension (.pt, .pth, .ckpt) or, for other names such as the
// "waveglow_<iteration>" checkpoints of NVIDIA's train.py, by its content
// (a zip archive, PyTorch's format since 1.6, or a pickle, the legacy
// format).
func IsPyTorchFile(path string) bool {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".pt", ".pth", ".ckpt":
		return true
	case ".safetensors", ".npz":
		return false
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var head [4]byte
	if _, err := io.ReadFull(f, head[:]); err != nil {
		return false
	}
	return string(head[:]) == "PK\x03\x04" || head[0] == 0x80 // pickle PROTO opcode
}
