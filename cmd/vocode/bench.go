package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/glowvoc/glowvoc/melspec"
	"github.com/glowvoc/glowvoc/train"
	"github.com/glowvoc/glowvoc/vocoder"
)

var benchCommand = &command{
	name:    "bench",
	args:    "(--model M | --config C.json) [--frames 172] [--threads 1,2] [--count 3] [--cpuprofile FILE]",
	summary: "measure synthesis speed on this machine",
	details: `
Bench times the synthesis of a --frames mel (172 frames = 2 s at 22.05 kHz)
with --model, or with random weights of realistic scale for the topology of
--config (NVIDIA's config.json layout), once per thread count in --threads
(GOMAXPROCS), after one warm-up run. It prints, per thread count, the median
of --count runs: seconds, GFLOP/s (the FLOPs the model executes over the
time), seconds of
compute per second of audio, and how many times faster than real time.`,
	setup: setupBench,
}

func setupBench(fs *flag.FlagSet) runFunc {
	var mf modelFlags
	model := fs.String("model", "", "model `file` to measure (or --config for random weights)")
	fs.StringVar(&mf.config, "config", "", "NVIDIA `config.json`: with --model, the configuration of a file that records none; alone, the topology to measure with random weights")
	frames := fs.Int("frames", 172, "mel `frames` per synthesis")
	threads := fs.String("threads", "1,2", "comma-separated thread counts (GOMAXPROCS) to measure")
	count := fs.Int("count", 3, "timed runs per thread count (the median is printed)")
	seed := fs.Uint64("seed", 1, "seed of the random weights and the noise")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the timed runs to `file` (read it with go tool pprof)")
	return func(ctx context.Context, e *env, args []string) error {
		if len(args) != 0 {
			return usagef("bench takes no arguments")
		}
		if *frames < 1 || *count < 1 {
			return usagef("--frames and --count must be positive")
		}
		var procs []int
		for _, s := range strings.Split(*threads, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 1 {
				return usagef("--threads %q: want positive integers separated by commas", *threads)
			}
			procs = append(procs, n)
		}
		m, name, err := benchModel(*model, &mf, *seed)
		if err != nil {
			return err
		}
		cfg := m.Config()
		mel := melspec.Spectrogram{NMels: cfg.NMels, Frames: *frames, Data: make([]float32, cfg.NMels**frames)}
		rng := rand.New(rand.NewPCG(*seed, 1))
		for i := range mel.Data {
			mel.Data[i] = float32(-8 + 6*rng.Float64()) // log-mel values of speech
		}
		audioSec := float64(m.Samples(*frames)) / float64(cfg.Mel.SampleRate)
		flops := m.InferenceFLOPs(*frames)
		fmt.Fprintf(e.stdout, "%s: %d flows, WN %d layers × %d channels, %d frames = %.3f s of audio, %.1f GFLOP per synthesis",
			name, cfg.Flows, cfg.WN.Layers, cfg.WN.Channels, *frames, audioSec, flops/1e9)
		if nominal := cfg.InferenceFLOPs(*frames); nominal != flops {
			fmt.Fprintf(e.stdout, " (%.1f as NVIDIA's code computes it; fused conditioning)", nominal/1e9)
		}
		fmt.Fprintln(e.stdout)
		if *cpuprofile != "" {
			f, err := os.Create(*cpuprofile)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return fmt.Errorf("cpu profile: %w", err)
			}
			defer pprof.StopCPUProfile()
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "threads\tseconds\tGFLOP/s\ts per audio-s\t× real time\t")
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
		for _, p := range procs {
			runtime.GOMAXPROCS(p)
			var times []float64
			for i := 0; i <= *count; i++ { // run 0 warms up
				start := time.Now()
				if _, err := m.Synthesize(ctx, mel, vocoder.SynthesizeOptions{Sigma: 0.6, Seed: *seed}); err != nil {
					return err
				}
				if i > 0 {
					times = append(times, time.Since(start).Seconds())
				}
			}
			slices.Sort(times)
			t := times[len(times)/2]
			fmt.Fprintf(tw, "%d\t%.3f\t%.1f\t%.3f\t%.1f\t\n", p, t, flops/t/1e9, t/audioSec, audioSec/t)
		}
		return tw.Flush()
	}
}

// benchModel loads --model, or builds a model with NVIDIA's initialisation
// for --config whose couplings are perturbed away from the identity (the
// zero-initialised WN.end layers get N(0, 0.02) weights, as in the reference
// fixtures) so that every flow does real work.
func benchModel(model string, mf *modelFlags, seed uint64) (*vocoder.Model, string, error) {
	if model != "" {
		m, err := loadModel(model, mf)
		return m, model, err
	}
	if mf.config == "" {
		return nil, "", usagef("give --model or --config")
	}
	cfg, err := vocoder.ReadConfigFile(mf.config)
	if err != nil {
		return nil, "", err
	}
	tm, err := train.New(cfg, seed)
	if err != nil {
		return nil, "", err
	}
	sd := tm.StateDict()
	rng := rand.New(rand.NewPCG(seed, 2))
	for name, t := range sd {
		if strings.HasSuffix(name, ".end.weight") || strings.HasSuffix(name, ".end.bias") {
			for i := range t.Data {
				t.Data[i] = float32(0.02 * rng.NormFloat64())
			}
		}
	}
	m, err := vocoder.FromStateDict(sd, vocoder.LoadOptions{Config: &cfg})
	return m, "random weights for " + mf.config, err
}
