package train

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// nvidiaConfigJSON is NVIDIA's published config.json.
const nvidiaConfigJSON = `{
    "train_config": {
        "fp16_run": true,
        "output_directory": "checkpoints",
        "epochs": 100000,
        "learning_rate": 1e-4,
        "sigma": 1.0,
        "iters_per_checkpoint": 2000,
        "batch_size": 12,
        "seed": 1234,
        "checkpoint_path": "",
        "with_tensorboard": false
    },
    "data_config": {
        "training_files": "train_files.txt",
        "segment_length": 16000,
        "sampling_rate": 22050,
        "filter_length": 1024,
        "hop_length": 256,
        "win_length": 1024,
        "mel_fmin": 0.0,
        "mel_fmax": 8000.0
    },
    "dist_config": {
        "dist_backend": "nccl",
        "dist_url": "tcp://localhost:54321"
    },
    "waveglow_config": {
        "n_mel_channels": 80,
        "n_flows": 12,
        "n_group": 8,
        "n_early_every": 4,
        "n_early_size": 2,
        "WN_config": {
            "n_layers": 8,
            "n_channels": 256,
            "kernel_size": 3
        }
    }
}`

func TestReadConfigFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	nvidia := filepath.Join(dir, "config.json")
	custom := filepath.Join(dir, "custom.json")
	for path, text := range map[string]string{
		nvidia: nvidiaConfigJSON,
		custom: strings.NewReplacer(`"learning_rate": 1e-4`, `"learning_rate": 3e-4`, `"batch_size": 12`, `"batch_size": 4`,
			`"seed": 1234`, `"seed": 7`, `"iters_per_checkpoint": 2000`, `"iters_per_checkpoint": 500`, `"epochs": 100000`, `"epochs": 20`,
			`"sigma": 1.0`, `"sigma": 0.8`, `"segment_length": 16000`, `"segment_length": 8000`, `"fp16_run": true`, `"fp16_run": false`,
			`"checkpoint_path": ""`, `"checkpoint_path": "checkpoints/waveglow_10000"`).Replace(nvidiaConfigJSON),
	} {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	withFiles := func(r RunConfig, f string) RunConfig { r.TrainFiles = f; return r }
	tests := []struct {
		name     string
		path     string
		run      RunConfig
		out, ck  string
		nIgnored int
	}{
		{"NVIDIA's config.json", nvidia, withFiles(DefaultRunConfig(), "train_files.txt"), "checkpoints", "", 2},
		{"custom", custom, func() RunConfig {
			r := withFiles(DefaultRunConfig(), "train_files.txt")
			r.LearningRate, r.BatchSize, r.Seed, r.CheckpointEvery, r.ValEvery, r.Epochs, r.Sigma, r.SegmentLength = 3e-4, 4, 7, 500, 500, 20, 0.8, 8000
			return r
		}(), "checkpoints", "checkpoints/waveglow_10000", 1},
		{"tiny_mel8 (train_config without iters_per_checkpoint)", filepath.Join(refDir("tiny_mel8"), "config.json"), func() RunConfig {
			r := withFiles(DefaultRunConfig(), "train_files.txt")
			r.BatchSize, r.Seed, r.SegmentLength = 2, 1003, 4000
			return r
		}(), "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ReadConfigFile(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if f.Run != tt.run {
				t.Errorf("run %+v\nwant %+v", f.Run, tt.run)
			}
			if f.OutputDirectory != tt.out || f.CheckpointPath != tt.ck || len(f.Ignored) != tt.nIgnored {
				t.Errorf("output directory %q, checkpoint path %q, ignored %q", f.OutputDirectory, f.CheckpointPath, f.Ignored)
			}
			if err := f.Run.Validate(f.Model); err != nil {
				t.Error(err)
			}
		})
	}
	if f, err := ReadConfigFile(nvidia); err != nil || f.Model.WN.Channels != 256 || f.Model.Flows != 12 {
		t.Errorf("model %+v, %v", f.Model, err)
	}
	if _, err := ReadConfigFile(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("missing file: no error")
	}
}
