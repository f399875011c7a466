package nn

import (
	"runtime"
	"sync"
)

// Cache blocking. A kc×nc panel of B is packed once and swept by every
// mc×kc block of A; an mc×kc block of A (128 KiB) stays in L2 while the
// kernel streams the B panel's kc×nr micro-panels through L1.
const (
	kcMax = 256  // depth of the packed panels (K direction)
	mcMax = 128  // rows of a packed A block (M direction)
	ncMax = 1024 // columns of a packed B panel (N direction)
)

// Parallel split. A call is spread over up to runtime.GOMAXPROCS(0)
// goroutines, each given at least minWorkerFlops of work, so small
// products stay on the calling goroutine.
const (
	minWorkerFlops = 1 << 20
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
	checkMatrix("A", m, k, a, lda)
	checkMatrix("B", k, n, b, ldb)
	checkMatrix("C", m, n, c, ldc)
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		if !accumulate {
			for i := 0; i < m; i++ {
				clear(c[i*ldc : i*ldc+n])
			}
		}
		return
	}
	gemm(&gemmKernel, m, n, k, a, lda, b, ldb, c, ldc, accumulate)
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
// goroutines when the work is large enough. Dimensions are positive and
// the views valid.
func gemm(kern *microKernel, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, accumulate bool) {
	flops := 2 * float64(m) * float64(n) * float64(k)
	workers := min(runtime.GOMAXPROCS(0), int(flops/minWorkerFlops))
	// Split along N (time) when every worker gets a reasonable number of
	// columns, otherwise along M.
	alongN := n >= workers*minWorkerCols
	if alongN {
		workers = min(workers, ceilDiv(n, colAlign))
	} else {
		workers = min(workers, ceilDiv(m, kern.mr))
	}
	if workers <= 1 {
		s := getScratch(kern)
		s.product(kern, m, n, k, a, lda, b, ldb, c, ldc, accumulate)
		scratchPool.Put(s)
		return
	}

	var wg sync.WaitGroup
	align, size := colAlign, n
	if !alongN {
		align, size = kern.mr, m
	}
	chunk := min(roundUp(ceilDiv(size, workers), align), size)
	for lo := chunk; lo < size; lo += chunk {
		hi := min(lo+chunk, size)
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := getScratch(kern)
			if alongN {
				s.product(kern, m, hi-lo, k, a, lda, b[lo:], ldb, c[lo:], ldc, accumulate)
			} else {
				s.product(kern, hi-lo, n, k, a[lo*lda:], lda, b, ldb, c[lo*ldc:], ldc, accumulate)
			}
			scratchPool.Put(s)
		}()
	}
	s := getScratch(kern)
	if alongN {
		s.product(kern, m, chunk, k, a, lda, b, ldb, c, ldc, accumulate)
	} else {
		s.product(kern, chunk, n, k, a, lda, b, ldb, c, ldc, accumulate)
	}
	scratchPool.Put(s)
	wg.Wait()
}

// scratch is one goroutine's packing memory.
type scratch struct {
	a    []float32 // packed block of A: mc/mr micro-panels of mr×kc
	b    []float32 // packed panel of B: nc/nr micro-panels of kc×nr
	tile []float32 // mr×nr result of an edge tile
}

// scratchPool recycles scratch so steady-state calls do not allocate.
var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// getScratch returns pooled scratch sized for kern.
func getScratch(kern *microKernel) *scratch {
	s := scratchPool.Get().(*scratch)
	s.a = grow(s.a, roundUp(mcMax, kern.mr)*kcMax)
	s.b = grow(s.b, roundUp(ncMax, kern.nr)*kcMax)
	s.tile = grow(s.tile, kern.mr*kern.nr)
	return s
}

// grow returns s with length n, reusing its memory when large enough.
func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// product computes C (+)= A·B single-threaded: the three cache-blocking
// loops of the Goto/BLIS scheme around the packed macro-kernel.
func (s *scratch) product(kern *microKernel, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, accumulate bool) {
	// Split each dimension into equal blocks so no block is a sliver.
	kc := ceilDiv(k, ceilDiv(k, kcMax))
	mc := roundUp(ceilDiv(m, ceilDiv(m, mcMax)), kern.mr)
	nc := roundUp(ceilDiv(n, ceilDiv(n, ncMax)), kern.nr)
	for jc := 0; jc < n; jc += nc {
		nb := min(nc, n-jc)
		for pc := 0; pc < k; pc += kc {
			kb := min(kc, k-pc)
			packB(s.b, kern.nr, kb, nb, b[pc*ldb+jc:], ldb)
			acc := accumulate || pc > 0
			for ic := 0; ic < m; ic += mc {
				mb := min(mc, m-ic)
				packA(s.a, kern.mr, mb, kb, a[ic*lda+pc:], lda)
				s.macro(kern, mb, nb, kb, c[ic*ldc+jc:], ldc, acc)
			}
		}
	}
}

// macro multiplies the packed mb×kb block of A by the packed kb×nb panel
// of B into C, one mr×nr tile per micro-kernel call. Edge tiles go through
// s.tile so the kernel never writes outside the view.
func (s *scratch) macro(kern *microKernel, mb, nb, kb int, c []float32, ldc int, accumulate bool) {
	mr, nr := kern.mr, kern.nr
	for jr := 0; jr < nb; jr += nr {
		w := min(nr, nb-jr)
		bp := s.b[jr*kb : (jr+nr)*kb]
		for ir := 0; ir < mb; ir += mr {
			h := min(mr, mb-ir)
			ap := s.a[ir*kb : (ir+mr)*kb]
			if h == mr && w == nr {
				kern.fn(kb, ap, bp, c[ir*ldc+jr:], ldc, accumulate)
				continue
			}
			kern.fn(kb, ap, bp, s.tile, nr, false)
			for i := 0; i < h; i++ {
				dst := c[(ir+i)*ldc+jr : (ir+i)*ldc+jr+w]
				src := s.tile[i*nr:]
				src = src[:len(dst)]
				if accumulate {
					for j := range dst {
						dst[j] += src[j]
					}
				} else {
					copy(dst, src)
				}
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

// packB copies the kc×cols panel of B (row stride ldb) into dst as
// ceil(cols/nr) micro-panels, each kc rows of nr consecutive values;
// columns past the end are zero.
func packB(dst []float32, nr, kc, cols int, b []float32, ldb int) {
	j0 := 0
	for ; j0+nr <= cols; j0 += nr {
		panel := dst[j0*kc : (j0+nr)*kc]
		for p := 0; p < kc; p++ {
			src := b[p*ldb+j0 : p*ldb+j0+nr]
			d := panel[p*nr : p*nr+len(src)]
			for j, v := range src {
				d[j] = v
			}
		}
	}
	if j0 == cols {
		return
	}
	panel := dst[j0*kc : (j0+nr)*kc]
	w := cols - j0
	for p := 0; p < kc; p++ {
		d := panel[p*nr : p*nr+nr]
		copy(d, b[p*ldb+j0:p*ldb+j0+w])
		clear(d[w:])
	}
}

// ceilDiv returns ⌈a/b⌉ for positive b.
func ceilDiv(a, b int) int { return (a + b - 1) / b }

// roundUp returns the least multiple of b not below a.
func roundUp(a, b int) int { return ceilDiv(a, b) * b }
