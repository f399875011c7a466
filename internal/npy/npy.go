// Package npy reads and writes NumPy .npy files and reads .npz archives,
// holding the data as dense row-major float32 arrays.
//
// The header parser is written here rather than taken from
// codeberg.org/sbinet/npyio because reading must check the declared shape
// against an element cap before allocating, must bound every allocation by
// the bytes actually present, and needs only a few lines to cover the
// Python dict literal that numpy writes.
//
// Reading accepts format versions 1.0, 2.0 and 3.0, C or Fortran order, and
// the dtypes f2, f4, f8, i1, i2, i4, i8, u1, u2, u4 and u8 in little- or
// big-endian byte order, all converted to float32 (values beyond float32's
// precision are rounded). Writing always produces version 1.0, '<f4', C order.
package npy

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/glowvoc/glowvoc/internal/atomicfile"
	"github.com/glowvoc/glowvoc/internal/float16"
)

// DefaultMaxElements is the element cap Read uses when maxElements <= 0,
// and the cap on the total number of elements ReadFile and ReadNPZ accept.
const DefaultMaxElements = 1 << 28

// maxHeaderLen bounds the header dict length. numpy itself refuses headers
// longer than 10000 bytes by default; this is more generous.
const maxHeaderLen = 1 << 16

// chunkBytes is how much raw data is decoded at a time, so that memory use
// grows with the data actually present rather than with the declared shape.
const chunkBytes = 1 << 16

// maxDims bounds the number of dimensions, as numpy does.
const maxDims = 64

const magic = "\x93NUMPY"

// Array is a dense C-order float32 array and its shape (a 0-d scalar has
// Shape == nil/empty and one element).
type Array struct {
	Shape []int
	Data  []float32
}

// Read decodes one .npy array from r. The product of the declared shape is
// checked against maxElements (DefaultMaxElements if maxElements <= 0)
// before anything is allocated, and all of the data must be present.
// Read consumes exactly the bytes of one array.
func Read(r io.Reader, maxElements int) (Array, error) {
	if maxElements <= 0 {
		maxElements = DefaultMaxElements
	}
	h, err := readHeader(r)
	if err != nil {
		return Array{}, err
	}
	n, err := numElements(h.shape, maxElements)
	if err != nil {
		return Array{}, err
	}
	data, err := readData(r, h.dtype, n)
	if err != nil {
		return Array{}, err
	}
	if h.fortran && len(h.shape) > 1 {
		data = fortranToC(data, h.shape)
	}
	return Array{Shape: h.shape, Data: data}, nil
}

// ReadFile reads the .npy file at path with the default element cap.
// Bytes after the array are an error.
func ReadFile(path string) (Array, error) {
	f, err := os.Open(path)
	if err != nil {
		return Array{}, fmt.Errorf("npy: %w", err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	a, err := Read(br, 0)
	if err != nil {
		return Array{}, fmt.Errorf("%s: %w", path, err)
	}
	switch _, err := br.ReadByte(); err {
	case io.EOF:
	case nil:
		return Array{}, fmt.Errorf("npy: %s: unexpected data after the array", path)
	default:
		return Array{}, fmt.Errorf("npy: %s: %w", path, err)
	}
	return a, nil
}

// Write encodes a as a .npy array: format 1.0, dtype '<f4', C order, with
// the header padded by spaces and a final newline to a multiple of 64 bytes.
func Write(w io.Writer, a Array) error {
	if len(a.Shape) > maxDims {
		return fmt.Errorf("npy: write: %d dimensions, more than %d", len(a.Shape), maxDims)
	}
	n := 1
	for _, d := range a.Shape {
		if d < 0 {
			return fmt.Errorf("npy: write: negative dimension in shape %v", a.Shape)
		}
		if d != 0 && n > math.MaxInt/d {
			return fmt.Errorf("npy: write: shape %v overflows", a.Shape)
		}
		n *= d
	}
	if n != len(a.Data) {
		return fmt.Errorf("npy: write: shape %v needs %d elements, have %d", a.Shape, n, len(a.Data))
	}
	if _, err := w.Write(encodeHeader(a.Shape)); err != nil {
		return fmt.Errorf("npy: write header: %w", err)
	}
	buf := make([]byte, 0, chunkBytes)
	for _, v := range a.Data {
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
		if len(buf) == cap(buf) {
			if _, err := w.Write(buf); err != nil {
				return fmt.Errorf("npy: write data: %w", err)
			}
			buf = buf[:0]
		}
	}
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("npy: write data: %w", err)
	}
	return nil
}

// WriteFile writes a to path atomically (see Write for the format).
func WriteFile(path string, a Array) error {
	return atomicfile.WriteFile(path, 0o644, func(w io.Writer) error {
		return Write(w, a)
	})
}

// encodeHeader returns magic, version, length and the padded dict.
func encodeHeader(shape []int) []byte {
	var sb strings.Builder
	sb.WriteString("{'descr': '<f4', 'fortran_order': False, 'shape': (")
	for i, d := range shape {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(strconv.Itoa(d))
	}
	if len(shape) == 1 {
		sb.WriteByte(',')
	}
	sb.WriteString("), }")
	dict := sb.String()

	// The header (magic, version, length field, dict, newline) is padded
	// to a multiple of 64 bytes. With at most maxDims dimensions the dict
	// always fits the 2-byte length field of version 1.0.
	const prefix = len(magic) + 2 + 2
	total := padTo64(prefix + len(dict) + 1)
	out := make([]byte, 0, total)
	out = append(out, magic...)
	out = append(out, 1, 0)
	out = binary.LittleEndian.AppendUint16(out, uint16(total-prefix))
	out = append(out, dict...)
	for len(out) < total-1 {
		out = append(out, ' ')
	}
	return append(out, '\n')
}

// padTo64 rounds n up to a multiple of 64.
func padTo64(n int) int {
	return (n + 63) &^ 63
}

// dtype describes a supported element type.
type dtype struct {
	name      string // as written in the header, for messages
	size      int    // bytes per element
	kind      byte   // 'f', 'i' or 'u'
	bigEndian bool
}

// header is the decoded .npy header.
type header struct {
	dtype   dtype
	fortran bool
	shape   []int
}

func readHeader(r io.Reader) (header, error) {
	var pre [len(magic) + 2]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return header{}, fmt.Errorf("npy: read magic: %w", noEOF(err))
	}
	if string(pre[:len(magic)]) != magic {
		return header{}, errors.New("npy: not a .npy file (bad magic)")
	}
	major, minor := pre[len(magic)], pre[len(magic)+1]
	var hlen int
	switch {
	case major == 1 && minor == 0:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return header{}, fmt.Errorf("npy: read header length: %w", noEOF(err))
		}
		hlen = int(binary.LittleEndian.Uint16(b[:]))
	case (major == 2 || major == 3) && minor == 0:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return header{}, fmt.Errorf("npy: read header length: %w", noEOF(err))
		}
		l := binary.LittleEndian.Uint32(b[:])
		if l > maxHeaderLen {
			return header{}, fmt.Errorf("npy: header length %d exceeds the limit of %d bytes", l, maxHeaderLen)
		}
		hlen = int(l)
	default:
		return header{}, fmt.Errorf("npy: unsupported format version %d.%d", major, minor)
	}
	buf := make([]byte, hlen)
	if _, err := io.ReadFull(r, buf); err != nil {
		return header{}, fmt.Errorf("npy: read header: %w", noEOF(err))
	}
	h, err := parseHeader(string(buf))
	if err != nil {
		return header{}, fmt.Errorf("npy: header %q: %w", truncate(buf, 200), err)
	}
	return h, nil
}

// truncate shortens b to at most n bytes for an error message.
func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "..."
}

// noEOF turns io.EOF into io.ErrUnexpectedEOF: every read in this package
// happens where more data is required.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// parseHeader parses the dict literal
// {'descr': <str>, 'fortran_order': <bool>, 'shape': <tuple of int>}
// with keys in any order, optional trailing comma and arbitrary spacing.
func parseHeader(s string) (header, error) {
	p := &parser{s: s}
	var h header
	var seenDescr, seenFortran, seenShape bool
	if err := p.expect('{'); err != nil {
		return header{}, err
	}
	for {
		p.skipSpace()
		if p.peek() == '}' {
			p.pos++
			break
		}
		key, err := p.str()
		if err != nil {
			return header{}, fmt.Errorf("dict key: %w", err)
		}
		if err := p.expect(':'); err != nil {
			return header{}, err
		}
		switch key {
		case "descr":
			if seenDescr {
				return header{}, errors.New("duplicate key 'descr'")
			}
			seenDescr = true
			p.skipSpace()
			if c := p.peek(); c != '\'' && c != '"' {
				return header{}, errors.New("unsupported descr: only simple dtypes are supported, not structured ones")
			}
			d, err := p.str()
			if err != nil {
				return header{}, fmt.Errorf("descr: %w", err)
			}
			if h.dtype, err = parseDtype(d); err != nil {
				return header{}, err
			}
		case "fortran_order":
			if seenFortran {
				return header{}, errors.New("duplicate key 'fortran_order'")
			}
			seenFortran = true
			if h.fortran, err = p.boolean(); err != nil {
				return header{}, fmt.Errorf("fortran_order: %w", err)
			}
		case "shape":
			if seenShape {
				return header{}, errors.New("duplicate key 'shape'")
			}
			seenShape = true
			if h.shape, err = p.tuple(); err != nil {
				return header{}, fmt.Errorf("shape: %w", err)
			}
		default:
			return header{}, fmt.Errorf("unexpected key %q", key)
		}
		p.skipSpace()
		if p.peek() == ',' {
			p.pos++
			continue
		}
		if err := p.expect('}'); err != nil {
			return header{}, err
		}
		break
	}
	p.skipSpace()
	if p.pos != len(p.s) {
		return header{}, fmt.Errorf("unexpected text after the dict at offset %d", p.pos)
	}
	if !seenDescr || !seenFortran || !seenShape {
		return header{}, errors.New("missing one of the keys 'descr', 'fortran_order', 'shape'")
	}
	return h, nil
}

// parseDtype maps a numpy type string such as '<f4' to a dtype.
func parseDtype(d string) (dtype, error) {
	if len(d) != 3 {
		return dtype{}, fmt.Errorf("unsupported dtype %q", d)
	}
	order, kind, size := d[0], d[1], int(d[2]-'0')
	dt := dtype{name: d, size: size, kind: kind, bigEndian: order == '>'}
	switch kind {
	case 'f':
		if size != 2 && size != 4 && size != 8 {
			return dtype{}, fmt.Errorf("unsupported dtype %q", d)
		}
	case 'i', 'u':
		if size != 1 && size != 2 && size != 4 && size != 8 {
			return dtype{}, fmt.Errorf("unsupported dtype %q", d)
		}
	default:
		return dtype{}, fmt.Errorf("unsupported dtype %q", d)
	}
	switch {
	case order == '<' || order == '>':
	case order == '|' && size == 1:
	default:
		return dtype{}, fmt.Errorf("unsupported dtype %q (byte order must be '<' or '>', or '|' for one-byte types)", d)
	}
	return dt, nil
}

// parser is a cursor over a header string.
type parser struct {
	s   string
	pos int
}

func (p *parser) skipSpace() {
	for p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t' || p.s[p.pos] == '\n' || p.s[p.pos] == '\r') {
		p.pos++
	}
}

// peek returns the next byte, or 0 at the end.
func (p *parser) peek() byte {
	if p.pos < len(p.s) {
		return p.s[p.pos]
	}
	return 0
}

func (p *parser) expect(c byte) error {
	p.skipSpace()
	if p.peek() != c {
		return fmt.Errorf("expected %q at offset %d", c, p.pos)
	}
	p.pos++
	return nil
}

// str parses a quoted string without escapes.
func (p *parser) str() (string, error) {
	p.skipSpace()
	q := p.peek()
	if q != '\'' && q != '"' {
		return "", fmt.Errorf("expected a quoted string at offset %d", p.pos)
	}
	end := strings.IndexByte(p.s[p.pos+1:], q)
	if end < 0 {
		return "", errors.New("unterminated string")
	}
	v := p.s[p.pos+1 : p.pos+1+end]
	if strings.ContainsRune(v, '\\') {
		return "", errors.New("escape sequences in strings are not supported")
	}
	p.pos += end + 2
	return v, nil
}

func (p *parser) boolean() (bool, error) {
	p.skipSpace()
	rest := p.s[p.pos:]
	switch {
	case strings.HasPrefix(rest, "True"):
		p.pos += 4
		return true, nil
	case strings.HasPrefix(rest, "False"):
		p.pos += 5
		return false, nil
	}
	return false, fmt.Errorf("expected True or False at offset %d", p.pos)
}

// tuple parses a Python tuple of non-negative integers: (), (5,), (2, 3).
// A one-element tuple requires its trailing comma, as in Python.
func (p *parser) tuple() ([]int, error) {
	if err := p.expect('('); err != nil {
		return nil, err
	}
	var dims []int
	comma := false // whether the last token was a comma
	for {
		p.skipSpace()
		if p.peek() == ')' {
			p.pos++
			if len(dims) == 1 && !comma {
				return nil, errors.New("(n) is not a tuple; expected (n,)")
			}
			return dims, nil
		}
		start := p.pos
		for p.pos < len(p.s) && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
			p.pos++
		}
		if start == p.pos {
			return nil, fmt.Errorf("expected a non-negative integer at offset %d", p.pos)
		}
		d, err := strconv.Atoi(p.s[start:p.pos])
		if err != nil {
			return nil, fmt.Errorf("dimension %s: %w", p.s[start:p.pos], err)
		}
		if len(dims) == maxDims {
			return nil, fmt.Errorf("more than %d dimensions", maxDims)
		}
		dims = append(dims, d)
		comma = false
		p.skipSpace()
		switch p.peek() {
		case ',':
			p.pos++
			comma = true
		case ')':
		default:
			return nil, fmt.Errorf("expected ',' or ')' at offset %d", p.pos)
		}
	}
}

// numElements returns the product of shape, or an error if it exceeds max.
func numElements(shape []int, max int) (int, error) {
	n := 1
	for _, d := range shape {
		if d == 0 {
			return 0, nil
		}
	}
	for _, d := range shape {
		if n > max/d {
			return 0, fmt.Errorf("npy: shape %v exceeds the limit of %d elements", shape, max)
		}
		n *= d
	}
	return n, nil
}

// readData reads n elements of type dt from r, converting to float32.
// Memory grows with the data read, so a short stream that declares a large
// shape costs at most one chunk beyond what it holds.
func readData(r io.Reader, dt dtype, n int) ([]float32, error) {
	out := make([]float32, 0, min(n, chunkBytes))
	buf := make([]byte, min(n*dt.size, chunkBytes))
	for len(out) < n {
		m := min(n-len(out), len(buf)/dt.size)
		b := buf[:m*dt.size]
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, fmt.Errorf("npy: read data (%d of %d elements): %w", len(out), n, noEOF(err))
		}
		out = decode(out, b, dt)
	}
	return out, nil
}

// decode appends the elements in b, of type dt, to out as float32.
func decode(out []float32, b []byte, dt dtype) []float32 {
	if dt.kind == 'f' && dt.size == 4 && !dt.bigEndian {
		for i := 0; i < len(b); i += 4 {
			out = append(out, math.Float32frombits(binary.LittleEndian.Uint32(b[i:])))
		}
		return out
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if dt.bigEndian {
		bo = binary.BigEndian
	}
	for i := 0; i < len(b); i += dt.size {
		e := b[i : i+dt.size]
		var v float32
		switch dt.kind {
		case 'f':
			switch dt.size {
			case 2:
				v = float16.ToFloat32(bo.Uint16(e))
			case 4:
				v = math.Float32frombits(bo.Uint32(e))
			case 8:
				v = float32(math.Float64frombits(bo.Uint64(e)))
			}
		case 'i':
			switch dt.size {
			case 1:
				v = float32(int8(e[0]))
			case 2:
				v = float32(int16(bo.Uint16(e)))
			case 4:
				v = float32(int32(bo.Uint32(e)))
			case 8:
				v = float32(int64(bo.Uint64(e)))
			}
		case 'u':
			switch dt.size {
			case 1:
				v = float32(e[0])
			case 2:
				v = float32(bo.Uint16(e))
			case 4:
				v = float32(bo.Uint32(e))
			case 8:
				v = float32(bo.Uint64(e))
			}
		}
		out = append(out, v)
	}
	return out
}

// fortranToC reorders column-major data of the given shape to row-major.
func fortranToC(src []float32, shape []int) []float32 {
	dst := make([]float32, len(src))
	if len(src) == 0 {
		return dst
	}
	nd := len(shape)
	// Column-major strides of the source.
	stride := make([]int, nd)
	s := 1
	for i := range nd {
		stride[i] = s
		s *= shape[i]
	}
	idx := make([]int, nd)
	off := 0
	for i := range dst {
		dst[i] = src[off]
		// Advance the row-major multi-index, last axis fastest.
		for ax := nd - 1; ax >= 0; ax-- {
			idx[ax]++
			off += stride[ax]
			if idx[ax] < shape[ax] {
				break
			}
			off -= idx[ax] * stride[ax]
			idx[ax] = 0
		}
	}
	return dst
}
