// Package nn holds the numeric kernels behind the vocoder and its trainer:
// single-precision matrix multiplication on row-major slices (A·B, A·Bᵀ,
// and with A packed once for repeated products), the convolution shapes
// WaveGlow is built from, the gated activation (whole, or as the tanh and
// σ halves training keeps), an elementwise exponential and the block
// transpose that puts a frame-by-frame GEMM's output in place.
//
// Tensors are plain []float32 slices with explicit dimensions and row
// strides, in channel-major layout ([channels × time], time contiguous).
// Every kernel here is pure computation: no allocation that outlives the
// call (a PackedMatrix owns its packed copy), safe for concurrent use. Large calls are split over up to
// runtime.GOMAXPROCS(0) goroutines: the caller and long-lived helper
// goroutines, started on first use, that park between calls.
//
// On amd64 the GEMM micro-kernel (4×24 tiles, twelve ymm accumulators)
// and the activations (float64 lanes, rounded once) are AVX2+FMA assembly,
// chosen at run time with golang.org/x/sys/cpu; other CPUs, other
// architectures and the noasm build tag use the pure-Go versions, which
// the tests also run. Results do not depend on GOMAXPROCS: the split
// never changes the order of a sum.
package nn
