// Package safetensors reads and writes the Hugging Face safetensors format
// for float32 tensors.
//
// A file is an 8-byte little-endian header length N, N bytes of JSON
// describing each tensor's dtype, shape and byte range, and the tensor data.
// The reader is written by hand so that every size is checked before it is
// used: the header length against a limit and the file size, each tensor's
// shape against its byte range, and the byte ranges against each other and
// the data buffer, which they must tile exactly as the reference
// implementation requires.
package safetensors

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"unicode/utf8"

	"github.com/glowvoc/glowvoc/internal/atomicfile"
	"github.com/glowvoc/glowvoc/internal/float16"
)

// MaxHeaderLen is the largest JSON header Read accepts, in bytes.
const MaxHeaderLen = 100 << 20

// metadataKey is the reserved top-level key holding string metadata.
const metadataKey = "__metadata__"

// chunkBytes is how much tensor data is decoded at a time.
const chunkBytes = 1 << 16

// Tensor is a named float32 tensor: dense, row-major, with
// len(Data) equal to the product of Shape (1 for a 0-d tensor).
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
}

// File is the content of a safetensors file: tensors in order and string
// metadata.
type File struct {
	Metadata map[string]string
	Tensors  []Tensor
}

// Tensor returns the tensor called name and whether it exists.
func (f *File) Tensor(name string) (Tensor, bool) {
	for _, t := range f.Tensors {
		if t.Name == name {
			return t, true
		}
	}
	return Tensor{}, false
}

// itemSize returns the size in bytes of a supported dtype.
func itemSize(dtype string) (int, bool) {
	switch dtype {
	case "F16", "BF16":
		return 2, true
	case "F32":
		return 4, true
	case "F64":
		return 8, true
	}
	return 0, false
}

// entry is one tensor's description in the header.
type entry struct {
	name       string
	dtype      string
	shape      []int
	begin, end int64
}

// headerEntry is the JSON form of a tensor description. Pointers tell
// missing fields from zero values.
type headerEntry struct {
	Dtype       *string   `json:"dtype"`
	Shape       *[]int64  `json:"shape"`
	DataOffsets *[]uint64 `json:"data_offsets"`
}

// Read decodes a safetensors file of the given size from r. Tensors are
// returned in the order of their data in the file; F16, BF16 and F64 data
// are converted to float32.
func Read(r io.ReaderAt, size int64) (*File, error) {
	if size < 8 {
		return nil, fmt.Errorf("safetensors: file of %d bytes is too short", size)
	}
	var lb [8]byte
	if err := readAt(r, lb[:], 0); err != nil {
		return nil, fmt.Errorf("safetensors: read header length: %w", err)
	}
	n := binary.LittleEndian.Uint64(lb[:])
	if n > MaxHeaderLen {
		return nil, fmt.Errorf("safetensors: header length %d exceeds the limit of %d bytes", n, MaxHeaderLen)
	}
	if n > uint64(size-8) {
		return nil, fmt.Errorf("safetensors: header length %d exceeds the file size %d", n, size)
	}
	hdr := make([]byte, n)
	if err := readAt(r, hdr, 8); err != nil {
		return nil, fmt.Errorf("safetensors: read header: %w", err)
	}
	bufStart := 8 + int64(n)
	bufLen := size - bufStart
	meta, entries, err := parseHeader(hdr, bufLen)
	if err != nil {
		return nil, fmt.Errorf("safetensors: header: %w", err)
	}
	f := &File{Metadata: meta, Tensors: make([]Tensor, 0, len(entries))}
	for _, e := range entries {
		data, err := readData(io.NewSectionReader(r, bufStart+e.begin, e.end-e.begin), e.dtype, int(e.end-e.begin))
		if err != nil {
			return nil, fmt.Errorf("safetensors: tensor %q: %w", e.name, err)
		}
		f.Tensors = append(f.Tensors, Tensor{Name: e.name, Shape: e.shape, Data: data})
	}
	return f, nil
}

// ReadFile reads the safetensors file at path.
func ReadFile(path string) (*File, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	defer fd.Close()
	fi, err := fd.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	f, err := Read(fd, fi.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// parseHeader decodes and validates the JSON header for a data buffer of
// bufLen bytes. The entries come back sorted by offset.
func parseHeader(hdr []byte, bufLen int64) (map[string]string, []entry, error) {
	dec := json.NewDecoder(bytes.NewReader(hdr))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, errors.New("not a JSON object")
	}
	var meta map[string]string
	seen := make(map[string]bool)
	var entries []entry
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("invalid JSON: %w", err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, nil, errors.New("invalid JSON: expected an object key")
		}
		if seen[name] {
			return nil, nil, fmt.Errorf("duplicate key %q", name)
		}
		seen[name] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, fmt.Errorf("key %q: invalid JSON: %w", name, err)
		}
		if name == metadataKey {
			if err := json.Unmarshal(raw, &meta); err != nil {
				return nil, nil, fmt.Errorf("%s must map strings to strings: %w", metadataKey, err)
			}
			continue
		}
		e, err := parseEntry(name, raw, bufLen)
		if err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		entries = append(entries, e)
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, errors.New("unexpected data after the JSON object")
	}

	// The byte ranges must tile the buffer: sorted by start, each begins
	// where the previous ended, and the last ends at the end of the file.
	slices.SortStableFunc(entries, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.begin, b.begin), cmp.Compare(a.end, b.end))
	})
	var pos int64
	for _, e := range entries {
		if e.begin != pos {
			return nil, nil, fmt.Errorf("tensor %q: data_offsets [%d, %d] leave a gap or overlap (expected start %d)", e.name, e.begin, e.end, pos)
		}
		pos = e.end
	}
	if pos != bufLen {
		return nil, nil, fmt.Errorf("tensors cover %d bytes of a %d-byte data buffer", pos, bufLen)
	}
	return meta, entries, nil
}

// parseEntry decodes and checks one tensor description.
func parseEntry(name string, raw json.RawMessage, bufLen int64) (entry, error) {
	if t := bytes.TrimLeft(raw, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return entry{}, fmt.Errorf("expected an object, got %s", truncate(raw, 40))
	}
	var he headerEntry
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&he); err != nil {
		return entry{}, fmt.Errorf("invalid description: %w", err)
	}
	if he.Dtype == nil || he.Shape == nil || he.DataOffsets == nil {
		return entry{}, errors.New("needs dtype, shape and data_offsets")
	}
	size, ok := itemSize(*he.Dtype)
	if !ok {
		return entry{}, fmt.Errorf("unsupported dtype %q (want F32, F16, BF16 or F64)", *he.Dtype)
	}
	offs := *he.DataOffsets
	if len(offs) != 2 {
		return entry{}, fmt.Errorf("data_offsets has %d values, want 2", len(offs))
	}
	if offs[0] > offs[1] || offs[1] > uint64(bufLen) {
		return entry{}, fmt.Errorf("data_offsets [%d, %d] out of range for a %d-byte data buffer", offs[0], offs[1], bufLen)
	}
	// Every element occupies itemSize bytes of the buffer, so the element
	// count is at most bufLen/itemSize; checking against that bound
	// rules out overflow.
	limit := bufLen / int64(size)
	shape := make([]int, len(*he.Shape))
	var zero bool
	for i, d := range *he.Shape {
		if d < 0 {
			return entry{}, fmt.Errorf("negative dimension in shape %v", *he.Shape)
		}
		zero = zero || d == 0
		shape[i] = int(d)
	}
	count := int64(1)
	if zero {
		count = 0
	} else {
		for _, d := range *he.Shape {
			if count > limit/d {
				return entry{}, fmt.Errorf("shape %v does not fit in the %d-byte data buffer", *he.Shape, bufLen)
			}
			count *= d
		}
	}
	if got := int64(offs[1] - offs[0]); got != count*int64(size) {
		return entry{}, fmt.Errorf("shape %v of %s needs %d bytes, data_offsets [%d, %d] hold %d", *he.Shape, *he.Dtype, count*int64(size), offs[0], offs[1], got)
	}
	return entry{name: name, dtype: *he.Dtype, shape: shape, begin: int64(offs[0]), end: int64(offs[1])}, nil
}

// readData reads nbytes of dtype elements from r and converts them.
func readData(r io.Reader, dtype string, nbytes int) ([]float32, error) {
	size, _ := itemSize(dtype) // validated by parseEntry
	out := make([]float32, 0, min(nbytes/size, chunkBytes))
	buf := make([]byte, min(nbytes, chunkBytes-chunkBytes%size))
	for done := 0; done < nbytes; {
		b := buf[:min(len(buf), nbytes-done)]
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, fmt.Errorf("read data: %w", noEOF(err))
		}
		done += len(b)
		out = decode(out, b, dtype)
	}
	return out, nil
}

// decode appends the little-endian elements in b to out as float32.
func decode(out []float32, b []byte, dtype string) []float32 {
	le := binary.LittleEndian
	switch dtype {
	case "F32":
		for i := 0; i+4 <= len(b); i += 4 {
			out = append(out, math.Float32frombits(le.Uint32(b[i:])))
		}
	case "F64":
		for i := 0; i+8 <= len(b); i += 8 {
			out = append(out, float32(math.Float64frombits(le.Uint64(b[i:]))))
		}
	case "F16":
		for i := 0; i+2 <= len(b); i += 2 {
			out = append(out, float16.ToFloat32(le.Uint16(b[i:])))
		}
	case "BF16":
		for i := 0; i+2 <= len(b); i += 2 {
			out = append(out, float16.BFloat16ToFloat32(le.Uint16(b[i:])))
		}
	}
	return out
}

// Write encodes f as a safetensors file with F32 tensors, their data laid
// out in the order of f.Tensors. Metadata keys are written sorted (and the
// metadata omitted when empty); the header is padded with spaces to a
// multiple of 8 bytes.
func Write(w io.Writer, f *File) error {
	hdr, err := encodeHeader(f)
	if err != nil {
		return fmt.Errorf("safetensors: write: %w", err)
	}
	var lb [8]byte
	binary.LittleEndian.PutUint64(lb[:], uint64(len(hdr)))
	if _, err := w.Write(lb[:]); err != nil {
		return fmt.Errorf("safetensors: write header: %w", err)
	}
	if _, err := w.Write(hdr); err != nil {
		return fmt.Errorf("safetensors: write header: %w", err)
	}
	buf := make([]byte, 0, chunkBytes)
	for _, t := range f.Tensors {
		for _, v := range t.Data {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
			if len(buf) == cap(buf) {
				if _, err := w.Write(buf); err != nil {
					return fmt.Errorf("safetensors: write tensor %q: %w", t.Name, err)
				}
				buf = buf[:0]
			}
		}
	}
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("safetensors: write data: %w", err)
	}
	return nil
}

// WriteFile writes f to path atomically (see Write for the format).
func WriteFile(path string, f *File) error {
	return atomicfile.WriteFile(path, 0o644, func(w io.Writer) error {
		return Write(w, f)
	})
}

// encodeHeader validates f and returns its padded JSON header.
func encodeHeader(f *File) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	sep := func() {
		if !first {
			b.WriteByte(',')
		}
		first = false
	}
	if len(f.Metadata) > 0 {
		sep()
		writeString(&b, metadataKey)
		b.WriteString(":{")
		for i, k := range slices.Sorted(maps.Keys(f.Metadata)) {
			if !utf8.ValidString(k) || !utf8.ValidString(f.Metadata[k]) {
				return nil, fmt.Errorf("metadata %q: not valid UTF-8", k)
			}
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(&b, k)
			b.WriteByte(':')
			writeString(&b, f.Metadata[k])
		}
		b.WriteByte('}')
	}
	names := make(map[string]bool, len(f.Tensors))
	var off int64
	for _, t := range f.Tensors {
		if t.Name == metadataKey {
			return nil, fmt.Errorf("tensor name %q is reserved", t.Name)
		}
		if !utf8.ValidString(t.Name) {
			return nil, fmt.Errorf("tensor name %q is not valid UTF-8", t.Name)
		}
		if names[t.Name] {
			return nil, fmt.Errorf("duplicate tensor name %q", t.Name)
		}
		names[t.Name] = true
		n := 1
		for _, d := range t.Shape {
			if d < 0 {
				return nil, fmt.Errorf("tensor %q: negative dimension in shape %v", t.Name, t.Shape)
			}
			if d != 0 && n > math.MaxInt/d {
				return nil, fmt.Errorf("tensor %q: shape %v overflows", t.Name, t.Shape)
			}
			n *= d
		}
		if n != len(t.Data) {
			return nil, fmt.Errorf("tensor %q: shape %v needs %d elements, have %d", t.Name, t.Shape, n, len(t.Data))
		}
		end := off + 4*int64(n)
		sep()
		writeString(&b, t.Name)
		b.WriteString(`:{"dtype":"F32","shape":[`)
		for i, d := range t.Shape {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprint(&b, d)
		}
		fmt.Fprintf(&b, `],"data_offsets":[%d,%d]}`, off, end)
		off = end
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	return b.Bytes(), nil
}

// writeString writes s as a JSON string, without HTML escaping.
func writeString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)       // A string always encodes; callers reject invalid UTF-8.
	b.Truncate(b.Len() - 1) // Encode appends a newline.
}

// truncate shortens b to at most n bytes for an error message.
func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "..."
}

// readAt fills p from r at off. Unlike a bare ReadAt it accepts io.EOF
// together with a full read, and reports a short read as
// io.ErrUnexpectedEOF.
func readAt(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	return noEOF(err)
}

// noEOF turns io.EOF into io.ErrUnexpectedEOF: every read here needs data.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
