//go:build !noasm

package nn

import "golang.org/x/sys/cpu"

// hasAVX2FMA reports whether the AVX2 and FMA kernels can run.
var hasAVX2FMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// avx2Kernel is the AVX2+FMA micro-kernel: a 4×24 tile in twelve ymm
// accumulators.
var avx2Kernel = microKernel{name: "avx2 4x24", mr: 4, nr: 24, strip: strip4x24}

// gemmKernel is the micro-kernel Gemm uses.
var gemmKernel = func() microKernel {
	if hasAVX2FMA {
		return avx2Kernel
	}
	return portableKernel
}()

// strip4x24 checks the operands of a strip and runs strip4x24AVX2.
func strip4x24(k, tiles int, ap, bp []float32, ldb int, c []float32, ldc int, next []float32, ldn int, accumulate bool) {
	_ = ap[tiles*4*k-1]
	_ = bp[(k-1)*ldb+23]
	_ = c[(tiles*4-1)*ldc+23]
	var pn *float32
	if len(next) > 0 {
		pn = &next[0]
	}
	strip4x24AVX2(k, tiles, &ap[0], &bp[0], ldb, &c[0], ldc, pn, ldn, accumulate)
}

// strip4x24AVX2 computes tiles 4×24 tiles of C as described for
// microKernel.strip. It needs AVX2 and FMA.
//
//go:noescape
func strip4x24AVX2(k, tiles int, a, b *float32, ldb int, c *float32, ldc int, next *float32, ldn int, accumulate bool)
