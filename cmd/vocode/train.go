package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/glowvoc/glowvoc/internal/torchfile"
	"github.com/glowvoc/glowvoc/train"
)

var trainCommand = &command{
	name:    "train",
	args:    "--config C.json --train-files LIST --out DIR [flags] | --resume DIR|FILE [flags]",
	summary: "train a model on a speech corpus, or continue training one",
	details: `
Train trains a WaveGlow model on a corpus of WAV files, as NVIDIA's train.py
does: random segment_length segments of the clips (zero-padded when short)
with their mel spectrograms, WaveGlowLoss with the config's sigma, Adam.

The corpus (--train-files, --val-files) is an NVIDIA filelist (one WAV path
per line), a directory of WAV files or an LJSpeech-style metadata.csv with
its wavs/ directory. Every clip must be at the config's sampling_rate.

--config is NVIDIA's config.json: waveglow_config is the topology,
data_config the mel front end, training_files and segment_length, and
train_config the learning_rate, sigma, batch_size, seed, epochs and
iters_per_checkpoint (the checkpoint and validation interval);
output_directory and checkpoint_path are the defaults of --out and
--resume. Flags override the file. A new run starts from random weights
(seeded by --seed), or from the weights of --init-from MODEL to fine-tune.

The output directory receives checkpoints ckpt-<iteration>.safetensors
(weights, Adam state, iteration, data position and settings; the last
--keep are kept) and the file "latest" naming the newest complete one,
train.jsonl (one JSON record per iteration: iteration, epoch, loss,
grad_norm, lr, seconds, time, skipped and, when computed, val_nll and
val_loss)
and loss.png (the loss curve, redrawn at every checkpoint). Each is
written atomically: killing the run loses at most the iterations since
the last checkpoint. An interrupt (Ctrl-C) writes a checkpoint and stops.

--resume DIR continues the run whose checkpoints DIR holds (or --resume
FILE from that checkpoint file) exactly where it stopped, bit for bit,
with its recorded settings; only the flags given override them, and the
output directory defaults to DIR. --resume checkpoints/waveglow_N (a
PyTorch file written by NVIDIA's train.py) continues that run: its
iteration count and Adam moments (needs --config). A step whose loss or gradient is not finite is skipped, leaving
the weights unchanged, and reported with its files.

The validation NLL is −log p(audio | mel) in nats per sample over the
--val-files clips, each scored whole; val_loss is the same minus
½·ln(2π·sigma²), on the scale of the training loss.

The learning-rate schedule (--lr-schedule) is constant (NVIDIA's), cosine
(from --lr down to --lr-min over --lr-decay-steps iterations) or step (times
--lr-gamma every --lr-decay-steps iterations), after --warmup iterations
of linear warmup from --lr/warmup.

--export OUT.safetensors writes the trained model for synth and serve
(weight norm folded) at the end; with --steps 0 it only exports.`,
	setup: setupTrain,
}

// trainFlags are the flags of train.
type trainFlags struct {
	fs                          *flag.FlagSet
	config, out, resume, export string
	initFrom                    string
	steps                       int64
	vals                        train.RunConfig // values of the run flags
}

func setupTrain(fs *flag.FlagSet) runFunc {
	f := &trainFlags{fs: fs}
	def := train.DefaultRunConfig()
	fs.StringVar(&f.config, "config", "", "NVIDIA `config.json` of the run (required unless resuming a glowvoc checkpoint)")
	fs.StringVar(&f.vals.TrainFiles, "train-files", "", "training corpus: a filelist, a directory of WAV files or a metadata.csv (default data_config.training_files)")
	fs.StringVar(&f.vals.ValFiles, "val-files", "", "validation corpus, like --train-files (default none: no validation)")
	fs.StringVar(&f.out, "out", "", "output `directory` for checkpoints, train.jsonl and loss.png (default the --resume directory, else train_config.output_directory)")
	fs.StringVar(&f.resume, "resume", "", "continue the run of a checkpoint `DIR|FILE` (glowvoc .safetensors or NVIDIA .pt)")
	fs.StringVar(&f.initFrom, "init-from", "", "start a new run from the weights of this model `file` (.safetensors, .pt or .npz)")
	fs.StringVar(&f.export, "export", "", "at the end, write the model for inference to this `file` (.safetensors)")
	fs.Int64Var(&f.steps, "steps", -1, "iterations to train in this invocation (-1: until the epoch limit; 0: none, e.g. to --export)")
	fs.IntVar(&f.vals.Epochs, "epochs", def.Epochs, "stop after this many passes over the training files (0: no limit)")
	fs.IntVar(&f.vals.BatchSize, "batch-size", def.BatchSize, "segments per batch")
	fs.IntVar(&f.vals.SegmentLength, "segment-length", def.SegmentLength, "samples per segment (a multiple of n_group)")
	fs.Float64Var(&f.vals.LearningRate, "lr", def.LearningRate, "Adam's (base) learning rate")
	fs.StringVar(&f.vals.Schedule.Kind, "lr-schedule", def.Schedule.Kind, "learning-rate schedule: constant, cosine or step")
	fs.Int64Var(&f.vals.Schedule.Warmup, "warmup", 0, "iterations of linear learning-rate warmup")
	fs.Int64Var(&f.vals.Schedule.DecaySteps, "lr-decay-steps", 0, "cosine: iterations from --lr to --lr-min; step: iterations between decays")
	fs.Float64Var(&f.vals.Schedule.Gamma, "lr-gamma", def.Schedule.Gamma, "step: factor applied to the learning rate every --lr-decay-steps")
	fs.Float64Var(&f.vals.Schedule.MinLR, "lr-min", 0, "cosine: final learning rate")
	fs.Float64Var(&f.vals.Sigma, "sigma", def.Sigma, "sigma of WaveGlowLoss")
	fs.Uint64Var(&f.vals.Seed, "seed", def.Seed, "seed of the initial weights, the clip order and the segment offsets")
	fs.BoolVar(&f.vals.Shuffle, "shuffle", def.Shuffle, "shuffle the clips every epoch (false: filelist order)")
	fs.IntVar(&f.vals.CheckpointEvery, "checkpoint-every", def.CheckpointEvery, "iterations between checkpoints")
	fs.IntVar(&f.vals.ValEvery, "val-every", def.ValEvery, "iterations between validations (0: never)")
	fs.IntVar(&f.vals.Keep, "keep", def.Keep, "checkpoints to keep")
	fs.IntVar(&f.vals.Workers, "workers", def.Workers, "batch items computed concurrently (a resumed run repeats its results bit for bit only with the same value)")
	fs.BoolVar(&f.vals.Recompute, "recompute", def.Recompute, "recompute activations in the backward pass: memory independent of the number of flows, at the cost of more time")
	return f.execute
}

// execute runs the train command.
func (f *trainFlags) execute(ctx context.Context, e *env, args []string) error {
	if len(args) != 0 {
		return usagef("train takes no arguments, got %q", args)
	}
	if f.resume != "" && f.initFrom != "" {
		return usagef("--resume and --init-from are mutually exclusive")
	}
	if f.steps == 0 && f.export == "" {
		return usagef("--steps 0 does nothing without --export")
	}
	if f.export != "" && strings.ToLower(filepath.Ext(f.export)) != ".safetensors" {
		return usagef("--export %s: unsupported extension (want .safetensors)", f.export)
	}
	if f.steps < -1 {
		return usagef("--steps %d must be -1 or more", f.steps)
	}
	var cf *train.ConfigFile
	if f.config != "" {
		var err error
		if cf, err = train.ReadConfigFile(f.config); err != nil {
			return fmt.Errorf("read config: %w", err)
		}
		for _, s := range cf.Ignored {
			e.warnf("config %s: ignoring %s", f.config, s)
		}
	}
	ck, dir, err := f.start(e, cf)
	if err != nil {
		return err
	}
	if f.steps != 0 {
		if ck, err = f.train(ctx, e, ck, dir); err != nil {
			return err
		}
	}
	if f.export != "" {
		vm, err := ck.Model.ExportInference()
		if err != nil {
			return err
		}
		if err := vm.Save(f.export); err != nil {
			return err
		}
		e.warnf("iteration %d: exported the model to %s", ck.Iteration, f.export)
	}
	return nil
}

// start returns the state the run begins from and its output directory
// (the default --out).
func (f *trainFlags) start(e *env, cf *train.ConfigFile) (*train.Checkpoint, string, error) {
	resume, dir := f.resume, f.out
	if resume == "" && f.initFrom == "" && cf != nil {
		resume = cf.CheckpointPath
	}
	if dir == "" && cf != nil {
		dir = cf.OutputDirectory
	}
	if resume == "" {
		if cf == nil {
			return nil, "", usagef("--config is required for a new run")
		}
		run, err := f.apply(cf.Run)
		if err != nil {
			return nil, "", err
		}
		m, err := f.initialModel(cf, run.Seed)
		if err != nil {
			return nil, "", err
		}
		return &train.Checkpoint{Model: m, Run: run}, dir, nil
	}
	if train.IsPyTorchFile(resume) {
		if cf == nil {
			return nil, "", usagef("--resume of a PyTorch checkpoint needs --config")
		}
		tc, err := torchfile.Load(resume)
		if err != nil {
			return nil, "", err
		}
		run, err := f.apply(cf.Run)
		if err != nil {
			return nil, "", err
		}
		ck, err := train.FromTorch(tc, cf.Model, run)
		if err != nil {
			return nil, "", fmt.Errorf("resume %s: %w", resume, err)
		}
		e.warnf("continuing the PyTorch run of %s after iteration %d", resume, ck.Iteration)
		return ck, dir, nil
	}
	ck, file, skipped, err := train.OpenCheckpoint(resume)
	for _, s := range skipped {
		e.warnf("skipping an unusable checkpoint: %v", s)
	}
	if err != nil {
		return nil, "", err
	}
	if cf != nil && cf.Model != ck.Model.Config() {
		return nil, "", fmt.Errorf("--config %s describes another model or front end than the checkpoint %s", f.config, file)
	}
	if ck.Run, err = f.apply(ck.Run); err != nil {
		return nil, "", err
	}
	if f.out == "" {
		dir = filepath.Dir(file)
	}
	e.warnf("continuing from %s after iteration %d", file, ck.Iteration)
	return ck, dir, nil
}

// initialModel returns the model a new run starts from.
func (f *trainFlags) initialModel(cf *train.ConfigFile, seed uint64) (*train.Model, error) {
	if f.initFrom != "" {
		return train.LoadModelFile(f.initFrom, cf.Model)
	}
	return train.New(cf.Model, seed)
}

// apply returns base with the run flags given on the command line, and
// the corpus paths made absolute (a checkpoint records them).
func (f *trainFlags) apply(base train.RunConfig) (train.RunConfig, error) {
	v := f.vals
	f.fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "train-files":
			base.TrainFiles = v.TrainFiles
		case "val-files":
			base.ValFiles = v.ValFiles
		case "epochs":
			base.Epochs = v.Epochs
		case "batch-size":
			base.BatchSize = v.BatchSize
		case "segment-length":
			base.SegmentLength = v.SegmentLength
		case "lr":
			base.LearningRate = v.LearningRate
		case "lr-schedule":
			base.Schedule.Kind = v.Schedule.Kind
		case "warmup":
			base.Schedule.Warmup = v.Schedule.Warmup
		case "lr-decay-steps":
			base.Schedule.DecaySteps = v.Schedule.DecaySteps
		case "lr-gamma":
			base.Schedule.Gamma = v.Schedule.Gamma
		case "lr-min":
			base.Schedule.MinLR = v.Schedule.MinLR
		case "sigma":
			base.Sigma = v.Sigma
		case "seed":
			base.Seed = v.Seed
		case "shuffle":
			base.Shuffle = v.Shuffle
		case "checkpoint-every":
			base.CheckpointEvery = v.CheckpointEvery
		case "val-every":
			base.ValEvery = v.ValEvery
		case "keep":
			base.Keep = v.Keep
		case "workers":
			base.Workers = v.Workers
		case "recompute":
			base.Recompute = v.Recompute
		}
	})
	for _, p := range []*string{&base.TrainFiles, &base.ValFiles} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return train.RunConfig{}, err
		}
		*p = abs
	}
	return base, nil
}

// train runs the training session of ck in dir and returns the state it
// ends in.
func (f *trainFlags) train(ctx context.Context, e *env, ck *train.Checkpoint, dir string) (*train.Checkpoint, error) {
	if dir == "" {
		return nil, usagef("--out DIR is required")
	}
	if err := ck.Run.Validate(ck.Model.Config()); err != nil {
		return nil, usagef("%v", err)
	}
	if ck.Run.TrainFiles == "" {
		return nil, usagef("--train-files is required (the config names no training_files)")
	}
	s, err := train.NewSession(ck, dir)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	var bar *progressbar.ProgressBar
	if e.progress {
		bar = progressbar.NewOptions64(f.steps,
			progressbar.OptionSetWriter(e.stderr),
			progressbar.OptionSetDescription("train"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("it"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetRenderBlankState(true),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		defer func() { _ = bar.Clear() }() // only cosmetic
	}
	s.Logf = func(format string, args ...any) {
		if bar != nil {
			_ = bar.Clear() // only cosmetic: the bar redraws on Add
		}
		e.warnf(format, args...)
	}
	s.OnStep = func(r train.Record) {
		if bar != nil {
			bar.Describe(fmt.Sprintf("iteration %d, loss %.4f", r.Iteration, float64(r.Loss)))
			_ = bar.Add(1) // only cosmetic
		}
	}
	if err := s.Train(ctx, f.steps); err != nil {
		return nil, err
	}
	return s.Checkpoint(), nil
}
