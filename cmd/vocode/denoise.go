package main

import (
	"context"
	"flag"
	"fmt"
)

var denoiseCommand = &command{
	name:    "denoise",
	args:    "--model M [--strength S] (-o OUT | --out-dir DIR) IN.wav...",
	summary: "remove the model's constant bias hiss from audio",
	details: `
Denoise applies the model's denoiser (NVIDIA's denoiser.py, mode "zeros") to
existing audio: strength times the spectrum of the model's output for an
all-zero mel is subtracted from every STFT frame's magnitude, and the audio
is resynthesised with its phase. N input samples become floor(N/256)·256.

Inputs are WAV files at the model's sample rate or float32 .npy arrays of
samples ([N] or [1, N]). An output ending in .wav is 16-bit PCM, one ending
in .npy holds the float32 samples unclipped.`,
	setup: setupDenoise,
}

func setupDenoise(fs *flag.FlagSet) runFunc {
	var (
		mf       modelFlags
		out      outputFlags
		model    = fs.String("model", "", modelUsage)
		strength = fs.Float64("strength", 0.1, "denoiser strength (NVIDIA uses 0.01 to 0.1)")
	)
	mf.register(fs)
	out.register(fs, "wav", "npy")
	return func(ctx context.Context, e *env, args []string) error {
		if err := checkNonNegative("--strength", *strength); err != nil {
			return err
		}
		b, err := out.plan(args)
		if err != nil {
			return err
		}
		m, err := loadModel(*model, &mf)
		if err != nil {
			return err
		}
		return runBatch(ctx, e, b, audioJob(m, func(ctx context.Context, in []float32) ([]float32, error) {
			samples, err := m.Denoise(ctx, in, *strength)
			if err != nil {
				return nil, fmt.Errorf("denoise: %w", err)
			}
			return samples, nil
		}))
	}
}
