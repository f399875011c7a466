package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// gemmRef is the textbook triple loop Gemm is checked against.
func gemmRef(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, accumulate bool) {
	for i := 0; i < m; i++ {
		ci := c[i*ldc : i*ldc+n]
		if !accumulate {
			clear(ci)
		}
		for p := 0; p < k; p++ {
			aip := a[i*lda+p]
			bp := b[p*ldb : p*ldb+n]
			for j := range ci {
				ci[j] += aip * bp[j]
			}
		}
	}
}

// randSlice returns n values uniform in [-1, 1).
func randSlice(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = 2*rng.Float32() - 1
	}
	return s
}

// gemmCase is one Gemm problem; the pad fields widen the row strides past
// the widths so the operands are views.
type gemmCase struct {
	m, n, k          int
	padA, padB, padC int
}

func (tc gemmCase) String() string {
	return fmt.Sprintf("m%d_n%d_k%d_pad%d.%d.%d", tc.m, tc.n, tc.k, tc.padA, tc.padB, tc.padC)
}

var gemmCases = []gemmCase{
	{m: 1, n: 1, k: 1},
	{m: 1, n: 7, k: 3},
	{m: 3, n: 1, k: 5},
	{m: 2, n: 2, k: 0},
	{m: 0, n: 5, k: 3},
	{m: 4, n: 0, k: 3},
	{m: 4, n: 2, k: 1},
	{m: 7, n: 17, k: 33, padA: 1, padB: 2, padC: 3},
	{m: 17, n: 33, k: 7},
	{m: 33, n: 65, k: 17, padA: 5, padB: 1, padC: 4},
	{m: 65, n: 3, k: 65},
	{m: 8, n: 300, k: 4, padB: 6},
	{m: 12, n: 301, k: 3, padC: 1},
	{m: 32, n: 129, k: 4},
	{m: 64, n: 257, k: 32, padB: 8},
	// More than one block in each of K, M and N.
	{m: 9, n: 1030, k: 260, padA: 3, padB: 5, padC: 7},
	{m: 130, n: 40, k: 300, padA: 1, padC: 2},
	{m: 259, n: 70, k: 513},
	// Large enough to fan out, split along N and along M.
	{m: 96, n: 1201, k: 80, padC: 1},
	{m: 2051, n: 33, k: 130, padA: 2},
	// B packed (M above one block), with edges in M and N, over two
	// panels of N.
	{m: 131, n: 2090, k: 19, padA: 1, padB: 3, padC: 5},
	// The model's smallest shapes: direct B, tiny K.
	{m: 8, n: 1000, k: 4, padB: 24},
	{m: 6, n: 999, k: 2, padA: 1, padB: 1, padC: 1},
}

// gemmFunc is the signature of Gemm, for testing its kernels.
type gemmFunc func(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, accumulate bool)

// gemmWith returns Gemm running on micro-kernel kern.
func gemmWith(kern *microKernel) gemmFunc {
	return func(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, accumulate bool) {
		checkMatrix("A", m, k, a, lda)
		checkMatrix("B", k, n, b, ldb)
		checkMatrix("C", m, n, c, ldc)
		if m > 0 && n > 0 && k > 0 {
			gemm(kern, operands{m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc, accumulate: accumulate})
			return
		}
		Gemm(m, n, k, a, lda, b, ldb, c, ldc, accumulate)
	}
}

// gemmNTWith returns a gemmFunc that transposes B (into a view with a
// padded row stride) and multiplies with GemmNT's code on kern.
func gemmNTWith(kern *microKernel) gemmFunc {
	return func(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, accumulate bool) {
		ldbt := k + 3
		bt := make([]float32, n*ldbt)
		for p := 0; p < k; p++ {
			for j := 0; j < n; j++ {
				bt[j*ldbt+p] = b[p*ldb+j]
			}
		}
		if m > 0 && n > 0 && k > 0 {
			checkMatrix("Bᵀ", n, k, bt, ldbt)
			gemm(kern, operands{m: m, n: n, k: k, a: a, lda: lda, b: bt, ldb: ldbt, transB: true, c: c, ldc: ldc, accumulate: accumulate})
			return
		}
		GemmNT(m, n, k, a, lda, bt, ldbt, c, ldc, accumulate)
	}
}

// testKernels returns the micro-kernels this CPU can run: the portable
// fallback and, when it differs, the dispatched one (assembly).
func testKernels() []*microKernel {
	ks := []*microKernel{&portableKernel}
	if gemmKernel.name != portableKernel.name {
		ks = append(ks, &gemmKernel)
	}
	return ks
}

// checkGemm runs Gemm and gemmRef on the same random problem and compares
// them, elementwise, against the rounding-error bound of a k-term float32
// dot product; it also checks that C's padding is left alone.
func checkGemm(t *testing.T, gemm gemmFunc, tc gemmCase, accumulate bool) {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(tc.m), uint64(tc.n*1000+tc.k)))
	lda, ldb, ldc := tc.k+tc.padA, tc.n+tc.padB, tc.n+tc.padC
	a := randSlice(rng, tc.m*lda)
	b := randSlice(rng, tc.k*ldb)
	c0 := randSlice(rng, tc.m*ldc)
	for i := 0; i < tc.m; i++ {
		for j := tc.n; j < ldc; j++ {
			c0[i*ldc+j] = float32(math.NaN())
		}
	}
	got := append([]float32(nil), c0...)
	want := append([]float32(nil), c0...)
	gemm(tc.m, tc.n, tc.k, a, lda, b, ldb, got, ldc, accumulate)
	gemmRef(tc.m, tc.n, tc.k, a, lda, b, ldb, want, ldc, accumulate)

	const eps = 0x1p-24 // float32 unit roundoff
	for i := 0; i < tc.m; i++ {
		for j := 0; j < ldc; j++ {
			g, w := got[i*ldc+j], want[i*ldc+j]
			if j >= tc.n {
				if !math.IsNaN(float64(g)) {
					t.Fatalf("C[%d,%d] outside the view changed to %v", i, j, g)
				}
				continue
			}
			// Both results are within (k+1)·eps·Σ|terms| of the exact one.
			var mag float64
			if accumulate {
				mag = math.Abs(float64(c0[i*ldc+j]))
			}
			for p := 0; p < tc.k; p++ {
				mag += math.Abs(float64(a[i*lda+p]) * float64(b[p*ldb+j]))
			}
			if d := math.Abs(float64(g - w)); d > 2*float64(tc.k+1)*eps*mag {
				t.Fatalf("C[%d,%d] = %v, want %v (|diff| %g, Σ|terms| %g)", i, j, g, w, d, mag)
			}
		}
	}
}

func TestGemm(t *testing.T) {
	for _, tc := range gemmCases {
		if raceEnabled && tc.m*tc.n*tc.k > 1<<22 {
			continue // slow when instrumented; TestGemmConcurrent splits
		}
		for _, acc := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v_acc%v", tc, acc), func(t *testing.T) {
				checkGemm(t, Gemm, tc, acc)
			})
		}
	}
}

// TestGemmPortable forces the portable fallback kernel through the
// blocked product (TestGemm runs the dispatched one). Under the race
// detector it skips the largest cases, which TestGemm covers.
// TestGemmNT checks the product with B given transposed on every kernel.
func TestGemmNT(t *testing.T) {
	for _, kern := range testKernels() {
		for _, tc := range gemmCases {
			if raceEnabled && tc.m*tc.n*tc.k > 1<<18 {
				continue // slow when instrumented
			}
			for _, acc := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%v_acc%v", kern.name, tc, acc), func(t *testing.T) {
					checkGemm(t, gemmNTWith(kern), tc, acc)
				})
			}
		}
	}
}

// gemmPackedWith returns a gemmFunc that packs A for kern into a
// PackedMatrix and multiplies with Mul, or with MulNT on a transposed copy
// of B.
func gemmPackedWith(kern *microKernel, transB bool) gemmFunc {
	return func(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, accumulate bool) {
		var p PackedMatrix
		p.pack(kern, m, k, a, lda)
		if !transB {
			p.Mul(n, b, ldb, c, ldc, accumulate)
			return
		}
		bt := make([]float32, n*k)
		for q := 0; q < k; q++ {
			for j := 0; j < n; j++ {
				bt[j*k+q] = b[q*ldb+j]
			}
		}
		p.MulNT(n, bt, max(k, 1), c, ldc, accumulate)
	}
}

// TestPackedMatrix checks products with a packed A, plain and with B
// transposed, on every kernel.
func TestPackedMatrix(t *testing.T) {
	for _, kern := range testKernels() {
		for _, transB := range []bool{false, true} {
			for _, tc := range gemmCases {
				if raceEnabled && tc.m*tc.n*tc.k > 1<<18 {
					continue // slow when instrumented
				}
				t.Run(fmt.Sprintf("%s/nt%v/%v", kern.name, transB, tc), func(t *testing.T) {
					checkGemm(t, gemmPackedWith(kern, transB), tc, true)
				})
			}
		}
	}
}

func TestGemmPortable(t *testing.T) {
	for _, tc := range gemmCases {
		if raceEnabled && tc.m*tc.n*tc.k > 1<<18 {
			continue // slow when instrumented
		}
		for _, acc := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v_acc%v", tc, acc), func(t *testing.T) {
				checkGemm(t, gemmWith(&portableKernel), tc, acc)
			})
		}
	}
}

// TestGemmKernelEdges checks each micro-kernel and the packing against
// gemmRef for every tile remainder in M and N around the kernel's shape,
// with B read in place (one block of A) and packed (several).
func TestGemmKernelEdges(t *testing.T) {
	for _, kern := range testKernels() {
		t.Run(kern.name, func(t *testing.T) {
			mr, nr := kern.mr, kern.nr
			ms := []int{mcMax + 1}
			if !raceEnabled {
				ms = append(ms, 2*mcMax+mr-1)
			}
			for m := 1; m <= 2*mr+1; m++ {
				ms = append(ms, m)
			}
			for _, m := range ms {
				for n := 1; n <= 2*nr+1; n++ {
					for _, k := range []int{1, 2, 5, 9, 33} {
						checkGemm(t, gemmWith(kern), gemmCase{m: m, n: n, k: k, padA: 1, padB: 1, padC: 2}, k%2 == 1)
					}
				}
			}
		})
	}
}

// TestStrip checks each micro-kernel's strip directly against the
// definition: packed and in-place B, strides wider than the tile, with
// and without accumulation and a prefetched next panel, and that nothing
// outside the tiles changes.
func TestStrip(t *testing.T) {
	for _, kern := range testKernels() {
		mr, nr := kern.mr, kern.nr
		for _, tiles := range []int{1, 3} {
			for _, k := range []int{1, 2, 3, 4, 5, 7, 8, 31, 32, 33, 64} {
				for _, ldb := range []int{nr, nr + 5} {
					for _, ldc := range []int{nr, nr + 3} {
						for _, acc := range []bool{false, true} {
							name := fmt.Sprintf("%s/tiles%d_k%d_ldb%d_ldc%d_acc%v", kern.name, tiles, k, ldb, ldc, acc)
							rng := rand.New(rand.NewPCG(uint64(k), uint64(ldb*ldc)))
							ap := randSlice(rng, tiles*mr*k)
							bp := randSlice(rng, (k-1)*ldb+nr)
							next := randSlice(rng, k*ldb)
							c := randSlice(rng, (tiles*mr-1)*ldc+nr+7)
							for i := range c {
								if i%ldc >= nr || i >= (tiles*mr-1)*ldc+nr {
									c[i] = float32(math.NaN())
								}
							}
							want := append([]float32(nil), c...)
							for i := 0; i < tiles*mr; i++ {
								t0, r := i/mr, i%mr
								for j := 0; j < nr; j++ {
									var sum float32
									if acc {
										sum = want[i*ldc+j]
									}
									var dot float64
									for p := 0; p < k; p++ {
										dot += float64(ap[t0*mr*k+p*mr+r]) * float64(bp[p*ldb+j])
									}
									want[i*ldc+j] = sum + float32(dot)
								}
							}
							kern.strip(k, tiles, ap, bp, ldb, c, ldc, next, ldb, acc)
							for i := range c {
								g, w := c[i], want[i]
								if math.IsNaN(float64(w)) {
									if !math.IsNaN(float64(g)) {
										t.Fatalf("%s: c[%d] outside the tiles changed to %v", name, i, g)
									}
									continue
								}
								if d := math.Abs(float64(g - w)); d > 1e-5*float64(k+1) {
									t.Fatalf("%s: c[%d] = %v, want %v", name, i, g, w)
								}
							}
						}
					}
				}
			}
		}
	}
}

// TestGemmConcurrent runs split products from several goroutines at once,
// so that some find every helper busy and run their parts themselves.
func TestGemmConcurrent(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	const m, n, k, callers = 128, 1000, 128, 6
	rng := rand.New(rand.NewPCG(7, 7))
	a, b := randSlice(rng, m*k), randSlice(rng, k*n)
	want := make([]float32, m*n)
	Gemm(m, n, k, a, k, b, n, want, n, false)
	errs := make(chan error, callers)
	for range callers {
		go func() {
			c := make([]float32, m*n)
			for range 20 {
				Gemm(m, n, k, a, k, b, n, c, n, false)
				for i := range c {
					if c[i] != want[i] {
						errs <- fmt.Errorf("c[%d] = %v, want %v", i, c[i], want[i])
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for range callers {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestGemmPanics(t *testing.T) {
	s := make([]float32, 16)
	tests := []struct {
		name string
		call func()
	}{
		{"negative m", func() { Gemm(-1, 2, 2, s, 2, s, 2, s, 2, false) }},
		{"lda too small", func() { Gemm(2, 2, 3, s, 2, s, 2, s, 2, false) }},
		{"ldb too small", func() { Gemm(2, 3, 2, s, 2, s, 2, s, 3, false) }},
		{"ldc too small", func() { Gemm(2, 3, 2, s, 2, s, 3, s, 2, false) }},
		{"A too short", func() { Gemm(9, 2, 2, s, 2, s, 2, make([]float32, 18), 2, false) }},
		{"B too short", func() { Gemm(2, 2, 9, make([]float32, 18), 9, s, 2, s, 2, false) }},
		{"C too short", func() { Gemm(2, 9, 2, s, 2, make([]float32, 18), 9, s, 9, false) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tt.call()
		})
	}
}

// TestGemmAllocs checks that steady-state calls do not allocate on one
// goroutine, and bounds the allocations of the goroutine fan-out.
func TestGemmAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop scratch")
	}
	tests := []struct {
		m, n, k int
		procs   int
		max     float64
	}{
		{m: 64, n: 100, k: 32, procs: 1},
		{m: 64, n: 600, k: 32, procs: 1},
		{m: 256, n: 3000, k: 64, procs: 1},
		// Split over helpers with pooled state: nothing but the runtime's
		// occasional bookkeeping and pool misses.
		{m: 256, n: 3000, k: 64, procs: 2, max: 0.5},
		{m: 3000, n: 40, k: 64, procs: 2, max: 0.5},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("m%d_n%d_k%d_procs%d", tt.m, tt.n, tt.k, tt.procs), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(tt.procs))
			a := make([]float32, tt.m*tt.k)
			b := make([]float32, tt.k*tt.n)
			c := make([]float32, tt.m*tt.n)
			got := allocsPerRun(100, func() {
				Gemm(tt.m, tt.n, tt.k, a, tt.k, b, tt.n, c, tt.n, false)
			})
			t.Logf("%v allocations per call", got)
			if got > tt.max {
				t.Errorf("%v allocations per call, want at most %v", got, tt.max)
			}
		})
	}
}

// allocsPerRun is testing.AllocsPerRun without its switch to GOMAXPROCS 1,
// so the goroutine fan-out is measured too.
func allocsPerRun(runs int, f func()) float64 {
	f() // warm up the pools
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return float64(after.Mallocs-before.Mallocs) / float64(runs)
}

// benchShapes are the vocoder's GEMMs: M output channels, K input channels
// (per tap), N time columns (about one second of audio).
var benchShapes = []struct{ m, k, n int }{
	{512, 768, 2756},  // universal model: dilated conv, three taps stacked
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

// BenchmarkKernelPeak measures the dispatched micro-kernel alone on
// operands that stay in L1 (a 128-deep strip of four tiles): the ceiling
// that the GEMM's cache blocking and packing work towards.
func BenchmarkKernelPeak(b *testing.B) {
	kern := &gemmKernel
	const k, tiles = 128, 4
	ap := make([]float32, tiles*kern.mr*k)
	bp := make([]float32, k*kern.nr)
	c := make([]float32, tiles*kern.mr*kern.nr)
	b.ResetTimer()
	for range b.N {
		kern.strip(k, tiles, ap, bp, kern.nr, c, kern.nr, nil, 0, false)
	}
	b.ReportMetric(2*float64(tiles*kern.mr*kern.nr*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func BenchmarkGemm(b *testing.B) {
	for _, s := range benchShapes {
		b.Run(fmt.Sprintf("M%d_K%d_N%d", s.m, s.k, s.n), func(b *testing.B) {
			benchGemm(b, Gemm, s.m, s.k, s.n)
		})
	}
}

// BenchmarkGemmPortable measures the pure-Go fallback kernel.
func BenchmarkGemmPortable(b *testing.B) {
	for _, s := range []struct{ m, k, n int }{{512, 256, 2756}, {32, 32, 5500}} {
		b.Run(fmt.Sprintf("M%d_K%d_N%d", s.m, s.k, s.n), func(b *testing.B) {
			benchGemm(b, gemmWith(&portableKernel), s.m, s.k, s.n)
		})
	}
}

// BenchmarkGemmRef measures the naive loop for comparison.
func BenchmarkGemmRef(b *testing.B) {
	for _, s := range []struct{ m, k, n int }{{512, 256, 2756}, {32, 32, 2756}} {
		b.Run(fmt.Sprintf("M%d_K%d_N%d", s.m, s.k, s.n), func(b *testing.B) {
			benchGemm(b, gemmRef, s.m, s.k, s.n)
		})
	}
}

// benchGemm times gemm on an m×k·k×n product. It loops b.N times rather
// than with b.Loop: with -cpu lists, testing runs a b.Loop benchmark's
// first setting during its initial probe, before it sets GOMAXPROCS, so
// "-cpu 1,2" would time the first entry at the default GOMAXPROCS.
func benchGemm(b *testing.B, gemm func(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, accumulate bool), m, k, n int) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := randSlice(rng, m*k)
	y := randSlice(rng, k*n)
	z := make([]float32, m*n)
	b.ResetTimer()
	for range b.N {
		gemm(m, n, k, x, k, y, n, z, n, false)
	}
	b.ReportMetric(2*float64(m)*float64(n)*float64(k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
