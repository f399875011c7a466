package nn

// microKernel is a register-blocked GEMM micro-kernel over packed panels.
// fn computes the mr×nr tile
//
//	C = Ap·Bp, or C += Ap·Bp when accumulate is true,
//
// where Ap holds k columns of mr consecutive values (ap[p*mr+i] = A[i,p]),
// Bp holds k rows of nr consecutive values (bp[p*nr+j] = B[p,j]) and C is
// row-major with row stride ldc. len(ap) ≥ mr·k, len(bp) ≥ nr·k and
// len(c) ≥ (mr−1)·ldc + nr.
//
// Architecture-specific kernels (assembly) plug in here with their own tile
// shape; the blocking and packing code adapts to mr and nr.
type microKernel struct {
	mr, nr int
	fn     func(k int, ap, bp, c []float32, ldc int, accumulate bool)
}

// gemmKernel is the micro-kernel Gemm uses.
var gemmKernel = microKernel{mr: 4, nr: 2, fn: kernel4x2}

// kernel4x2 is the portable micro-kernel: a 4×2 tile whose eight
// accumulators, plus the six operands of one step, fit the fifteen
// floating-point registers the Go compiler allocates on amd64; the loop is
// unrolled four times to hide the add latency. Wider tiles spill.
func kernel4x2(k int, ap, bp, c []float32, ldc int, accumulate bool) {
	var c00, c01, c10, c11, c20, c21, c30, c31 float32
	ap = ap[:4*k]
	bp = bp[:2*k]
	for len(ap) >= 16 && len(bp) >= 8 {
		a0, a1, a2, a3 := ap[0], ap[1], ap[2], ap[3]
		b0, b1 := bp[0], bp[1]
		c00 += a0 * b0
		c01 += a0 * b1
		c10 += a1 * b0
		c11 += a1 * b1
		c20 += a2 * b0
		c21 += a2 * b1
		c30 += a3 * b0
		c31 += a3 * b1
		a0, a1, a2, a3 = ap[4], ap[5], ap[6], ap[7]
		b0, b1 = bp[2], bp[3]
		c00 += a0 * b0
		c01 += a0 * b1
		c10 += a1 * b0
		c11 += a1 * b1
		c20 += a2 * b0
		c21 += a2 * b1
		c30 += a3 * b0
		c31 += a3 * b1
		a0, a1, a2, a3 = ap[8], ap[9], ap[10], ap[11]
		b0, b1 = bp[4], bp[5]
		c00 += a0 * b0
		c01 += a0 * b1
		c10 += a1 * b0
		c11 += a1 * b1
		c20 += a2 * b0
		c21 += a2 * b1
		c30 += a3 * b0
		c31 += a3 * b1
		a0, a1, a2, a3 = ap[12], ap[13], ap[14], ap[15]
		b0, b1 = bp[6], bp[7]
		c00 += a0 * b0
		c01 += a0 * b1
		c10 += a1 * b0
		c11 += a1 * b1
		c20 += a2 * b0
		c21 += a2 * b1
		c30 += a3 * b0
		c31 += a3 * b1
		ap = ap[16:]
		bp = bp[8:]
	}
	for len(ap) >= 4 && len(bp) >= 2 {
		a0, a1, a2, a3 := ap[0], ap[1], ap[2], ap[3]
		b0, b1 := bp[0], bp[1]
		c00 += a0 * b0
		c01 += a0 * b1
		c10 += a1 * b0
		c11 += a1 * b1
		c20 += a2 * b0
		c21 += a2 * b1
		c30 += a3 * b0
		c31 += a3 * b1
		ap = ap[4:]
		bp = bp[2:]
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
