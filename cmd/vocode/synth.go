package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/glowvoc/glowvoc/melspec"
	"github.com/glowvoc/glowvoc/vocoder"
)

var synthCommand = &command{
	name:    "synth",
	args:    "--model M [flags] (-o OUT | --out-dir DIR) MEL.npy|MEL.pt...",
	summary: "synthesise speech from mel spectrograms",
	details: `
Synth turns each mel spectrogram (a .npy array, or a tensor saved with
torch.save as Tacotron2 users do, of shape [n_mels, frames] or
[1, n_mels, frames]; natural-log mels as "vocode mel" writes them) into
frames·hop samples of speech.

The latent noise is drawn from N(0, sigma²) with --seed; every input gets
the same seed, so a run is reproducible whatever the order of the inputs.
--noise instead supplies the latent z exactly as given, already scaled
(--sigma and --seed are then unused): a float32 .npy array in the forward
layout [n_group, samples/n_group] or [1, n_group, samples/n_group].

An output ending in .wav is 16-bit PCM at the model's sample rate, one
ending in .npy holds the float32 samples unclipped, shape [N].`,
	setup: setupSynth,
}

func setupSynth(fs *flag.FlagSet) runFunc {
	var (
		mf    modelFlags
		sf    synthFlags
		out   outputFlags
		model = fs.String("model", "", modelUsage)
		noise = fs.String("noise", "", "latent z `file` (.npy) to use instead of drawn noise")
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
		var z []float32
		if *noise != "" {
			if z, err = readNoise(*noise, m.Config().Group); err != nil {
				return fmt.Errorf("--noise: %w", err)
			}
		}
		rate := m.Config().Mel.SampleRate
		return runBatch(ctx, e, b, func(ctx context.Context, j job) error {
			mel, err := readMel(j.in)
			if err != nil {
				return err
			}
			samples, err := sf.synthesize(ctx, m, mel, z)
			if err != nil {
				return fmt.Errorf("%s: %w", j.in, err)
			}
			return writeAudio(j.out, samples, rate)
		})
	}
}

// synthesize runs the model on mel with the settings of s, or with the
// latent z if it is not nil, and applies the denoiser if s asks for it.
func (s *synthFlags) synthesize(ctx context.Context, m *vocoder.Model, mel melspec.Spectrogram, z []float32) ([]float32, error) {
	samples, err := m.Synthesize(ctx, mel, vocoder.SynthesizeOptions{Sigma: s.sigma, Seed: s.seed, Noise: z})
	if err != nil {
		return nil, fmt.Errorf("synthesize: %w", err)
	}
	if s.denoise == 0 {
		return samples, nil
	}
	samples, err = m.Denoise(ctx, samples, s.denoise)
	if err != nil {
		return nil, fmt.Errorf("denoise: %w", err)
	}
	return samples, nil
}
