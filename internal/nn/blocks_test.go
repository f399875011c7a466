package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// transposeBlocksRef is TransposeBlocks as a plain loop over dst.
func transposeBlocksRef(dst []float32, cols int, src []float32, rows, block int, bias []float32) {
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			t, j := c/block, c%block
			v := src[(t*rows+r)*block+j]
			if bias != nil {
				v += bias[r]
			}
			dst[r*cols+c] = v
		}
	}
}

func TestTransposeBlocks(t *testing.T) {
	tests := []struct {
		rows, cols, block int
		procs             int
		noBias            bool
	}{
		{rows: 1, cols: 1, block: 1, procs: 1},
		{rows: 3, cols: 7, block: 7, procs: 1},  // one whole block
		{rows: 3, cols: 5, block: 7, procs: 1},  // one partial block
		{rows: 5, cols: 23, block: 4, procs: 1}, // cols not a multiple of block
		{rows: 5, cols: 23, block: 4, procs: 1, noBias: true},
		{rows: 17, cols: 96, block: 32, procs: 4},         // below the split threshold
		{rows: 67, cols: 33*130 + 7, block: 33, procs: 4}, // just under two parts' worth
		// Split over goroutines: 2 and 3 parts, the last one shorter.
		{rows: 97, cols: 31*180 + 5, block: 31, procs: 2},
		{rows: 97, cols: 31*180 + 5, block: 31, procs: 2, noBias: true},
		{rows: 131, cols: 37*201 + 11, block: 37, procs: 4},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("r%d_c%d_b%d_procs%d", tt.rows, tt.cols, tt.block, tt.procs)
		if tt.noBias {
			name += "_nobias"
		}
		t.Run(name, func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(tt.procs))
			rng := rand.New(rand.NewPCG(uint64(tt.rows), uint64(tt.cols)))
			blocks := (tt.cols + tt.block - 1) / tt.block
			src := randSlice(rng, blocks*tt.rows*tt.block)
			var bias []float32
			if !tt.noBias {
				bias = randSlice(rng, tt.rows)
			}
			want := make([]float32, tt.rows*tt.cols)
			transposeBlocksRef(want, tt.cols, src, tt.rows, tt.block, bias)
			// dst is longer than needed and starts as NaN: every value in
			// range must be written, none past it.
			const guard = 9
			got := make([]float32, tt.rows*tt.cols+guard)
			for i := range got {
				got[i] = float32(math.NaN())
			}
			TransposeBlocks(got, tt.cols, src, tt.rows, tt.block, bias)
			for i, w := range want {
				if got[i] != w {
					t.Fatalf("dst[%d, %d] = %v, want %v", i/tt.cols, i%tt.cols, got[i], w)
				}
			}
			for i, g := range got[len(want):] {
				if !math.IsNaN(float64(g)) {
					t.Fatalf("dst[%d] past the matrix written: %v", len(want)+i, g)
				}
			}
		})
	}
}

func TestTransposeBlocksEmptyAndPanics(t *testing.T) {
	TransposeBlocks(nil, 0, nil, 4, 3, nil) // nothing to do
	TransposeBlocks(nil, 5, nil, 0, 3, nil)
	for _, tt := range []struct {
		name              string
		dst, src, bias    []float32
		cols, rows, block int
	}{
		{name: "negative cols", cols: -1, rows: 2, block: 2},
		{name: "negative rows", cols: 2, rows: -1, block: 2},
		{name: "zero block", cols: 2, rows: 2, block: 0},
		{name: "short dst", dst: make([]float32, 5), src: make([]float32, 6), cols: 3, rows: 2, block: 3},
		{name: "short src", dst: make([]float32, 6), src: make([]float32, 5), cols: 3, rows: 2, block: 3},
		{name: "short last block", dst: make([]float32, 8), src: make([]float32, 8), cols: 4, rows: 2, block: 3},
		{name: "short bias", dst: make([]float32, 6), src: make([]float32, 6), bias: make([]float32, 1), cols: 3, rows: 2, block: 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			TransposeBlocks(tt.dst, tt.cols, tt.src, tt.rows, tt.block, tt.bias)
		})
	}
}

// TestTransposeBlocksAllocs checks that steady-state calls do not allocate
// on one goroutine, and bounds the allocations of the goroutine fan-out.
func TestTransposeBlocksAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop scratch")
	}
	const rows, block, cols = 256, 32, 5504 // the small model's fused conditioning
	src := make([]float32, rows*cols)
	dst := make([]float32, rows*cols)
	bias := make([]float32, rows)
	for _, tt := range []struct {
		procs int
		max   float64
	}{{1, 0}, {2, 0.5}, {4, 0.5}} {
		t.Run(fmt.Sprintf("procs%d", tt.procs), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(tt.procs))
			got := allocsPerRun(100, func() {
				TransposeBlocks(dst, cols, src, rows, block, bias)
			})
			t.Logf("%v allocations per call", got)
			if got > tt.max {
				t.Errorf("%v allocations per call, want at most %v", got, tt.max)
			}
		})
	}
}

// BenchmarkTransposeBlocks measures the small model's fused conditioning
// scatter for one flow (2 s of audio: 256 rows, blocks of 32 columns).
func BenchmarkTransposeBlocks(b *testing.B) {
	const rows, block, cols = 256, 32, 5504
	rng := rand.New(rand.NewPCG(9, 10))
	src := randSlice(rng, rows*cols)
	bias := randSlice(rng, rows)
	dst := make([]float32, rows*cols)
	b.ReportAllocs()
	b.SetBytes(2 * 4 * rows * cols) // read src, write dst
	for b.Loop() {
		TransposeBlocks(dst, cols, src, rows, block, bias)
	}
}
