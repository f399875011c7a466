package train

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/glowvoc/glowvoc/melspec"
	"github.com/glowvoc/glowvoc/vocoder"
)

// benchBatch returns b items of segment samples with their mel frames
// (segment/hop + 1, as NVIDIA's Mel2Samp computes the mel of a segment).
func benchBatch(t testing.TB, model string, b, segment int) (*Model, []Example) {
	var cfg vocoder.Config
	if model == "universal" { // NVIDIA's published configuration
		var err error
		if cfg, err = vocoder.ReadConfigFile(filepath.Join("..", "configs", "universal.json")); err != nil {
			t.Fatal(err)
		}
	} else {
		cfg = refConfig(t, model)
	}
	m, err := New(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, f := range m.flows {
		for i := range f.endW.Value {
			f.endW.Value[i] = float32(0.02 * rng.NormFloat64())
		}
	}
	frames := segment/cfg.Mel.Hop + 1
	batch := make([]Example, b)
	for i := range batch {
		mel := melspec.Spectrogram{NMels: cfg.NMels, Frames: frames, Data: make([]float32, cfg.NMels*frames)}
		for j := range mel.Data {
			mel.Data[j] = float32(-6 + 2*rng.NormFloat64())
		}
		audio := make([]float32, segment)
		for j := range audio {
			audio[j] = float32(0.1 * rng.NormFloat64())
		}
		batch[i] = Example{Mel: mel, Audio: audio}
	}
	return m, batch
}

// BenchmarkStepUniversal times one training step of NVIDIA's universal
// configuration (12 flows, WN 8 × 256) on 1 × 16000 samples.
func BenchmarkStepUniversal(b *testing.B) {
	for _, o := range []Options{{Recompute: true, Workers: 1}, {Recompute: false, Workers: 1}} {
		b.Run(fmt.Sprintf("recompute=%v", o.Recompute), func(b *testing.B) {
			m, batch := benchBatch(b, "universal", 1, 16000)
			m.SetOptions(o)
			tr := NewTrainer(m, 1e-4, 1)
			b.ResetTimer()
			for range b.N {
				if _, err := tr.Step(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStepSmall times one training step (forward, backward, Adam) of
// the small reference configuration on 2 × 16000 samples.
func BenchmarkStepSmall(b *testing.B) {
	for _, o := range []Options{
		{Recompute: true, Workers: 1}, {Recompute: true, Workers: 2},
		{Recompute: false, Workers: 1}, {Recompute: false, Workers: 2},
	} {
		b.Run(fmt.Sprintf("recompute=%v/workers=%d", o.Recompute, o.Workers), func(b *testing.B) {
			m, batch := benchBatch(b, "small", 2, 16000)
			m.SetOptions(o)
			tr := NewTrainer(m, 1e-4, 1)
			if _, err := tr.Step(context.Background(), batch); err != nil { // warm up buffers
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if _, err := tr.Step(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPeakHeap reports the peak live heap during one gradient
// evaluation of the small and the universal configuration on 12 × 16000
// samples, in both memory modes, sampled every 200 µs.
func BenchmarkPeakHeap(b *testing.B) {
	for _, c := range []struct {
		model string
		o     Options
	}{
		{"small", Options{Recompute: true, Workers: 2}}, {"small", Options{Recompute: false, Workers: 2}},
		{"small", Options{Recompute: true, Workers: 1}}, {"small", Options{Recompute: false, Workers: 1}},
		{"universal", Options{Recompute: true, Workers: 1}}, {"universal", Options{Recompute: false, Workers: 1}},
	} {
		o := c.o
		b.Run(fmt.Sprintf("%s/recompute=%v/workers=%d", c.model, o.Recompute, o.Workers), func(b *testing.B) {
			var peak uint64
			for range b.N {
				m, batch := benchBatch(b, c.model, 12, 16000)
				m.SetOptions(o)
				runtime.GC()
				base := heapBytes()
				stop := sampleHeap(&peak)
				if _, err := m.Gradients(context.Background(), batch, 1); err != nil {
					b.Fatal(err)
				}
				stop()
				b.ReportMetric(float64(base)/(1<<20), "MB-before")
			}
			b.ReportMetric(float64(peak)/(1<<20), "MB-peak")
		})
	}
}

func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// sampleHeap records the largest heap seen into peak until stop is called.
func sampleHeap(peak *uint64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(200 * time.Microsecond)
		defer tick.Stop()
		for {
			*peak = max(*peak, heapBytes())
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		*peak = max(*peak, heapBytes())
	}
}
