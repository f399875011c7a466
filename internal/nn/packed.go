package nn

// PackedMatrix is the left operand A of repeated products, packed once
// into the micro-panels the GEMM kernel reads. Gemm packs A afresh on
// every call; when the same A multiplies many right-hand sides (the
// conditioning input of every flow, say) packing it once saves that
// copy, which for a large A and a narrow B costs as much as a fifth of
// the product.
//
// The zero value is an empty matrix; Pack fills it. A PackedMatrix is
// safe for concurrent Mul calls once packed.
type PackedMatrix struct {
	kern   *microKernel
	m, k   int
	mc, kc int
	rows   int // m rounded up to the kernel's tile height
	data   []float32
}

// Pack packs the m×k row-major matrix a (row stride lda) into p, reusing
// p's memory. It panics if a dimension is negative, the stride smaller than
// k or a too short.
func (p *PackedMatrix) Pack(m, k int, a []float32, lda int) {
	p.pack(&gemmKernel, m, k, a, lda)
}

// pack packs a for kern, block by block in the order product reads them:
// the depth blocks one after another, each the row blocks of A.
func (p *PackedMatrix) pack(kern *microKernel, m, k int, a []float32, lda int) {
	checkMatrix("A", m, k, a, lda)
	p.kern, p.m, p.k = kern, m, k
	p.rows = roundUp(m, kern.mr)
	p.data = grow(p.data, p.rows*k)
	if m == 0 || k == 0 {
		return
	}
	p.mc, p.kc = blocking(kern, m, k)
	for pc := 0; pc < k; pc += p.kc {
		kb := min(p.kc, k-pc)
		for ic := 0; ic < m; ic += p.mc {
			mb := min(p.mc, m-ic)
			packA(p.data[pc*p.rows+ic*kb:], kern.mr, mb, kb, a[ic*lda+pc:], lda)
		}
	}
}

// Mul computes C = A·B, or C += A·B when accumulate is true, as Gemm does,
// for A the packed matrix (m×k): B is k×n with row stride ldb, C m×n with
// row stride ldc.
func (p *PackedMatrix) Mul(n int, b []float32, ldb int, c []float32, ldc int, accumulate bool) {
	checkMatrix("B", p.k, n, b, ldb)
	p.mul(n, b, ldb, c, ldc, accumulate, false)
}

// MulNT computes C = A·Bᵀ, or C += A·Bᵀ, as GemmNT does, for A the packed
// matrix: b holds Bᵀ, n×k with row stride ldb.
func (p *PackedMatrix) MulNT(n int, b []float32, ldb int, c []float32, ldc int, accumulate bool) {
	checkMatrix("Bᵀ", n, p.k, b, ldb)
	p.mul(n, b, ldb, c, ldc, accumulate, true)
}

func (p *PackedMatrix) mul(n int, b []float32, ldb int, c []float32, ldc int, accumulate, transB bool) {
	multiply(p.kern, operands{m: p.m, n: n, k: p.k, pa: p, b: b, ldb: ldb, transB: transB, c: c, ldc: ldc, accumulate: accumulate})
}
