package vocoder

import (
	"context"
	"errors"
	"math"
	"testing"
)

// streamed collects SynthesizeStream's pieces, recording where each join is.
func streamed(t *testing.T, m *Model, opts StreamOptions, frames int) (audio []float32, pieces []int) {
	t.Helper()
	mel := testMel(t, m, frames)
	err := m.SynthesizeStream(context.Background(), mel, opts, func(a []float32) error {
		audio = append(audio, a...)
		pieces = append(pieces, len(audio))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return audio, pieces
}

// TestStreamJoins compares chunked with whole-utterance synthesis: the
// difference (as an SNR) and a click detector at every join, which compares
// the largest sample-to-sample step near the join with the same measure of
// the whole-utterance audio.
func TestStreamJoins(t *testing.T) {
	tests := []struct {
		model   string
		opts    StreamOptions
		minSNR  float64 // dB of whole vs (chunked − whole)
		maxStep float64 // allowed ratio of join steps to reference steps
	}{
		// Context covering the receptive field: equal to float rounding.
		{"small", StreamOptions{FirstChunkFrames: 8, ChunkFrames: 16}, 90, 1.001},
		{"tiny", StreamOptions{FirstChunkFrames: 8, ChunkFrames: 16}, 90, 1.001},
		// Too little context: the cross-fade must still avoid clicks.
		{"small", StreamOptions{FirstChunkFrames: 8, ChunkFrames: 16, ContextFrames: 2, CrossfadeFrames: 2}, 10, 1.25},
	}
	for _, tc := range tests {
		t.Run(tc.model, func(t *testing.T) {
			m := refModel(t, tc.model)
			const frames = 60
			opts := tc.opts
			opts.Sigma, opts.Seed = 0.6, 11
			got, joins := streamed(t, m, opts, frames)
			want, err := m.Synthesize(context.Background(), testMel(t, m, frames), opts.SynthesizeOptions)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("streamed %d samples, want %d", len(got), len(want))
			}
			if len(joins) < 4 {
				t.Fatalf("only %d pieces", len(joins))
			}
			var sig, noise float64
			for i := range want {
				d := float64(got[i] - want[i])
				sig += float64(want[i]) * float64(want[i])
				noise += d * d
			}
			snr := 10 * math.Log10(sig/math.Max(noise, 1e-30))
			t.Logf("%d pieces, SNR of chunked vs whole %.1f dB", len(joins), snr)
			if snr < tc.minSNR {
				t.Errorf("SNR %.1f dB below %.1f dB", snr, tc.minSNR)
			}
			const radius = 512
			for _, j := range joins[:len(joins)-1] {
				lo, hi := max(1, j-radius), min(len(got), j+radius)
				step := func(a []float32) float64 {
					var s float64
					for i := lo; i < hi; i++ {
						s = math.Max(s, math.Abs(float64(a[i]-a[i-1])))
					}
					return s
				}
				if r := step(got) / step(want); r > tc.maxStep {
					t.Errorf("join at sample %d: largest step %.3g× the whole-utterance one", j, r)
				}
			}
		})
	}
}

func TestStreamShortAndErrors(t *testing.T) {
	m := refModel(t, "tiny")
	// A mel within the first chunk is synthesised whole: identical output.
	mel := testMel(t, m, 10)
	var got []float32
	opts := StreamOptions{SynthesizeOptions: SynthesizeOptions{Sigma: 0.6, Seed: 2}}
	if err := m.SynthesizeStream(context.Background(), mel, opts, func(a []float32) error {
		got = append(got, a...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want, _ := m.Synthesize(context.Background(), mel, opts.SynthesizeOptions)
	if d, _ := maxAbsDiff(got, want); d != 0 || len(got) != len(want) {
		t.Errorf("short streamed synthesis differs from whole: %g", d)
	}
	// An emit error stops the stream and is returned.
	stop := errors.New("client gone")
	calls := 0
	err := m.SynthesizeStream(context.Background(), testMel(t, m, 60), StreamOptions{FirstChunkFrames: 8, ChunkFrames: 8}, func([]float32) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("emit error: got %v after %d calls", err, calls)
	}
	bad := []StreamOptions{
		{FirstChunkFrames: -1},
		{ContextFrames: 1, CrossfadeFrames: 2},
		{FirstChunkFrames: 2, CrossfadeFrames: 2, ContextFrames: 4},
	}
	for _, o := range bad {
		if err := m.SynthesizeStream(context.Background(), mel, o, func([]float32) error { return nil }); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
}

// TestLongSynthesisChunked checks that a mel longer than the one-pass limit
// gives the one-pass result (to float rounding) in bounded chunks.
func TestLongSynthesisChunked(t *testing.T) {
	m := privateModel(t, "small") // its limit is changed below
	mel := testMel(t, m, 70)
	opts := SynthesizeOptions{Sigma: 0.6, Seed: 4}
	want, err := m.Synthesize(context.Background(), mel, opts)
	if err != nil {
		t.Fatal(err)
	}
	m.maxWholeFrames = 20
	got, err := m.Synthesize(context.Background(), mel, opts)
	if err != nil {
		t.Fatal(err)
	}
	closeTo(t, "chunked vs one pass", got, want, 1e-5, 1e-6)
}
