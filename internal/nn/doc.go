// Package nn holds the numeric kernels behind the vocoder: single-precision
// matrix multiplication on row-major slices, the convolution shapes WaveGlow
// is built from, and the gated activation.
//
// Tensors are plain []float32 slices with explicit dimensions and row
// strides, in channel-major layout ([channels × time], time contiguous).
// Every kernel here is pure computation: no allocation that outlives the
// call, no global mutable state, safe for concurrent use.
package nn
