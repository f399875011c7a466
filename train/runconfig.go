package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"

	"github.com/glowvoc/glowvoc/vocoder"
)

// RunConfig is how a training run proceeds: NVIDIA's train_config and the
// data settings of data_config beyond the mel front end, plus glowvoc's
// additions. Every checkpoint records it, so that a resumed run continues
// with the same settings.
type RunConfig struct {
	// TrainFiles and ValFiles are the training and validation corpora
	// (see corpus.List); ValFiles may be empty.
	TrainFiles string `json:"train_files"`
	ValFiles   string `json:"val_files,omitempty"`

	// LearningRate is Adam's base learning rate, Schedule how it changes
	// over the iterations.
	LearningRate float64  `json:"learning_rate"`
	Schedule     Schedule `json:"lr_schedule"`
	// Sigma is the σ of WaveGlowLoss.
	Sigma float64 `json:"sigma"`

	// BatchSize segments of SegmentLength samples make a batch; Seed
	// selects the clip order (with Shuffle) and the segment offsets.
	BatchSize     int    `json:"batch_size"`
	SegmentLength int    `json:"segment_length"`
	Seed          uint64 `json:"seed"`
	Shuffle       bool   `json:"shuffle"`
	// Epochs ends training once this many passes over the training files
	// are complete (0: no limit).
	Epochs int `json:"epochs"`

	// CheckpointEvery iterations a checkpoint is written; the last Keep
	// are kept. ValEvery iterations the validation NLL is computed (0:
	// never).
	CheckpointEvery int `json:"checkpoint_every"`
	Keep            int `json:"keep"`
	ValEvery        int `json:"val_every"`

	// Workers and Recompute are the Model's Options. The gradients are
	// summed in an order that depends on Workers, so a run resumes bit for
	// bit only with the same value.
	Workers   int  `json:"workers"`
	Recompute bool `json:"recompute"`
}

// DefaultRunConfig returns the settings of NVIDIA's published
// config.json (learning rate 1e-4, σ 1, batch 12, segments of 16000
// samples, seed 1234, a checkpoint every 2000 iterations, 100000 epochs),
// a constant learning rate (with 0.5 as the factor of a step schedule),
// shuffled clips, the last 3 checkpoints kept, validation at every
// checkpoint and 2 batch items computed at a time.
func DefaultRunConfig() RunConfig {
	return RunConfig{
		LearningRate:    1e-4,
		Schedule:        Schedule{Kind: ScheduleConstant, Gamma: 0.5},
		Sigma:           1,
		BatchSize:       12,
		SegmentLength:   16000,
		Seed:            1234,
		Shuffle:         true,
		Epochs:          100000,
		CheckpointEvery: 2000,
		Keep:            3,
		ValEvery:        2000,
		Workers:         DefaultOptions().Workers,
	}
}

// Validate reports whether r is usable for a model of configuration cfg.
func (r RunConfig) Validate(cfg vocoder.Config) error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(r.LearningRate > 0 && !math.IsInf(r.LearningRate, 0), "learning rate %v must be positive and finite", r.LearningRate)
	if err := r.Schedule.Validate(); err != nil {
		errs = append(errs, err)
	}
	check(r.Sigma > 0 && !math.IsInf(r.Sigma, 0), "sigma %v must be positive and finite", r.Sigma)
	check(r.BatchSize > 0, "batch size %d must be positive", r.BatchSize)
	check(r.SegmentLength > cfg.Mel.NFFT/2 && r.SegmentLength%cfg.Group == 0,
		"segment length %d must be a multiple of n_group %d above half the FFT size %d", r.SegmentLength, cfg.Group, cfg.Mel.NFFT/2)
	check(r.Epochs >= 0, "epochs %d must not be negative", r.Epochs)
	check(r.CheckpointEvery > 0, "checkpoint interval %d must be positive", r.CheckpointEvery)
	check(r.Keep > 0, "number of checkpoints kept %d must be positive", r.Keep)
	check(r.ValEvery >= 0, "validation interval %d must not be negative", r.ValEvery)
	check(r.Workers > 0, "workers %d must be positive", r.Workers)
	return errors.Join(errs...)
}

// ConfigFile is what NVIDIA's config.json says about a training run.
type ConfigFile struct {
	// Model is the topology (waveglow_config) and mel front end
	// (data_config).
	Model vocoder.Config
	// Run is DefaultRunConfig with the values the file sets:
	// train_config's learning_rate, sigma, batch_size, seed, epochs and
	// iters_per_checkpoint (also the validation interval), and
	// data_config's training_files and segment_length.
	Run RunConfig
	// OutputDirectory and CheckpointPath are train_config's
	// output_directory and checkpoint_path ("" when absent).
	OutputDirectory, CheckpointPath string
	// Ignored lists the settings that have no effect here (fp16_run,
	// with_tensorboard, dist_config), for a warning.
	Ignored []string
}

// nvidiaConfig is the part of config.json that vocoder.Config does not
// read.
type nvidiaConfig struct {
	Train *struct {
		FP16Run            bool     `json:"fp16_run"`
		OutputDirectory    string   `json:"output_directory"`
		Epochs             *int     `json:"epochs"`
		LearningRate       *float64 `json:"learning_rate"`
		Sigma              *float64 `json:"sigma"`
		ItersPerCheckpoint *int     `json:"iters_per_checkpoint"`
		BatchSize          *int     `json:"batch_size"`
		Seed               *uint64  `json:"seed"`
		CheckpointPath     string   `json:"checkpoint_path"`
		WithTensorboard    bool     `json:"with_tensorboard"`
	} `json:"train_config"`
	Data *struct {
		TrainingFiles string `json:"training_files"`
		SegmentLength *int   `json:"segment_length"`
	} `json:"data_config"`
	Dist json.RawMessage `json:"dist_config"`
}

// ReadConfigFile reads a training configuration in the layout of NVIDIA's
// config.json. Unknown keys are ignored.
func ReadConfigFile(path string) (*ConfigFile, error) {
	cfg, err := vocoder.ReadConfigFile(path)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var j nvidiaConfig
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	f := &ConfigFile{Model: cfg, Run: DefaultRunConfig()}
	if t := j.Train; t != nil {
		set(&f.Run.LearningRate, t.LearningRate)
		set(&f.Run.Sigma, t.Sigma)
		set(&f.Run.Seed, t.Seed)
		set(&f.Run.Epochs, t.Epochs)
		set(&f.Run.BatchSize, t.BatchSize)
		set(&f.Run.CheckpointEvery, t.ItersPerCheckpoint)
		set(&f.Run.ValEvery, t.ItersPerCheckpoint)
		f.OutputDirectory, f.CheckpointPath = t.OutputDirectory, t.CheckpointPath
		if t.FP16Run {
			f.Ignored = append(f.Ignored, "train_config.fp16_run (training runs in float32)")
		}
		if t.WithTensorboard {
			f.Ignored = append(f.Ignored, "train_config.with_tensorboard (see train.jsonl and loss.png instead)")
		}
	}
	if d := j.Data; d != nil {
		f.Run.TrainFiles = d.TrainingFiles
		set(&f.Run.SegmentLength, d.SegmentLength)
	}
	if len(j.Dist) > 0 {
		f.Ignored = append(f.Ignored, "dist_config (training runs on one machine)")
	}
	return f, nil
}

// set stores *src in *dst when the file gave a value (src is not nil).
func set[T any](dst, src *T) {
	if src != nil {
		*dst = *src
	}
}
