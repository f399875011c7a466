package main

import (
	"context"
	"flag"
	"path/filepath"
	"strings"

	"github.com/glowvoc/glowvoc/melspec"
)

var convertCommand = &command{
	name:    "convert",
	args:    "[--config C.json] [mel flags] -o OUT.safetensors IN.pt|IN.npz",
	summary: "convert an NVIDIA state dict to a self-describing .safetensors model",
	details: `
Convert reads a WaveGlow model in NVIDIA's naming (a PyTorch training
checkpoint or state dict .pt in the zip or legacy format, or an .npz
archive; with or without weight norm, current or pre-2019 layout) and writes
it as a glowvoc .safetensors model that records its topology and mel front
end.

The topology is inferred from the tensor shapes and checked against
--config if given. The mel front end is the config's data_config, or
WaveGlow's defaults (22050 Hz, n-fft 1024, hop 256, win 1024, 0 to 8000 Hz)
without --config; the mel flags given override single values of it.`,
	setup: setupConvert,
}

func setupConvert(fs *flag.FlagSet) runFunc {
	mf := modelFlags{mel: registerMelFlags(fs, melspec.Config{}, false)}
	mf.register(fs)
	out := fs.String("o", "", "output model `file` (.safetensors); required")
	return func(ctx context.Context, e *env, args []string) error {
		if len(args) != 1 {
			return usagef("want exactly one input model, got %d", len(args))
		}
		if *out == "" {
			return usagef("-o OUT.safetensors is required")
		}
		if ext := strings.ToLower(filepath.Ext(*out)); ext != ".safetensors" {
			return usagef("output %s: unsupported extension (want .safetensors)", *out)
		}
		m, err := loadModel(args[0], &mf)
		if err != nil {
			return err
		}
		return m.Save(*out)
	}
}
