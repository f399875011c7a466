package main

import (
	"context"
	"flag"
	"fmt"
)

var resynthCommand = &command{
	name:    "resynth",
	args:    "--model M [flags] (-o OUT | --out-dir DIR) IN.wav...",
	summary: "analyse audio with the model's front end and synthesise it again",
	details: `
Resynth computes the mel spectrogram of each input with the model's own
front end and synthesises speech from it, like "vocode mel" followed by
"vocode synth": N input samples become (N/hop + 1)·hop output samples.

Inputs are WAV files at the model's sample rate or float32 .npy arrays of
samples ([N] or [1, N]). An output ending in .wav is 16-bit PCM, one ending
in .npy holds the float32 samples unclipped. Every input gets the same
--seed.`,
	setup: setupResynth,
}

func setupResynth(fs *flag.FlagSet) runFunc {
	var (
		mf    modelFlags
		sf    synthFlags
		out   outputFlags
		model = fs.String("model", "", modelUsage)
	)
	mf.register(fs)
	sf.register(fs)
	out.register(fs, "wav", "npy")
	return func(ctx context.Context, e *env, args []string) error {
		if err := sf.check(); err != nil {
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
			mel, err := m.Analyzer().Mel(in)
			if err != nil {
				return nil, fmt.Errorf("mel: %w", err)
			}
			return sf.synthesize(ctx, m, mel, nil)
		}))
	}
}
