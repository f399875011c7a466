package nn

import (
	"runtime"
	"sync"
)

// Cache blocking, the Goto/BLIS scheme sized for Zen 3 (32 KiB L1d and
// 512 KiB L2 per core) and the 4×24 AVX2 kernel: a kc×nr micro-panel of B
// (24 KiB) stays in L1 while the kernel sweeps it with the micro-panels of
// an mc×kc block of A (128 KiB, in L2); the packed kc×nc panel of B
// (2 MiB) is read from L3. kc from 192 to 320 and mc from 96 to 192
// measured the same within noise on the model's shapes; nc of 2048 beat
// 1024 (A is packed once per panel) and 8192.
const (
	kcMax = 256  // depth of the panels (K direction)
	mcMax = 128  // rows of a packed A block (M direction)
	ncMax = 2048 // columns of a packed B panel (N direction)
)

// Parallel split. A call is spread over up to runtime.GOMAXPROCS(0)
// goroutines, each given at least minWorkerFlops of work (about 0.1 ms),
// so small products stay on the calling goroutine: on the 2-core test
// machine splitting [32×32]·[32×5500] (11 MFLOP) was slower than not,
// [64×32]·[32×5500] (22 MFLOP) faster.
const (
	minWorkerFlops = 1 << 23
	// minWorkerCols is the fewest columns a worker gets when the work is
	// split along N; narrower products are split along M instead.
	minWorkerCols = 64
	// colAlign keeps column splits on 64-byte boundaries of C's rows.
	colAlign = 16
)

// Gemm computes C = A·B, or C += A·B when accumulate is true, for row-major
// matrices: A is m×k with row stride lda, B is k×n with row stride ldb and
// C is m×n with row stride ldc. Strides let callers pass views, e.g. a
// shifted window of a zero-padded input for one tap of a dilated
// convolution. Elements of C outside the m×n view are not touched; C must
// not overlap A or B.
//
// The products are summed in a blocked order, so results differ from the
// textbook loop by float32 rounding only. Large products are split over
// up to runtime.GOMAXPROCS(0) goroutines; Gemm is safe for concurrent use.
//
// Gemm panics if a dimension is negative, a stride is smaller than its
// row width, or a slice is too short for its view.
func Gemm(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, accumulate bool) {
	checkMatrix("B", k, n, b, ldb)
	multiply(&gemmKernel, operands{m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc, accumulate: accumulate})
}

// GemmNT computes C = A·Bᵀ, or C += A·Bᵀ when accumulate is true: Gemm
// with B given transposed, as the n×k row-major matrix b (row stride
// ldb). It is the product behind weight gradients, Σ_t dY[o, t]·X[i, t],
// where both operands run along time: the transpose happens while B is
// packed, with no extra pass over memory.
//
// Like Gemm it is safe for concurrent use, splits large products over
// goroutines, and panics on negative dimensions, short slices or strides
// smaller than a row.
func GemmNT(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, accumulate bool) {
	checkMatrix("Bᵀ", n, k, b, ldb)
	multiply(&gemmKernel, operands{m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, transB: true, c: c, ldc: ldc, accumulate: accumulate})
}

// operands describes one product C (+)= A·B: the dimensions, A as a view
// (a, lda) or packed (pa), B as a view of B or, with transB, of Bᵀ, and C.
type operands struct {
	m, n, k    int
	a          []float32
	lda        int
	pa         *PackedMatrix
	b          []float32
	ldb        int
	transB     bool
	c          []float32
	ldc        int
	accumulate bool
}

// multiply checks A (unless it is packed) and C, settles empty products
// and runs gemm; B has been checked.
func multiply(kern *microKernel, op operands) {
	if op.pa == nil {
		checkMatrix("A", op.m, op.k, op.a, op.lda)
	}
	checkMatrix("C", op.m, op.n, op.c, op.ldc)
	if op.m == 0 || op.n == 0 {
		return
	}
	if op.k == 0 {
		if !op.accumulate {
			for i := 0; i < op.m; i++ {
				clear(op.c[i*op.ldc : i*op.ldc+op.n])
			}
		}
		return
	}
	gemm(kern, op)
}

// checkMatrix panics unless s can hold a rows×cols row-major view with row
// stride ld.
func checkMatrix(name string, rows, cols int, s []float32, ld int) {
	switch {
	case rows < 0 || cols < 0:
		panic("nn: negative dimension of " + name)
	case ld < cols || ld < 0:
		panic("nn: row stride of " + name + " smaller than its width")
	case rows > 0 && cols > 0 && len(s) < (rows-1)*ld+cols:
		panic("nn: slice too short for " + name)
	}
}

// gemm runs the blocked product with micro-kernel kern, fanning out over
// goroutines when the work is large enough. A packed A must be packed for
// kern. Dimensions are positive and the views valid.
func gemm(kern *microKernel, op operands) {
	m, n := op.m, op.n
	flops := 2 * float64(m) * float64(n) * float64(op.k)
	workers := min(runtime.GOMAXPROCS(0), int(flops/minWorkerFlops))
	// Split along N (time) when every worker gets a reasonable number of
	// columns, otherwise along M (never a packed A). Column splits fall on
	// whole micro-panels and 64-byte boundaries.
	alongN := n >= workers*minWorkerCols
	if op.pa != nil && !alongN {
		workers = 1
	}
	align, size := kern.nr, n
	for align%colAlign != 0 {
		align += kern.nr
	}
	if !alongN {
		align, size = kern.mr, m
	}
	workers = min(workers, ceilDiv(size, align))
	if workers <= 1 {
		s := getScratch(kern)
		s.product(kern, op)
		scratchPool.Put(s)
		return
	}

	f := getFan[gemmPart](&gemmFanPool)
	chunk := roundUp(ceilDiv(size, workers), align)
	for lo := 0; lo < size; lo += chunk {
		p := gemmPart{wg: &f.wg, kern: kern, op: op}
		hi := min(lo+chunk, size)
		if alongN {
			p.op.n, p.op.b, p.op.c = hi-lo, op.b[bOffset(0, lo, op.ldb, op.transB):], op.c[lo:]
		} else {
			p.op.m, p.op.a, p.op.c = hi-lo, op.a[lo*op.lda:], op.c[lo*op.ldc:]
		}
		f.parts = append(f.parts, p)
	}
	runFan(&gemmFanPool, f)
}

// gemmPart is one worker's share of a split product.
type gemmPart struct {
	wg   *sync.WaitGroup
	kern *microKernel
	op   operands
}

func (p *gemmPart) run() {
	s := getScratch(p.kern)
	s.product(p.kern, p.op)
	scratchPool.Put(s)
	p.wg.Done()
}

// gemmFanPool holds the state of split products.
var gemmFanPool = sync.Pool{New: func() any { return new(fan[gemmPart]) }}

// scratch is one goroutine's packing memory.
type scratch struct {
	a    []float32 // packed block of A: mc/mr micro-panels of mr×kc
	b    []float32 // packed panel of B: nc/nr micro-panels of kc×nr
	tile []float32 // mc×nr results of a strip of edge tiles
}

// scratchPool recycles scratch so steady-state calls do not allocate.
var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// getScratch returns pooled scratch sized for kern.
func getScratch(kern *microKernel) *scratch {
	s := scratchPool.Get().(*scratch)
	s.tile = grow(s.tile, roundUp(mcMax, kern.mr)*kern.nr)
	return s
}

// grow returns s with length n, reusing its memory when large enough.
func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// bSource says where the macro-kernel finds the micro-panels of B.
type bSource int

const (
	bPacked bSource = iota // packed in scratch by an earlier pass
	bPack                  // packed into scratch by this pass, just before use
	bDirect                // read in place from the caller's matrix
)

// bOffset returns the index of B[p, j] in b, the caller's B (row stride
// ldb) or, with transB, Bᵀ.
func bOffset(p, j, ldb int, transB bool) int {
	if transB {
		return j*ldb + p
	}
	return p*ldb + j
}

// product computes C (+)= A·B single-threaded: the three cache-blocking
// loops of the Goto/BLIS scheme around the macro-kernel. Bᵀ (transB) is
// always packed.
//
// The first block of A packs each micro-panel of B right before the
// kernel uses it, so B comes from memory once and is hot when first used;
// later blocks of A reuse the packed panel. When one block of A covers all
// of M, every micro-panel of B is used once, so the kernel reads B in
// place: packing would only add a copy, which costs as much as the
// arithmetic when M is small (and K too, see below).
func (s *scratch) product(kern *microKernel, op operands) {
	m, n, k := op.m, op.n, op.k
	a, lda, pa := op.a, op.lda, op.pa
	b, ldb, transB := op.b, op.ldb, op.transB
	c, ldc := op.c, op.ldc
	mc, kc := blocking(kern, m, k)
	nc := roundUp(ceilDiv(n, ceilDiv(n, ncMax)), kern.nr)
	// Reading B in place walks kc rows of B for every micro-panel, each
	// row on its own page once ldb is large: past 64 rows that overflows
	// the L1 TLB (64 entries on Zen 3), so deeper blocks are packed
	// (the training upsampler's 63×80·80×4096: 37–40 → 55–60 GFLOP/s on
	// one core, BenchmarkGemm/M63_K80_N4096).
	direct := m <= mc && !transB && kc <= 64
	if pa == nil {
		s.a = grow(s.a, mc*kc)
	}
	if direct {
		nc = n
		s.b = grow(s.b, kern.nr*kc) // the edge micro-panel only
	} else {
		s.b = grow(s.b, roundUp(nc, kern.nr)*kc)
	}
	for jc := 0; jc < n; jc += nc {
		nb := min(nc, n-jc)
		for pc := 0; pc < k; pc += kc {
			kb := min(kc, k-pc)
			bv := b[bOffset(pc, jc, ldb, transB):]
			acc := op.accumulate || pc > 0
			for ic := 0; ic < m; ic += mc {
				mb := min(mc, m-ic)
				ap := s.a
				if pa != nil {
					ap = pa.data[pc*pa.rows+ic*kb:]
				} else {
					packA(ap, kern.mr, mb, kb, a[ic*lda+pc:], lda)
				}
				src := bPacked
				switch {
				case direct:
					src = bDirect
				case ic == 0:
					src = bPack
				}
				s.macro(kern, ap, mb, nb, kb, bv, ldb, src, transB, c[ic*ldc+jc:], ldc, acc)
			}
		}
	}
}

// blocking returns the row and depth blocks, mc and kc, of products of
// m×k matrices A with kern: each dimension is split into equal blocks, so
// no block is a sliver.
func blocking(kern *microKernel, m, k int) (mc, kc int) {
	kc = ceilDiv(k, ceilDiv(k, kcMax))
	mc = roundUp(ceilDiv(m, ceilDiv(m, mcMax)), kern.mr)
	return mc, kc
}

// macro multiplies the packed mb×kb block of A, ap, by the kb×nb panel of B
// into C, one strip of micro-panel tiles per kernel call. src says where
// the micro-panels of B are; b (row stride ldb) is the caller's panel, or
// its transpose with transB (then src is never bDirect).
// Edge tiles go through s.tile so the kernel never writes outside the
// view.
func (s *scratch) macro(kern *microKernel, ap []float32, mb, nb, kb int, b []float32, ldb int, src bSource, transB bool, c []float32, ldc int, accumulate bool) {
	mr, nr := kern.mr, kern.nr
	full := mb / mr // tiles of full height
	for jr := 0; jr < nb; jr += nr {
		w := min(nr, nb-jr)
		var bp []float32
		ld := nr
		switch {
		case src == bPacked:
			bp = s.b[jr*kb:]
		case src == bPack && transB:
			bp = s.b[jr*kb:]
			packBT(bp, nr, kb, w, b[jr*ldb:], ldb)
		case src == bPack:
			bp = s.b[jr*kb:]
			packB(bp, nr, kb, w, b[jr:], ldb)
		case w == nr:
			bp, ld = b[jr:], ldb
		default: // the edge of a direct panel
			bp = s.b
			packB(bp, nr, kb, w, b[jr:], ldb)
		}
		// The kernel prefetches the source of the next micro-panel of B.
		var next []float32
		ldn := ldb
		switch {
		case jr+nr >= nb, transB && src != bPacked:
		case src != bPacked:
			next = b[jr+nr:]
		default:
			next, ldn = s.b[(jr+nr)*kb:], nr
		}
		ir := 0
		if w == nr && full > 0 {
			kern.strip(kb, full, ap, bp, ld, c[jr:], ldc, next, ldn, accumulate)
			ir = full * mr
		}
		if ir == mb {
			continue
		}
		kern.strip(kb, ceilDiv(mb-ir, mr), ap[ir*kb:], bp, ld, s.tile, nr, next, ldn, false)
		for i := 0; ir+i < mb; i++ {
			dst := c[(ir+i)*ldc+jr : (ir+i)*ldc+jr+w]
			t := s.tile[i*nr:]
			t = t[:len(dst)]
			if accumulate {
				for j := range dst {
					dst[j] += t[j]
				}
			} else {
				copy(dst, t)
			}
		}
	}
}

// packA copies the rows×kc block of A (row stride lda) into dst as
// ceil(rows/mr) micro-panels, each kc columns of mr consecutive values;
// rows past the end are zero.
func packA(dst []float32, mr, rows, kc int, a []float32, lda int) {
	for i0 := 0; i0 < rows; i0 += mr {
		panel := dst[i0*kc : (i0+mr)*kc]
		h := min(mr, rows-i0)
		if h == 4 && mr == 4 {
			packA4(panel, kc, a[i0*lda:], lda)
			continue
		}
		for i := 0; i < h; i++ {
			src := a[(i0+i)*lda : (i0+i)*lda+kc]
			for p, v := range src {
				panel[p*mr+i] = v
			}
		}
		for i := h; i < mr; i++ {
			for p := 0; p < kc; p++ {
				panel[p*mr+i] = 0
			}
		}
	}
}

// packA4 packs four rows of A into a micro-panel of mr = 4, writing it
// sequentially.
func packA4(panel []float32, kc int, a []float32, lda int) {
	r0 := a[:kc]
	r1 := a[lda : lda+kc]
	r2 := a[2*lda : 2*lda+kc]
	r3 := a[3*lda : 3*lda+kc]
	panel = panel[:4*kc]
	for p := range r0 {
		d := (*[4]float32)(panel[4*p:])
		d[0], d[1], d[2], d[3] = r0[p], r1[p], r2[p], r3[p]
	}
}

// packB copies the kc×w block of B (row stride ldb, w ≤ nr) into dst as
// a micro-panel: kc rows of nr consecutive values, zero past column w.
func packB(dst []float32, nr, kc, w int, b []float32, ldb int) {
	dst = dst[:kc*nr]
	if w == 24 && nr == 24 {
		for p := range kc {
			*(*[24]float32)(dst[p*24:]) = *(*[24]float32)(b[p*ldb:])
		}
		return
	}
	for p := range kc {
		d := dst[p*nr : p*nr+nr]
		copy(d, b[p*ldb:p*ldb+w])
		clear(d[w:])
	}
}

// packBT packs the w×kc block of Bᵀ (row stride ldb, w ≤ nr) into dst as
// a micro-panel of B: kc rows of nr values, row p holding column p of the
// block, zero past w.
func packBT(dst []float32, nr, kc, w int, bt []float32, ldb int) {
	dst = dst[:kc*nr]
	if nr != 24 {
		packA(dst, nr, w, kc, bt, ldb) // the same layout: one micro-panel of A
		return
	}
	// Eight columns of the rows at a time: the 8×24 block of dst (768
	// bytes) stays in L1 while the rows are read in order.
	p0 := 0
	for ; p0+8 <= kc; p0 += 8 {
		d := (*[8 * 24]float32)(dst[p0*24:])
		for i := 0; i < w; i++ {
			r := (*[8]float32)(bt[i*ldb+p0:])
			d[i], d[24+i], d[48+i], d[72+i] = r[0], r[1], r[2], r[3]
			d[96+i], d[120+i], d[144+i], d[168+i] = r[4], r[5], r[6], r[7]
		}
		for i := w; i < 24; i++ {
			d[i], d[24+i], d[48+i], d[72+i] = 0, 0, 0, 0
			d[96+i], d[120+i], d[144+i], d[168+i] = 0, 0, 0, 0
		}
	}
	for p := p0; p < kc; p++ {
		row := dst[p*24 : p*24+24]
		for i := range row {
			if i < w {
				row[i] = bt[i*ldb+p]
			} else {
				row[i] = 0
			}
		}
	}
}

// ceilDiv returns ⌈a/b⌉ for positive b.
func ceilDiv(a, b int) int { return (a + b - 1) / b }

// roundUp returns the least multiple of b not below a.
func roundUp(a, b int) int { return ceilDiv(a, b) * b }
