package nn

// microKernel is a register-blocked GEMM micro-kernel over packed panels.
// strip computes tiles mr×nr tiles of C stacked vertically,
//
//	C = Ap·B, or C += Ap·B when accumulate is true,
//
// where Ap holds tiles packed micro-panels of A one after another, each k
// columns of mr consecutive values (ap[t*mr*k + p*mr + i] = A[t*mr+i, p]),
// B is k rows of nr consecutive values with row stride ldb
// (bp[p*ldb + j] = B[p, j]) and C is row-major with row stride ldc. The
// micro-panel of B is either packed (ldb = nr) or a view of the caller's
// matrix. k ≥ 1, tiles ≥ 1, len(ap) ≥ tiles·mr·k, len(bp) ≥ (k−1)·ldb + nr
// and len(c) ≥ (tiles·mr−1)·ldc + nr. next, if not empty, is where the
// next micro-panel of B will come from (k rows of row stride ldn): a hint
// that kernels may prefetch it, never read as data.
//
// Architecture-specific kernels (assembly) plug in here with their own tile
// shape; the blocking and packing code adapts to mr and nr. Running a whole
// strip per call amortises the call over tiles, which matters when k is
// small.
type microKernel struct {
	name   string
	mr, nr int
	strip  func(k, tiles int, ap, bp []float32, ldb int, c []float32, ldc int, next []float32, ldn int, accumulate bool)
}

// portableKernel is the pure-Go micro-kernel.
var portableKernel = microKernel{name: "portable 4x2", mr: 4, nr: 2, strip: strip4x2}

// strip4x2 runs kernel4x2 down a strip of tiles; it ignores the prefetch
// hint.
func strip4x2(k, tiles int, ap, bp []float32, ldb int, c []float32, ldc int, next []float32, ldn int, accumulate bool) {
	for t := 0; t < tiles; t++ {
		kernel4x2(k, ap[t*4*k:], bp, ldb, c[t*4*ldc:], ldc, accumulate)
	}
}

// kernel4x2 is the portable micro-kernel: a 4×2 tile whose eight
// accumulators, plus the six operands of one step, fit the fifteen
// floating-point registers the Go compiler allocates on amd64; the loop is
// unrolled twice to halve its overhead. Wider tiles spill.
func kernel4x2(k int, ap, bp []float32, ldb int, c []float32, ldc int, accumulate bool) {
	var c00, c01, c10, c11, c20, c21, c30, c31 float32
	ap = ap[:4*k]
	bp = bp[:(k-1)*ldb+2]
	p := 0
	for ; p+1 < k; p += 2 {
		a := ap[4*p : 4*p+8]
		b0 := bp[p*ldb : p*ldb+2]
		b1 := bp[(p+1)*ldb : (p+1)*ldb+2]
		c00 += a[0] * b0[0]
		c01 += a[0] * b0[1]
		c10 += a[1] * b0[0]
		c11 += a[1] * b0[1]
		c20 += a[2] * b0[0]
		c21 += a[2] * b0[1]
		c30 += a[3] * b0[0]
		c31 += a[3] * b0[1]
		c00 += a[4] * b1[0]
		c01 += a[4] * b1[1]
		c10 += a[5] * b1[0]
		c11 += a[5] * b1[1]
		c20 += a[6] * b1[0]
		c21 += a[6] * b1[1]
		c30 += a[7] * b1[0]
		c31 += a[7] * b1[1]
	}
	if p < k {
		a := ap[4*p : 4*p+4]
		b0 := bp[p*ldb : p*ldb+2]
		c00 += a[0] * b0[0]
		c01 += a[0] * b0[1]
		c10 += a[1] * b0[0]
		c11 += a[1] * b0[1]
		c20 += a[2] * b0[0]
		c21 += a[2] * b0[1]
		c30 += a[3] * b0[0]
		c31 += a[3] * b0[1]
	}
	r0 := c[:2]
	r1 := c[ldc : ldc+2]
	r2 := c[2*ldc : 2*ldc+2]
	r3 := c[3*ldc : 3*ldc+2]
	if accumulate {
		c00 += r0[0]
		c01 += r0[1]
		c10 += r1[0]
		c11 += r1[1]
		c20 += r2[0]
		c21 += r2[1]
		c30 += r3[0]
		c31 += r3[1]
	}
	r0[0], r0[1] = c00, c01
	r1[0], r1[1] = c10, c11
	r2[0], r2[1] = c20, c21
	r3[0], r3[1] = c30, c31
}
