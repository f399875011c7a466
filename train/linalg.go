package train

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// transposeBlock is the tile edge of transpose: a 32×32 float32 tile of
// source and destination (8 KiB) stays in L1.
const transposeBlock = 32

// transpose writes the transpose of the rows×cols matrix src (row stride
// lds) to dst (row stride ldd): dst[j, i] = src[i, j].
func transpose(dst []float32, ldd int, src []float32, lds, rows, cols int) {
	for i0 := 0; i0 < rows; i0 += transposeBlock {
		i1 := min(i0+transposeBlock, rows)
		for j0 := 0; j0 < cols; j0 += transposeBlock {
			j1 := min(j0+transposeBlock, cols)
			for i := i0; i < i1; i++ {
				row := src[i*lds+j0 : i*lds+j1]
				for j, v := range row {
					dst[(j0+j)*ldd+i] = v
				}
			}
		}
	}
}

// addRowSums adds the sum of each row of the rows×n matrix x (row stride
// ldx) to dst, accumulating in float64.
func addRowSums(dst []float32, x []float32, rows, n, ldx int) {
	for r := 0; r < rows; r++ {
		var s float64
		for _, v := range x[r*ldx : r*ldx+n] {
			s += float64(v)
		}
		dst[r] += float32(s)
	}
}

// invertLogDet writes the inverse of the n×n row-major matrix w to inv,
// rounded once to float32, and its transpose in float64 to invT, and
// returns log|det w|, all computed in float64.
func invertLogDet(inv []float32, invT []float64, w []float32, n int) (logDet float64, err error) {
	a := mat.NewDense(n, n, nil)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			a.Set(i, j, float64(w[i*n+j]))
		}
	}
	var d mat.Dense
	if err := d.Inverse(a); err != nil {
		return 0, fmt.Errorf("1x1 convolution is not invertible: %w", err)
	}
	logDet, _ = mat.LogDet(a)
	if math.IsNaN(logDet) || math.IsInf(logDet, 0) {
		return 0, fmt.Errorf("1x1 convolution has log|det| %v", logDet)
	}
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			v := d.At(i, j)
			inv[i*n+j] = float32(v)
			invT[j*n+i] = v
		}
	}
	return logDet, nil
}

// grow returns s with length n, reusing its memory when large enough. The
// contents are unspecified.
func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}
