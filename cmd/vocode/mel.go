package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/glowvoc/glowvoc/internal/npy"
	"github.com/glowvoc/glowvoc/melspec"
)

var melCommand = &command{
	name:    "mel",
	args:    "[flags] (-o OUT.npy | --out-dir DIR) IN.wav...",
	summary: "compute log-mel spectrograms of audio (Tacotron2 front end)",
	details: `
Mel writes the log-mel spectrogram of each input as a float32 .npy array of
shape [n_mels, frames], frames = samples/hop + 1, computed as WaveGlow's
mel2samp.py and Tacotron2 do: ln(max(mel filterbank · |STFT|, 1e-5)).

Inputs are WAV files, which must be at --sample-rate, or float32 .npy arrays
of samples ([N] or [1, N]) taken to be at --sample-rate. An input needs more
than n-fft/2 samples.`,
	setup: setupMel,
}

func setupMel(fs *flag.FlagSet) runFunc {
	mf := registerMelFlags(fs, melspec.DefaultConfig(), true)
	var out outputFlags
	out.register(fs, "npy")
	return func(ctx context.Context, e *env, args []string) error {
		cfg, _ := mf.apply(melspec.DefaultConfig())
		an, err := melspec.NewAnalyzer(cfg)
		if err != nil {
			return usagef("mel front end: %v", err)
		}
		b, err := out.plan(args)
		if err != nil {
			return err
		}
		return runBatch(ctx, e, b, func(ctx context.Context, j job) error {
			samples, err := readAudio(j.in, cfg.SampleRate, "--sample-rate")
			if err != nil {
				return err
			}
			mel, err := an.Mel(samples)
			if err != nil {
				return fmt.Errorf("%s: mel: %w", j.in, err)
			}
			return npy.WriteFile(j.out, npy.Array{Shape: []int{mel.NMels, mel.Frames}, Data: mel.Data})
		})
	}
}
