package vocoder

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"testing"

	"github.com/glowvoc/glowvoc/melspec"
)

// syntheticMel returns a frames-long mel for m with a fixed, log-mel-like
// pattern, of any length (testMel is bounded by its fixture).
func syntheticMel(m *Model, frames int) melspec.Spectrogram {
	mel := melspec.Spectrogram{NMels: m.cfg.NMels, Frames: frames, Data: make([]float32, m.cfg.NMels*frames)}
	for i := range mel.Data {
		mel.Data[i] = -6 + float32(i%13)/4
	}
	return mel
}

// TestAppendSynthesis checks that AppendSynthesis appends Synthesize's
// audio after dst's contents, whether dst has room or must grow, in one
// pass and in chunks, and leaves dst's length alone on error.
func TestAppendSynthesis(t *testing.T) {
	chunked := privateModel(t, "tiny")
	chunked.maxWholeFrames = 20
	opts := SynthesizeOptions{Sigma: 0.6, Seed: 7}
	for _, tc := range []struct {
		name   string
		m      *Model
		frames int
	}{
		{"whole", refModel(t, "tiny"), 30},
		{"chunked", chunked, 70},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mel := testMel(t, tc.m, tc.frames)
			want, err := tc.m.Synthesize(context.Background(), mel, opts)
			if err != nil {
				t.Fatal(err)
			}
			prefix := []float32{1, 2, 3}
			for _, spare := range []int{0, len(want) - 1, len(want), len(want) + 5} {
				dst := append(make([]float32, 0, len(prefix)+spare), prefix...)
				got, err := tc.m.AppendSynthesis(context.Background(), dst, mel, opts)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got[:len(prefix)], prefix) {
					t.Errorf("spare %d: prefix became %v", spare, got[:len(prefix)])
				}
				if d, i := maxAbsDiff(got[len(prefix):], want); d != 0 || len(got) != len(prefix)+len(want) {
					t.Errorf("spare %d: %d samples appended, want %d; max difference %g at %d", spare, len(got)-len(prefix), len(want), d, i)
				}
				if inPlace := spare >= len(want); inPlace != (&got[0] == &dst[0]) {
					t.Errorf("spare %d: written in place %v, want %v", spare, !inPlace, inPlace)
				}
			}
			// An error leaves dst's length alone.
			dst := append(make([]float32, 0, len(prefix)+len(want)), prefix...)
			got, err := tc.m.AppendSynthesis(context.Background(), dst, mel, SynthesizeOptions{Sigma: -1})
			if err == nil || !slices.Equal(got, prefix) {
				t.Errorf("bad sigma: got %d values and error %v, want the prefix and an error", len(got), err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			got, err = tc.m.AppendSynthesis(ctx, dst, mel, opts)
			if err == nil || !slices.Equal(got, prefix) {
				t.Errorf("cancelled: got %d values and error %v, want the prefix and an error", len(got), err)
			}
		})
	}
}

// TestAppendSynthesisAllocs checks that a steady-state AppendSynthesis
// into a buffer with room for the audio does not allocate on one
// goroutine (testing.AllocsPerRun runs at GOMAXPROCS 1). Split over
// goroutines, the kernels' fan-out state comes from sync.Pools, whose
// per-P caches still miss now and then (see nn.TestGemmAllocs), so there
// it bounds the average instead, with the collector off (a collection
// empties the pools): a real per-call allocation in a split path, such as
// starting a goroutine per flow, costs far more (3 per flow).
func TestAppendSynthesisAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop scratch")
	}
	chunked := privateModel(t, "tiny")
	chunked.maxWholeFrames = 20
	for _, tc := range []struct {
		model  string
		m      *Model
		frames int
		runs   int
	}{
		{"small", refModel(t, "small"), 172, 10}, // 2 s: the kernels split when they can
		{"small", refModel(t, "small"), 24, 10},
		{"tiny_chunked", chunked, 70, 10},
	} {
		mel := syntheticMel(tc.m, tc.frames)
		dst := make([]float32, 0, tc.m.Samples(tc.frames))
		call := func() {
			audio, err := tc.m.AppendSynthesis(context.Background(), dst, mel, SynthesizeOptions{Sigma: 0.6, Seed: 3})
			if err != nil {
				t.Fatal(err)
			}
			if &audio[0] != &dst[:1][0] {
				t.Fatal("audio not written into dst")
			}
		}
		name := fmt.Sprintf("%s_frames%d", tc.model, tc.frames)
		t.Run(name+"_procs1", func(t *testing.T) {
			call() // grow the pooled working memory
			if got := testing.AllocsPerRun(tc.runs, call); got != 0 {
				t.Errorf("%v allocations per call, want 0", got)
			}
		})
		t.Run(name+"_procs2", func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
			for range 3 {
				call() // grow the pooled working memory, fill the pools
			}
			// A collection empties the pools, whose refilling would be
			// counted: measure with the collector off.
			defer debug.SetGCPercent(debug.SetGCPercent(-1))
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for range tc.runs {
				call()
			}
			runtime.ReadMemStats(&after)
			n := after.Mallocs - before.Mallocs
			t.Logf("%d allocations in %d calls", n, tc.runs)
			const maxPerCall = 2
			if n > maxPerCall*uint64(tc.runs) {
				t.Errorf("%d allocations in %d calls, want at most %d per call", n, tc.runs, maxPerCall)
			}
		})
	}
}
