package nn

import (
	"runtime"
	"sync"
)

// TransposeBlocks moves a sequence of row-major [rows × block] blocks into
// place as consecutive column blocks of a [rows × cols] matrix, adding a
// bias to each row:
//
//	dst[r, t·block + j] = src[t, r, j] + bias[r]
//
// for r < rows and t·block + j < cols. src holds ⌈cols/block⌉ blocks one
// after another ([⌈cols/block⌉ × rows × block] row-major); the columns of
// the last block past cols are dropped. dst is [rows × cols] row-major and
// must not overlap src. bias has rows values, or is nil for none. block
// must be positive.
//
// It is the scatter after a GEMM whose output rows each hold block
// consecutive columns of every output channel, as in a strided transposed
// convolution computed frame by frame. src is read in order. Large calls
// are split by blocks over up to runtime.GOMAXPROCS(0) goroutines.
func TransposeBlocks(dst []float32, cols int, src []float32, rows, block int, bias []float32) {
	if rows < 0 || cols < 0 {
		panic("nn: negative dimension in TransposeBlocks")
	}
	if block <= 0 {
		panic("nn: TransposeBlocks block must be positive")
	}
	if rows == 0 || cols == 0 {
		return
	}
	blocks := ceilDiv(cols, block)
	dst = dst[:rows*cols]
	src = src[:blocks*rows*block]
	if bias != nil {
		bias = bias[:rows]
	}
	workers := min(runtime.GOMAXPROCS(0), blocks*rows*block/minTransposeValues, blocks)
	if workers <= 1 {
		p := transposePart{dst: dst, cols: cols, src: src, rows: rows, block: block, bias: bias, t1: blocks}
		p.apply()
		return
	}
	f := getFan[transposePart](&transposeFanPool)
	chunk := ceilDiv(blocks, workers)
	for t0 := 0; t0 < blocks; t0 += chunk {
		f.parts = append(f.parts, transposePart{
			wg: &f.wg, dst: dst, cols: cols, src: src, rows: rows, block: block, bias: bias,
			t0: t0, t1: min(t0+chunk, blocks),
		})
	}
	runFan(&transposeFanPool, f)
}

// minTransposeValues is the fewest values a goroutine of a split
// TransposeBlocks gets (a little over 0.1 ms of memory traffic).
const minTransposeValues = 1 << 18

// transposePart is one goroutine's blocks [t0, t1) of a TransposeBlocks.
type transposePart struct {
	wg                *sync.WaitGroup
	dst, src, bias    []float32
	cols, rows, block int
	t0, t1            int
}

func (p *transposePart) run() {
	p.apply()
	p.wg.Done()
}

// apply moves the part's blocks.
func (p *transposePart) apply() {
	rows, block, cols := p.rows, p.block, p.cols
	for t := p.t0; t < p.t1; t++ {
		c0 := t * block
		n := min(block, cols-c0)
		blk := p.src[t*rows*block : (t+1)*rows*block]
		for r := 0; r < rows; r++ {
			in := blk[r*block : r*block+n]
			out := p.dst[r*cols+c0 : r*cols+c0+n]
			out = out[:len(in)]
			if p.bias == nil {
				copy(out, in)
				continue
			}
			b := p.bias[r]
			for j, v := range in {
				out[j] = v + b
			}
		}
	}
}

// transposeFanPool holds the state of split TransposeBlocks calls.
var transposeFanPool = sync.Pool{New: func() any { return new(fan[transposePart]) }}
