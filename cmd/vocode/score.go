package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"

	"github.com/glowvoc/glowvoc/vocoder"
)

var scoreCommand = &command{
	name:    "score",
	args:    "--model M [--sigma S] [--frames=false] IN.wav",
	summary: "print the exact log-likelihood of audio under the model as JSON",
	details: `
Score runs the flow forward on the input, conditioned on the input's own mel
spectrogram (the model's front end), and prints the exact log-likelihood as
a JSON object on standard output:

  loss                 NVIDIA's WaveGlowLoss
  log_s_total          Σ log s over all couplings
  log_det_w_total      Σ of the 1x1 convolutions' log-determinant terms
  nll_nats_per_sample  −log p(audio | mel) per sample in nats
  sigma                the latent standard deviation assumed
  samples, frames      the samples scored (trimmed to a multiple of n_group)
                       and the mel frames conditioning them
  frame_nll            the NLL per sample of each hop-long frame (omitted
                       with --frames=false)

The input is a WAV file at the model's sample rate or a float32 .npy array
of samples ([N] or [1, N]).`,
	setup: setupScore,
}

// scoreJSON is a vocoder.Score whose per-frame values may be left out.
type scoreJSON struct {
	*vocoder.Score
	FrameNLL []float64 `json:"frame_nll,omitempty"`
}

func setupScore(fs *flag.FlagSet) runFunc {
	var (
		mf     modelFlags
		model  = fs.String("model", "", modelUsage)
		sigma  = fs.Float64("sigma", 1, "standard deviation of the latent the likelihood assumes (1 as in training)")
		frames = fs.Bool("frames", true, "include the per-frame NLL (frame_nll)")
	)
	mf.register(fs)
	return func(ctx context.Context, e *env, args []string) error {
		if !(*sigma > 0) || math.IsInf(*sigma, 0) {
			return usagef("--sigma %v must be positive and finite", *sigma)
		}
		if len(args) != 1 {
			return usagef("want exactly one input, got %d", len(args))
		}
		m, err := loadModel(*model, &mf)
		if err != nil {
			return err
		}
		in, err := readAudio(args[0], m.Config().Mel.SampleRate, "the model's")
		if err != nil {
			return err
		}
		s, err := m.Score(ctx, in, *sigma)
		if err != nil {
			return fmt.Errorf("%s: score: %w", args[0], err)
		}
		out := scoreJSON{Score: s}
		if *frames {
			out.FrameNLL = s.FrameNLL
		}
		return printJSON(e, out)
	}
}

// printJSON writes v to stdout as indented JSON and a newline.
func printJSON(e *env, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	if _, err := fmt.Fprintf(e.stdout, "%s\n", b); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}
