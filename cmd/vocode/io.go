package main

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strings"

	"github.com/glowvoc/glowvoc/audio"
	"github.com/glowvoc/glowvoc/internal/npy"
	"github.com/glowvoc/glowvoc/internal/torchfile"
	"github.com/glowvoc/glowvoc/melspec"
	"github.com/glowvoc/glowvoc/vocoder"
)

// readMel reads a mel spectrogram of shape [n_mels, frames] or
// [1, n_mels, frames] from a .npy file or from a PyTorch file holding one
// saved tensor (.pt, .pth: what Tacotron2 users write with torch.save), and
// checks that every value is finite. Its errors name path.
func readMel(path string) (melspec.Spectrogram, error) {
	var a npy.Array
	switch strings.ToLower(filepath.Ext(path)) {
	case ".pt", ".pth":
		t, err := torchfile.LoadTensor(path)
		if err != nil {
			return melspec.Spectrogram{}, err
		}
		a = npy.Array{Shape: t.Shape, Data: t.Data}
	default:
		var err error
		if a, err = npy.ReadFile(path); err != nil {
			return melspec.Spectrogram{}, err
		}
	}
	shape := dropBatch(a.Shape, 3)
	if len(shape) != 2 {
		return melspec.Spectrogram{}, fmt.Errorf("%s: mel has shape %s, want [n_mels, frames] or [1, n_mels, frames]", path, formatShape(a.Shape))
	}
	s := melspec.Spectrogram{NMels: shape[0], Frames: shape[1], Data: a.Data}
	if err := s.Validate(); err != nil {
		return melspec.Spectrogram{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// readNoise reads a latent z for a model with n_group group from a float32
// .npy file of shape [group, columns] or [1, group, columns] and returns
// it in the forward layout Synthesize takes. Its errors name path.
func readNoise(path string, group int) ([]float32, error) {
	a, err := npy.ReadFile(path)
	if err != nil {
		return nil, err
	}
	shape := dropBatch(a.Shape, 3)
	if len(shape) != 2 || shape[0] != group {
		return nil, fmt.Errorf("%s: noise has shape %s, want [%d, samples/%[3]d] or [1, %[3]d, samples/%[3]d] (the model's n_group is %[3]d)", path, formatShape(a.Shape), group)
	}
	return a.Data, nil
}

// readAudio reads mono audio from a WAV file, which must be at rate Hz
// (what names the expected rate in the error), or from a float32 .npy
// array of samples of shape [N] or [1, N], taken to be at rate Hz. Its
// errors name path.
func readAudio(path string, rate int, what string) ([]float32, error) {
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".wav":
		clip, err := audio.DecodeFile(path)
		if err != nil {
			return nil, err
		}
		if clip.SampleRate != rate {
			return nil, fmt.Errorf("%s: sample rate %d Hz differs from %s %d Hz", path, clip.SampleRate, what, rate)
		}
		return clip.Samples, nil
	case ".npy":
		a, err := npy.ReadFile(path)
		if err != nil {
			return nil, err
		}
		if shape := dropBatch(a.Shape, 2); len(shape) != 1 {
			return nil, fmt.Errorf("%s: audio has shape %s, want [samples] or [1, samples]", path, formatShape(a.Shape))
		}
		for i, v := range a.Data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("%s: audio sample %d is %v", path, i, v)
			}
		}
		return a.Data, nil
	default:
		return nil, fmt.Errorf("%s: unsupported audio file extension %q (want .wav or .npy)", path, ext)
	}
}

// audioJob returns the work of a batch job that turns audio into audio
// with m: it reads the job's input at the model's sample rate, applies f
// and writes the result at that rate. The errors of f are prefixed with
// the input's path.
func audioJob(m *vocoder.Model, f func(ctx context.Context, in []float32) ([]float32, error)) func(context.Context, job) error {
	rate := m.Config().Mel.SampleRate
	return func(ctx context.Context, j job) error {
		in, err := readAudio(j.in, rate, "the model's")
		if err != nil {
			return err
		}
		out, err := f(ctx, in)
		if err != nil {
			return fmt.Errorf("%s: %w", j.in, err)
		}
		return writeAudio(j.out, out, rate)
	}
}

// writeAudio writes samples atomically to path: a 16-bit PCM WAV file at
// rate Hz if path ends in .wav, the float32 samples unclipped as a .npy
// array of shape [N] if it ends in .npy. Its errors name path.
func writeAudio(path string, samples []float32, rate int) error {
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".wav":
		return audio.WriteFile(path, audio.Clip{Samples: samples, SampleRate: rate}, audio.PCM16)
	case ".npy":
		return npy.WriteFile(path, npy.Array{Shape: []int{len(samples)}, Data: samples})
	default:
		return fmt.Errorf("%s: unsupported audio file extension %q (want .wav or .npy)", path, ext)
	}
}

// dropBatch returns shape without its leading dimension if shape has rank
// dimensions and the first is 1 (a batch of one), else shape itself.
func dropBatch(shape []int, rank int) []int {
	if len(shape) == rank && shape[0] == 1 {
		return shape[1:]
	}
	return shape
}

// formatShape formats a shape as NumPy and the reference README write it:
// [1, 80, 94].
func formatShape(shape []int) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
