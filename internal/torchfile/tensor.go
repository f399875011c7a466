package torchfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/glowvoc/glowvoc/internal/float16"
)

// maxDims bounds the rank of a tensor (PyTorch's own limit is 64).
const maxDims = 64

// dtype is the element type of a storage.
type dtype int

const (
	float32Type dtype = iota
	float64Type
	float16Type
	bfloat16Type
	int64Type
	int32Type
	int16Type
	int8Type
	uint8Type
	boolType
)

// size is the element size in bytes.
func (d dtype) size() int64 {
	switch d {
	case float64Type, int64Type:
		return 8
	case float32Type, int32Type:
		return 4
	case float16Type, bfloat16Type, int16Type:
		return 2
	}
	return 1
}

// decoder returns a function converting one element, stored in b[:d.size()]
// with the given byte order, to float32. Conversions round to nearest like
// PyTorch's .float(); float16 and bfloat16 widen exactly.
func (d dtype) decoder(order binary.ByteOrder) func(b []byte) float32 {
	switch d {
	case float32Type:
		return func(b []byte) float32 { return math.Float32frombits(order.Uint32(b)) }
	case float64Type:
		return func(b []byte) float32 { return float32(math.Float64frombits(order.Uint64(b))) }
	case float16Type:
		return func(b []byte) float32 { return float16.ToFloat32(order.Uint16(b)) }
	case bfloat16Type:
		return func(b []byte) float32 { return float16.BFloat16ToFloat32(order.Uint16(b)) }
	case int64Type:
		return func(b []byte) float32 { return float32(int64(order.Uint64(b))) }
	case int32Type:
		return func(b []byte) float32 { return float32(int32(order.Uint32(b))) }
	case int16Type:
		return func(b []byte) float32 { return float32(int16(order.Uint16(b))) }
	case int8Type:
		return func(b []byte) float32 { return float32(int8(b[0])) }
	case uint8Type:
		return func(b []byte) float32 { return float32(b[0]) }
	}
	return func(b []byte) float32 {
		if b[0] != 0 {
			return 1
		}
		return 0
	}
}

// storage is a PyTorch storage named by a persistent id: a flat array of
// numel elements of one dtype, whose bytes the container provides.
type storage struct {
	key   string
	dtype dtype
	numel int64
	data  storageData // nil until the container has located the bytes
}

// storageData reads the raw bytes of a storage.
type storageData interface {
	// readAt returns n bytes starting at byte offset off. The container has
	// checked that the storage's numel·size bytes are available.
	readAt(off, n int64) ([]byte, error)
}

// sectionData is storage bytes at a known place in the file (legacy format,
// stored zip members).
type sectionData struct {
	r   io.ReaderAt
	off int64
}

func (s sectionData) readAt(off, n int64) ([]byte, error) {
	b := make([]byte, n)
	if err := readFullAt(s.r, b, s.off+off); err != nil {
		return nil, fmt.Errorf("read storage: %w", err)
	}
	return b, nil
}

// readFullAt fills b from r at off. Unlike a bare ReadAt, it accepts io.EOF
// together with a complete read, which io.ReaderAt allows at the end of the
// input.
func readFullAt(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// tensorRef is a tensor as pickled: a strided view of a storage.
type tensorRef struct {
	st     *storage
	shape  []int
	stride []int
	numel  int64
	lo, hi int64 // range of storage elements the view touches (hi exclusive)
}

// newTensorRef validates a view: non-negative sizes and strides, and every
// element inside the storage.
func newTensorRef(st *storage, offset int, shape, stride []int) (*tensorRef, error) {
	if len(shape) != len(stride) {
		return nil, fmt.Errorf("%w: tensor has %d sizes but %d strides", ErrFormat, len(shape), len(stride))
	}
	if len(shape) > maxDims {
		return nil, fmt.Errorf("%w: tensor has %d dimensions", ErrFormat, len(shape))
	}
	if offset < 0 {
		return nil, fmt.Errorf("%w: negative storage offset %d", ErrFormat, offset)
	}
	t := &tensorRef{st: st, shape: shape, stride: stride, numel: 1}
	for i, n := range shape {
		if n < 0 || stride[i] < 0 {
			return nil, fmt.Errorf("%w: tensor size %v, stride %v", ErrFormat, shape, stride)
		}
	}
	for _, n := range shape {
		if n != 0 && t.numel > math.MaxInt64/int64(n) {
			return nil, fmt.Errorf("%w: tensor of size %v", ErrLimit, shape)
		}
		t.numel *= int64(n)
	}
	if t.numel == 0 {
		return t, nil
	}
	// The last element touched, offset + Σ (size-1)·stride, must lie inside
	// the storage; the partial sums are checked before they can overflow.
	last := int64(offset)
	for i, n := range shape {
		step := int64(stride[i])
		if step != 0 && int64(n-1) > (st.numel-last)/step {
			return nil, fmt.Errorf("%w: tensor of size %v, stride %v at offset %d exceeds its storage of %d elements",
				ErrFormat, shape, stride, offset, st.numel)
		}
		last += int64(n-1) * step
	}
	if last >= st.numel {
		return nil, fmt.Errorf("%w: tensor of size %v, stride %v at offset %d exceeds its storage of %d elements",
			ErrFormat, shape, stride, offset, st.numel)
	}
	t.lo, t.hi = int64(offset), last+1
	return t, nil
}

// contiguous reports whether the view is C-ordered without gaps.
func (t *tensorRef) contiguous() bool {
	want := 1
	for i := len(t.shape) - 1; i >= 0; i-- {
		if t.shape[i] != 1 && t.stride[i] != want {
			return false
		}
		want *= t.shape[i]
	}
	return true
}

// budget limits the tensor memory a file can make the loader allocate.
type budget struct{ left int64 }

// newBudget allows 16 times the file size plus 16 MiB: a file in which no
// two tensors share a storage needs at most 3 times its size (raw bytes, then
// float32 from float16).
func newBudget(fileSize int64) *budget {
	return &budget{left: 16*fileSize + 16<<20}
}

// take reserves n elements of the given size in bytes.
func (b *budget) take(n, size int64) error {
	if n > b.left/size {
		return fmt.Errorf("%w: tensors need more memory than the file size justifies", ErrLimit)
	}
	b.left -= n * size
	return nil
}

// convert reads a tensor and converts it to contiguous float32.
func convert(t *tensorRef, order binary.ByteOrder, b *budget) (Tensor, error) {
	out := Tensor{Shape: append([]int{}, t.shape...)}
	if err := b.take(t.numel, 4); err != nil {
		return Tensor{}, err
	}
	out.Data = make([]float32, t.numel)
	if t.numel == 0 {
		return out, nil
	}
	if t.st.data == nil {
		return Tensor{}, fmt.Errorf("%w: storage %q has no data", ErrFormat, short(t.st.key))
	}
	es := t.st.dtype.size()
	if err := b.take(t.hi-t.lo, es); err != nil {
		return Tensor{}, err
	}
	raw, err := t.st.data.readAt(t.lo*es, (t.hi-t.lo)*es)
	if err != nil {
		return Tensor{}, fmt.Errorf("storage %q: %w", short(t.st.key), err)
	}
	dec := t.st.dtype.decoder(order)
	if t.contiguous() {
		for i := range out.Data {
			out.Data[i] = dec(raw[int64(i)*es:])
		}
		return out, nil
	}
	// Walk the view in C order; pos is the element index relative to lo.
	idx := make([]int, len(t.shape))
	var pos int64
	for i := range out.Data {
		out.Data[i] = dec(raw[pos*es:])
		for d := len(idx) - 1; d >= 0; d-- {
			idx[d]++
			pos += int64(t.stride[d])
			if idx[d] < t.shape[d] {
				break
			}
			pos -= int64(t.stride[d]) * int64(t.shape[d])
			idx[d] = 0
		}
	}
	return out, nil
}
