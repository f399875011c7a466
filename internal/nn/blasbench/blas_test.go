//go:build openblas

package blasbench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"testing"

	"github.com/glowvoc/glowvoc/internal/nn"
)

// shapes are the vocoder's GEMMs: M output channels, K input channels (per
// tap), N time columns (about one second of audio at T/8 columns).
var shapes = []struct{ m, k, n int }{
	{512, 768, 2756},  // universal model: dilated conv, three taps fused
	{512, 256, 2756},  // universal model: one tap, res/skip
	{4096, 640, 2756}, // universal model: fused cond layers
	{256, 640, 5500},  // small model: one cond layer
	{2048, 640, 5500}, // small model: fused cond layers
	{64, 32, 5500},    // small model: in-layer (both halves)
	{32, 32, 5500},    // small model: res/skip
	{8, 32, 5500},     // small model: end layer
	{32, 4, 5500},     // small model: start layer
	{12, 3, 5500},     // tiny K and M
	{63, 80, 4096},    // training: upsampler, frames × mel channels
}

func TestOpenBLASConfig(t *testing.T) {
	config, core := Config()
	t.Logf("OpenBLAS %s; core %s; OPENBLAS_CORETYPE=%q", config, core, os.Getenv("OPENBLAS_CORETYPE"))
}

// TestSgemm checks the cgo binding against nn.Gemm.
func TestSgemm(t *testing.T) {
	const m, n, k = 37, 53, 29
	rng := rand.New(rand.NewPCG(3, 4))
	a, b := random(rng, m*k), random(rng, k*n)
	got, want := random(rng, m*n), make([]float32, m*n)
	copy(want, got)
	Sgemm(m, n, k, a, k, b, n, got, n, true)
	nn.Gemm(m, n, k, a, k, b, n, want, n, true)
	for i := range got {
		if d := math.Abs(float64(got[i] - want[i])); d > 1e-4 {
			t.Fatalf("c[%d] = %v, want %v", i, got[i], want[i])
		}
	}
}

func BenchmarkGemm(b *testing.B) {
	impls := []struct {
		name string
		gemm func(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, accumulate bool)
	}{
		{"nn", nn.Gemm},
		{"openblas", Sgemm},
	}
	for _, s := range shapes {
		for _, impl := range impls {
			b.Run(fmt.Sprintf("M%d_K%d_N%d/%s", s.m, s.k, s.n, impl.name), func(b *testing.B) {
				SetThreads(runtime.GOMAXPROCS(0))
				rng := rand.New(rand.NewPCG(1, 2))
				x, y := random(rng, s.m*s.k), random(rng, s.k*s.n)
				z := make([]float32, s.m*s.n)
				// b.N, not b.Loop: testing would run the first -cpu
				// setting of a b.Loop benchmark before setting GOMAXPROCS.
				b.ResetTimer()
				for range b.N {
					impl.gemm(s.m, s.n, s.k, x, s.k, y, s.n, z, s.n, false)
				}
				b.ReportMetric(2*float64(s.m)*float64(s.n)*float64(s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// random returns n values uniform in [-1, 1).
func random(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = 2*rng.Float32() - 1
	}
	return s
}
