package train

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/glowvoc/glowvoc/internal/safetensors"
	"github.com/glowvoc/glowvoc/internal/torchfile"
	"github.com/glowvoc/glowvoc/train/corpus"
	"github.com/glowvoc/glowvoc/vocoder"
)

// Checkpoint is everything a training run continues from.
type Checkpoint struct {
	// Model holds the weights in training form (weight norm g and v) and,
	// in its Config, the topology and mel front end.
	Model *Model
	// Optimizer is the Adam state; nil for a run that has not started,
	// which begins with fresh moments.
	Optimizer *Adam
	// Run is the run's configuration.
	Run RunConfig
	// Iteration is the number of iterations completed (skipped steps
	// included).
	Iteration int64
	// Position is where the run's loader continues.
	Position corpus.Position
}

// Checkpoint file metadata: the safetensors metadata keys and the format
// name.
const (
	ckptFormat        = "glowvoc-train-checkpoint"
	ckptFormatVersion = "1"
	metaFormat        = "format"
	metaVersion       = "format_version"
	metaConfig        = "config"
	metaRun           = "run"
	metaIteration     = "iteration"
	metaLoader        = "loader"
	metaAdam          = "adam"
	metaCRC           = "data_crc32c"
	adamAvgPrefix     = "adam.exp_avg."
	adamAvgSqPrefix   = "adam.exp_avg_sq."
)

// adamMeta is the JSON form of Adam's scalar state.
type adamMeta struct {
	LR    float64 `json:"lr"`
	Beta1 float64 `json:"beta1"`
	Beta2 float64 `json:"beta2"`
	Eps   float64 `json:"eps"`
	Step  int64   `json:"step"`
}

// WriteFile writes the checkpoint atomically to path as a safetensors file
// that describes itself:
//
//   - tensors: every parameter under its PyTorch name, in the weight-norm
//     form and named_parameters() order, then Adam's moments as
//     "adam.exp_avg.<name>" and "adam.exp_avg_sq.<name>";
//   - metadata: "format" ("glowvoc-train-checkpoint"), "format_version"
//     ("1"), "config" (waveglow_config and data_config as in NVIDIA's
//     config.json), "run" (the RunConfig as JSON), "iteration", "loader"
//     (the corpus.Position as JSON), "adam" ({"lr", "beta1", "beta2",
//     "eps", "step"}; absent with the moments when Optimizer is nil) and
//     "data_crc32c", the CRC-32C of the tensor data in hexadecimal, which
//     ReadCheckpoint verifies.
func (c *Checkpoint) WriteFile(path string) error {
	f, err := c.file()
	if err != nil {
		return fmt.Errorf("write checkpoint %s: %w", path, err)
	}
	if err := safetensors.WriteFile(path, f); err != nil {
		return fmt.Errorf("write checkpoint %s: %w", path, err)
	}
	return nil
}

// file returns the checkpoint's safetensors content.
func (c *Checkpoint) file() (*safetensors.File, error) {
	meta := map[string]string{
		metaFormat:    ckptFormat,
		metaVersion:   ckptFormatVersion,
		metaIteration: strconv.FormatInt(c.Iteration, 10),
	}
	for key, v := range map[string]any{metaConfig: c.Model.Config(), metaRun: c.Run, metaLoader: c.Position} {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		meta[key] = string(b)
	}
	f := &safetensors.File{Metadata: meta}
	params := c.Model.Params()
	for _, p := range params {
		f.Tensors = append(f.Tensors, safetensors.Tensor{Name: p.Name, Shape: p.Shape, Data: p.Value})
	}
	if a := c.Optimizer; a != nil {
		if err := a.check(params); err != nil {
			return nil, err
		}
		b, err := json.Marshal(adamMeta{LR: a.LR, Beta1: a.Beta1, Beta2: a.Beta2, Eps: a.Eps, Step: a.steps})
		if err != nil {
			return nil, err
		}
		meta[metaAdam] = string(b)
		for i, p := range params {
			f.Tensors = append(f.Tensors, safetensors.Tensor{Name: adamAvgPrefix + p.Name, Shape: p.Shape, Data: a.expAvg[i]})
		}
		for i, p := range params {
			f.Tensors = append(f.Tensors, safetensors.Tensor{Name: adamAvgSqPrefix + p.Name, Shape: p.Shape, Data: a.expAvgSq[i]})
		}
	}
	meta[metaCRC] = fmt.Sprintf("%08x", dataCRC(f.Tensors))
	return f, nil
}

// dataCRC returns the CRC-32C (Castagnoli) of the tensors' data as the
// file stores it: each value's float32 bits, little-endian, in order.
func dataCRC(tensors []safetensors.Tensor) uint32 {
	table := crc32.MakeTable(crc32.Castagnoli)
	var crc uint32
	buf := make([]byte, 0, 1<<16)
	for _, t := range tensors {
		for _, v := range t.Data {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
			if len(buf) == cap(buf) {
				crc = crc32.Update(crc, table, buf)
				buf = buf[:0]
			}
		}
	}
	return crc32.Update(crc, table, buf)
}

// ReadCheckpoint reads a checkpoint written by Checkpoint.WriteFile. A
// file that is truncated, fails its data checksum or is not a training
// checkpoint is an error.
func ReadCheckpoint(path string) (*Checkpoint, error) {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read checkpoint: %w", err)
	}
	c, err := checkpointFromFile(f)
	if err != nil {
		return nil, fmt.Errorf("read checkpoint %s: %w", path, err)
	}
	return c, nil
}

// isCheckpoint reports whether f is a training checkpoint.
func isCheckpoint(f *safetensors.File) bool { return f.Metadata[metaFormat] == ckptFormat }

// checkpointFromFile decodes a checkpoint's safetensors content.
func checkpointFromFile(f *safetensors.File) (*Checkpoint, error) {
	if !isCheckpoint(f) {
		return nil, fmt.Errorf("not a glowvoc training checkpoint (metadata format %q)", f.Metadata[metaFormat])
	}
	if v := f.Metadata[metaVersion]; v != ckptFormatVersion {
		return nil, fmt.Errorf("unsupported checkpoint format version %q", v)
	}
	if want, got := f.Metadata[metaCRC], fmt.Sprintf("%08x", dataCRC(f.Tensors)); want != got {
		return nil, fmt.Errorf("tensor data checksum %s, the file records %q: the file is corrupt", got, want)
	}
	c := &Checkpoint{}
	var cfg vocoder.Config
	for key, dst := range map[string]any{metaConfig: &cfg, metaRun: &c.Run, metaLoader: &c.Position} {
		if err := json.Unmarshal([]byte(f.Metadata[key]), dst); err != nil {
			return nil, fmt.Errorf("metadata %s: %w", key, err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("metadata config: %w", err)
	}
	var err error
	if c.Iteration, err = strconv.ParseInt(f.Metadata[metaIteration], 10, 64); err != nil || c.Iteration < 0 {
		return nil, fmt.Errorf("metadata iteration %q is not a count", f.Metadata[metaIteration])
	}
	sd := vocoder.StateDict{}
	s := AdamState{ExpAvg: map[string][]float32{}, ExpAvgSq: map[string][]float32{}}
	for _, t := range f.Tensors {
		if name, ok := strings.CutPrefix(t.Name, adamAvgPrefix); ok {
			s.ExpAvg[name] = t.Data
		} else if name, ok := strings.CutPrefix(t.Name, adamAvgSqPrefix); ok {
			s.ExpAvgSq[name] = t.Data
		} else {
			sd[t.Name] = vocoder.Tensor{Shape: t.Shape, Data: t.Data}
		}
	}
	if c.Model, err = FromStateDict(sd, cfg); err != nil {
		return nil, err
	}
	if raw, ok := f.Metadata[metaAdam]; ok {
		var am adamMeta
		if err := json.Unmarshal([]byte(raw), &am); err != nil {
			return nil, fmt.Errorf("metadata adam: %w", err)
		}
		s.LR, s.Beta1, s.Beta2, s.Eps, s.Steps = am.LR, am.Beta1, am.Beta2, am.Eps, am.Step
		c.Optimizer = NewAdam(c.Model.Params(), am.LR)
		if err := c.Optimizer.SetState(s); err != nil {
			return nil, err
		}
	} else if len(s.ExpAvg)+len(s.ExpAvgSq) > 0 {
		return nil, errors.New("Adam moments without Adam metadata")
	}
	return c, nil
}

// FromTorch returns the state of an NVIDIA training checkpoint
// (train.py's checkpoint.pt: the model, its Adam state and the number of
// the last iteration done) for a model of configuration cfg, to continue
// that run with the settings run. The iteration count continues
// NVIDIA's: a checkpoint of iteration k (counting from 0) has done k+1
// iterations. NVIDIA's data order cannot be reproduced, so the loader
// starts at the beginning of the corpus.
func FromTorch(tc *torchfile.Checkpoint, cfg vocoder.Config, run RunConfig) (*Checkpoint, error) {
	if tc.Optimizer == nil {
		return nil, errors.New("the PyTorch file has no Adam optimizer state (start from it as a model instead)")
	}
	m, err := FromStateDict(torchStateDict(tc), cfg)
	if err != nil {
		return nil, err
	}
	s, err := AdamStateFromTorch(tc.Optimizer)
	if err != nil {
		return nil, err
	}
	a := NewAdam(m.Params(), s.LR)
	if err := a.SetState(s); err != nil {
		return nil, err
	}
	return &Checkpoint{Model: m, Optimizer: a, Run: run, Iteration: int64(tc.Iteration) + 1}, nil
}

// Checkpoint directories hold files named ckptPrefix + iteration +
// ckptSuffix and a pointer file LatestName naming the newest.
const (
	ckptPrefix = "ckpt-"
	ckptSuffix = ".safetensors"
	// LatestName is the file in a checkpoint directory that names the
	// newest complete checkpoint.
	LatestName = "latest"
)

// checkpointName returns the file name of the checkpoint of iteration i.
func checkpointName(i int64) string { return fmt.Sprintf("%s%08d%s", ckptPrefix, i, ckptSuffix) }

// parseCheckpointName returns the iteration of a checkpoint file name.
func parseCheckpointName(name string) (int64, bool) {
	s, ok := strings.CutPrefix(name, ckptPrefix)
	if !ok {
		return 0, false
	}
	if s, ok = strings.CutSuffix(s, ckptSuffix); !ok {
		return 0, false
	}
	i, err := strconv.ParseInt(s, 10, 64)
	return i, err == nil && i >= 0
}

// checkpointFiles returns the iterations of the checkpoint files in dir,
// ascending.
func checkpointFiles(dir string) ([]int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var its []int64
	for _, e := range entries {
		if i, ok := parseCheckpointName(e.Name()); ok && e.Type().IsRegular() {
			its = append(its, i)
		}
	}
	slices.Sort(its)
	return its, nil
}

// SaveCheckpoint writes c into the checkpoint directory dir as
// ckpt-<iteration>.safetensors and then points dir/latest at it. Both
// writes are atomic (a temporary file renamed into place), and latest is
// written only once the checkpoint file is complete and synced, so a
// crash at any moment leaves latest naming a complete checkpoint.
// Afterwards only the keep newest checkpoints up to c's iteration remain:
// older ones, checkpoints of later iterations (left by a run that was
// resumed from an earlier point) and temporary files of interrupted
// writes are removed. It returns the checkpoint's path.
func SaveCheckpoint(dir string, c *Checkpoint, keep int) (string, error) {
	name := checkpointName(c.Iteration)
	path := filepath.Join(dir, name)
	if err := c.WriteFile(path); err != nil {
		return "", err
	}
	if err := writeFileAtomic(filepath.Join(dir, LatestName), []byte(name+"\n")); err != nil {
		return "", err
	}
	its, err := checkpointFiles(dir)
	if err != nil {
		return "", fmt.Errorf("prune checkpoints: %w", err)
	}
	kept := 0
	var errs []error
	for _, i := range slices.Backward(its) {
		if i <= c.Iteration && kept < keep {
			kept++
			continue
		}
		if err := os.Remove(filepath.Join(dir, checkpointName(i))); err != nil {
			errs = append(errs, err)
		}
	}
	tmps, _ := filepath.Glob(filepath.Join(dir, "."+ckptPrefix+"*.tmp-*")) // the pattern is valid
	for _, t := range tmps {
		if err := os.Remove(t); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return "", fmt.Errorf("prune checkpoints: %w", err)
	}
	return path, nil
}

// OpenCheckpoint reads the checkpoint at path: a checkpoint file, or a
// checkpoint directory, whose latest checkpoint it reads. In a directory,
// if the checkpoint latest names is missing or unreadable (or latest
// itself is missing), the other checkpoint files are tried, newest first;
// the reasons for passing over unusable files are returned in skipped.
// It returns the checkpoint and the file it came from.
func OpenCheckpoint(path string) (c *Checkpoint, file string, skipped []error, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, "", nil, fmt.Errorf("checkpoint: %w", err)
	}
	if !fi.IsDir() {
		c, err := ReadCheckpoint(path)
		return c, path, nil, err
	}
	var candidates []string
	if b, err := os.ReadFile(filepath.Join(path, LatestName)); err != nil {
		skipped = append(skipped, fmt.Errorf("checkpoint pointer: %w", err))
	} else if name := strings.TrimSpace(string(b)); name != filepath.Base(name) {
		skipped = append(skipped, fmt.Errorf("%s: %q is not a file name", filepath.Join(path, LatestName), name))
	} else {
		candidates = append(candidates, filepath.Join(path, name))
	}
	its, err := checkpointFiles(path)
	if err != nil {
		return nil, "", skipped, fmt.Errorf("checkpoint directory: %w", err)
	}
	for _, i := range slices.Backward(its) {
		if p := filepath.Join(path, checkpointName(i)); !slices.Contains(candidates, p) {
			candidates = append(candidates, p)
		}
	}
	for _, p := range candidates {
		c, err := ReadCheckpoint(p)
		if err == nil {
			return c, p, skipped, nil
		}
		skipped = append(skipped, err)
	}
	return nil, "", skipped, fmt.Errorf("no usable checkpoint in %s", path)
}

// hasCheckpoints reports whether dir holds checkpoints or a latest
// pointer.
func hasCheckpoints(dir string) (bool, error) {
	its, err := checkpointFiles(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	if len(its) > 0 {
		return true, nil
	}
	_, err = os.Stat(filepath.Join(dir, LatestName))
	return err == nil, nil
}
