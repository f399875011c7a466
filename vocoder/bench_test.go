package vocoder

import (
	"context"
	"testing"
)

// BenchmarkSynthesize measures inference of a 2-second mel (172 frames) with
// the reference models and reports seconds of compute per second of audio.
// It appends to one reused buffer after warm-up calls (which grow the
// model's working memory and refill the kernels' pools, emptied by the
// collection before each benchmark run), so its allocations are those of
// a steady-state call: none.
func BenchmarkSynthesize(b *testing.B) {
	for _, name := range []string{"tiny", "small"} {
		b.Run(name, func(b *testing.B) {
			m := refModel(b, name)
			const frames = 172
			mel := syntheticMel(m, frames)
			var audio []float32
			for range 3 {
				var err error
				if audio, err = m.AppendSynthesis(context.Background(), audio[:0], mel, SynthesizeOptions{Sigma: 0.6}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				var err error
				if audio, err = m.AppendSynthesis(context.Background(), audio[:0], mel, SynthesizeOptions{Sigma: 0.6, Seed: uint64(i)}); err != nil {
					b.Fatal(err)
				}
			}
			audioSec := float64(m.Samples(frames)) / float64(m.cfg.Mel.SampleRate)
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)/audioSec, "s/audio-s")
		})
	}
}
