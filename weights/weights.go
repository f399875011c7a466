// Package weights holds glowvoc's bundled default model, embedded in the
// binaries with go:embed so that serve and vocode work with no download.
//
// The model is the "small" topology (80 mels, 8 flows, n_group 8, WN 4
// layers × 32 channels) trained with `vocode train` on a synthetic espeak-ng
// corpus (scripts/espeak-corpus.sh); README.md in this directory says how,
// and what to expect of it. It demonstrates the whole pipeline; for
// natural speech, serve a model trained on real recordings.
package weights

import (
	"bytes"
	_ "embed"
	"fmt"

	"github.com/glowvoc/glowvoc/vocoder"
)

//go:embed default.safetensors
var defaultModel []byte

// Name identifies the bundled model, e.g. in the service's /v1/models.
const Name = "glowvoc-small-espeak"

// Default decodes the bundled model. Each call returns a new Model.
func Default() (*vocoder.Model, error) {
	return vocoder.Read(bytes.NewReader(defaultModel), int64(len(defaultModel)))
}

// Load returns the model at path, or the bundled model when path is
// empty. configPath, if not empty, is an NVIDIA config.json for a file
// that records no configuration (.pt, .npz); the tensors are checked
// against it.
func Load(path, configPath string) (*vocoder.Model, error) {
	if path == "" {
		m, err := Default()
		if err != nil {
			return nil, fmt.Errorf("bundled model: %w", err)
		}
		return m, nil
	}
	var opts vocoder.LoadOptions
	if configPath != "" {
		cfg, err := vocoder.ReadConfigFile(configPath)
		if err != nil {
			return nil, fmt.Errorf("model config: %w", err)
		}
		opts.Config = &cfg
	}
	return vocoder.Load(path, opts)
}
