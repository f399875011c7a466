package safetensors

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// build assembles a file from a header and a data buffer, without padding.
func build(hdr string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	b = append(b, hdr...)
	return append(b, data...)
}

func le(values any) []byte {
	var b bytes.Buffer
	if err := binary.Write(&b, binary.LittleEndian, values); err != nil {
		panic(err)
	}
	return b.Bytes()
}

func read(b []byte) (*File, error) {
	return Read(bytes.NewReader(b), int64(len(b)))
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		f    *File
	}{
		{"empty", &File{}},
		{"metadata only", &File{Metadata: map[string]string{"format": "pt"}}},
		{"tensors", &File{
			Metadata: map[string]string{"format": "pt", "step": "100", "<html> & \"quotes\"": "é\n"},
			Tensors: []Tensor{
				{Name: "z.weight", Shape: []int{2, 3}, Data: []float32{1, 2, 3, 4, 5, float32(math.NaN())}},
				{Name: "a.bias", Shape: []int{3}, Data: []float32{-1, 0, float32(math.Inf(-1))}},
				{Name: "scalar", Shape: []int{}, Data: []float32{42}},
				{Name: "empty", Shape: []int{0, 5}, Data: []float32{}},
				{Name: "upsample.weight[:,:,::64]", Shape: []int{1, 1, 1}, Data: []float32{7}},
			},
		}},
		{"large", &File{Tensors: []Tensor{{Name: "big", Shape: []int{100, 1000}, Data: make([]float32, 100000)}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := Write(&b, tt.f); err != nil {
				t.Fatal(err)
			}
			raw := b.Bytes()
			if n := binary.LittleEndian.Uint64(raw); n%8 != 0 {
				t.Errorf("header length %d is not a multiple of 8", n)
			}
			got, err := read(raw)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Metadata) != len(tt.f.Metadata) || (len(got.Metadata) > 0 && !reflect.DeepEqual(got.Metadata, tt.f.Metadata)) {
				t.Errorf("metadata %v, want %v", got.Metadata, tt.f.Metadata)
			}
			if len(got.Tensors) != len(tt.f.Tensors) {
				t.Fatalf("%d tensors, want %d", len(got.Tensors), len(tt.f.Tensors))
			}
			for i, want := range tt.f.Tensors {
				g := got.Tensors[i]
				if g.Name != want.Name || !reflect.DeepEqual(g.Shape, want.Shape) || len(g.Data) != len(want.Data) {
					t.Errorf("tensor %d: %q %v (%d values), want %q %v (%d values)", i, g.Name, g.Shape, len(g.Data), want.Name, want.Shape, len(want.Data))
					continue
				}
				for j := range want.Data {
					if math.Float32bits(g.Data[j]) != math.Float32bits(want.Data[j]) {
						t.Errorf("tensor %q element %d = %v, want %v", want.Name, j, g.Data[j], want.Data[j])
					}
				}
				if lt, ok := got.Tensor(want.Name); !ok || lt.Name != want.Name {
					t.Errorf("Tensor(%q) not found", want.Name)
				}
			}
			if _, ok := got.Tensor("no such tensor"); ok {
				t.Error("Tensor found a missing name")
			}
		})
	}
}

// TestWriteGolden checks the writer byte for byte against the format
// specification: u64 little-endian header size, the JSON header padded with
// spaces to 8 bytes, then the little-endian data.
func TestWriteGolden(t *testing.T) {
	f := &File{
		Metadata: map[string]string{"format": "pt"},
		Tensors: []Tensor{
			{Name: "b", Shape: []int{2}, Data: []float32{1, 2}},
			{Name: "a", Shape: []int{1, 1}, Data: []float32{-0.5}},
		},
	}
	hdr := `{"__metadata__":{"format":"pt"},` +
		`"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},` +
		`"a":{"dtype":"F32","shape":[1,1],"data_offsets":[8,12]}}`
	hdr += strings.Repeat(" ", (8-len(hdr)%8)%8)
	want := build(hdr, []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 0, 0, 0, 0xbf})
	var b bytes.Buffer
	if err := Write(&b, f); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("got\n%q\nwant\n%q", b.Bytes(), want)
	}
}

func TestReadDtypes(t *testing.T) {
	tests := []struct {
		dtype string
		data  []byte
		want  []float32
	}{
		{"F32", le([]float32{1.5, -2}), []float32{1.5, -2}},
		{"F64", le([]float64{0.1, 1e300}), []float32{0.1, float32(math.Inf(1))}},
		// F16: 1, -2 (normal); 2^-24 (subnormal); -0; +Inf; 65504 (max).
		{"F16", le([]uint16{0x3c00, 0xc000, 0x0001, 0x8000, 0x7c00, 0x7bff}),
			[]float32{1, -2, 1.0 / (1 << 24), float32(math.Copysign(0, -1)), float32(math.Inf(1)), 65504}},
		// BF16 is the top half of a float32.
		{"BF16", le([]uint16{0x3f80, 0xc049, 0xff80}), []float32{1, -3.140625, float32(math.Inf(-1))}},
	}
	for _, tt := range tests {
		t.Run(tt.dtype, func(t *testing.T) {
			hdr := fmt.Sprintf(`{"x":{"dtype":%q,"shape":[%d],"data_offsets":[0,%d]}}`, tt.dtype, len(tt.want), len(tt.data))
			f, err := read(build(hdr, tt.data))
			if err != nil {
				t.Fatal(err)
			}
			got := f.Tensors[0].Data
			if len(got) != len(tt.want) {
				t.Fatalf("%d values, want %d", len(got), len(tt.want))
			}
			for i := range tt.want {
				if math.Float32bits(got[i]) != math.Float32bits(tt.want[i]) {
					t.Errorf("element %d = %v, want %v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// TestReadOrderAndLayout reads a header whose keys are not in data order,
// with whitespace padding, and expects tensors in data order.
func TestReadOrderAndLayout(t *testing.T) {
	hdr := ` { "second" : {"shape": [1], "data_offsets": [4, 8], "dtype": "F32"},
	"__metadata__": {"k": "v"},
	"first": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]} }     `
	f, err := read(build(hdr, le([]float32{1, 2})))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Tensors) != 2 || f.Tensors[0].Name != "first" || f.Tensors[1].Name != "second" {
		t.Fatalf("tensors %+v", f.Tensors)
	}
	if f.Tensors[0].Data[0] != 1 || f.Tensors[1].Data[0] != 2 {
		t.Errorf("data %v %v", f.Tensors[0].Data, f.Tensors[1].Data)
	}
	if f.Metadata["k"] != "v" {
		t.Errorf("metadata %v", f.Metadata)
	}
}

func TestReadErrors(t *testing.T) {
	four := le([]float32{1})
	eight := le([]float32{1, 2})
	one := func(desc string) string { return `{"x":` + desc + `}` }
	tests := []struct {
		name    string
		in      []byte
		wantErr string
	}{
		{"empty", nil, "too short"},
		{"short length", []byte{1, 0, 0}, "too short"},
		{"huge header", binary.LittleEndian.AppendUint64(nil, 1<<62), "limit"},
		{"header past end", append(binary.LittleEndian.AppendUint64(nil, 100), "{}"...), "file size"},
		{"not json", build("hello", nil), "not a JSON object"},
		{"array", build("[]", nil), "not a JSON object"},
		{"bad json", build(`{"x":`, nil), "invalid JSON"},
		{"unclosed", build(`{"__metadata__":{}`, nil), "invalid JSON"},
		{"trailing", build(`{} {}`, nil), "after the JSON object"},
		{"trailing garbage", build(`{}x`, nil), "after the JSON object"},
		{"duplicate", build(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, eight), "duplicate"},
		{"duplicate metadata", build(`{"__metadata__":{},"__metadata__":{}}`, nil), "duplicate"},
		{"metadata not strings", build(`{"__metadata__":{"a":1}}`, nil), "strings to strings"},
		{"metadata array", build(`{"__metadata__":["a"]}`, nil), "strings to strings"},
		{"entry number", build(one(`5`), nil), "expected an object"},
		{"entry string", build(one(`"F32"`), nil), "expected an object"},
		{"entry null", build(one(`null`), nil), "expected an object"},
		{"unknown field", build(one(`{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":1}`), four), "unknown field"},
		{"missing dtype", build(one(`{"shape":[1],"data_offsets":[0,4]}`), four), "needs dtype"},
		{"missing shape", build(one(`{"dtype":"F32","data_offsets":[0,4]}`), four), "needs dtype"},
		{"missing offsets", build(one(`{"dtype":"F32","shape":[1]}`), four), "needs dtype"},
		{"dtype I64", build(one(`{"dtype":"I64","shape":[1],"data_offsets":[0,8]}`), eight), `"I64"`},
		{"dtype F8", build(one(`{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}`), []byte{0}), `"F8_E4M3"`},
		{"dtype type", build(one(`{"dtype":4,"shape":[1],"data_offsets":[0,4]}`), four), "invalid description"},
		{"shape float", build(one(`{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}`), four), "invalid description"},
		{"negative dim", build(one(`{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}`), four), "negative"},
		{"negative offset", build(one(`{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}`), four), "invalid description"},
		{"three offsets", build(one(`{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}`), four), "2"},
		{"reversed offsets", build(one(`{"dtype":"F32","shape":[0],"data_offsets":[4,0]}`), four), "out of range"},
		{"offset past end", build(one(`{"dtype":"F32","shape":[2],"data_offsets":[0,8]}`), four), "out of range"},
		{"huge offset", build(one(`{"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551615]}`), four), "out of range"},
		{"offset overflow", build(one(`{"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551616]}`), four), "invalid description"},
		{"shape mismatch", build(one(`{"dtype":"F32","shape":[2],"data_offsets":[0,4]}`), eight), "needs 8 bytes"},
		{"dtype size mismatch", build(one(`{"dtype":"F16","shape":[1],"data_offsets":[0,4]}`), four), "needs 2 bytes"},
		{"shape overflow", build(one(`{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,4]}`), four), "does not fit"},
		{"shape too big", build(one(`{"dtype":"F32","shape":[2,2],"data_offsets":[0,4]}`), four), "does not fit"},
		{"gap at start", build(one(`{"dtype":"F32","shape":[1],"data_offsets":[4,8]}`), eight), "gap or overlap"},
		{"overlap", build(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, eight), "gap or overlap"},
		{"same range", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, four), "gap or overlap"},
		{"uncovered tail", build(one(`{"dtype":"F32","shape":[1],"data_offsets":[0,4]}`), eight), "cover 4 bytes of a 8-byte"},
		{"data without tensors", build(`{}`, four), "cover 0 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := read(tt.in)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not mention %q", err, tt.wantErr)
			}
		})
	}
}

// TestReadLyingSize passes a size larger than the reader holds.
func TestReadLyingSize(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, &File{Tensors: []Tensor{{Name: "x", Shape: []int{4}, Data: []float32{1, 2, 3, 4}}}}); err != nil {
		t.Fatal(err)
	}
	raw := b.Bytes()
	// The header describes 16 bytes of data; the reader holds 15 but the
	// caller claims the full size.
	if _, err := Read(bytes.NewReader(raw[:len(raw)-1]), int64(len(raw))); err == nil {
		t.Error("no error for a reader shorter than its declared size")
	}
}

func TestTruncationNeverPanics(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, &File{
		Metadata: map[string]string{"a": "b"},
		Tensors:  []Tensor{{Name: "x", Shape: []int{2, 2}, Data: []float32{1, 2, 3, 4}}, {Name: "y", Shape: []int{1}, Data: []float32{5}}},
	}); err != nil {
		t.Fatal(err)
	}
	full := b.Bytes()
	for n := range len(full) {
		if _, err := read(full[:n]); err == nil {
			t.Errorf("truncated to %d of %d bytes: no error", n, len(full))
		}
	}
}

func TestWriteErrors(t *testing.T) {
	tests := []struct {
		name string
		f    *File
	}{
		{"length mismatch", &File{Tensors: []Tensor{{Name: "x", Shape: []int{2}, Data: []float32{1}}}}},
		{"negative dim", &File{Tensors: []Tensor{{Name: "x", Shape: []int{-1}}}}},
		{"overflow", &File{Tensors: []Tensor{{Name: "x", Shape: []int{math.MaxInt / 2, 4}}}}},
		{"duplicate", &File{Tensors: []Tensor{{Name: "x", Shape: []int{0}}, {Name: "x", Shape: []int{0}}}}},
		{"reserved", &File{Tensors: []Tensor{{Name: "__metadata__", Shape: []int{0}}}}},
		{"bad utf8 name", &File{Tensors: []Tensor{{Name: "\xff", Shape: []int{0}}}}},
		{"bad utf8 metadata", &File{Metadata: map[string]string{"k": "\xfe"}}},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		if err := Write(&b, tt.f); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
		if b.Len() != 0 {
			t.Errorf("%s: wrote %d bytes before failing", tt.name, b.Len())
		}
	}
}

func TestFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.safetensors")
	want := &File{
		Metadata: map[string]string{"format": "pt"},
		Tensors:  []Tensor{{Name: "w", Shape: []int{2, 2}, Data: []float32{1, 2, 3, 4}}},
	}
	if err := WriteFile(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing file: no error")
	}
	if err := os.WriteFile(path, []byte("short"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("short file: error %v, want one naming the path", err)
	}
}

func FuzzRead(f *testing.F) {
	var b bytes.Buffer
	_ = Write(&b, &File{
		Metadata: map[string]string{"format": "pt"},
		Tensors:  []Tensor{{Name: "x", Shape: []int{2, 2}, Data: []float32{1, 2, 3, 4}}, {Name: "s", Shape: []int{}, Data: []float32{5}}},
	})
	f.Add(b.Bytes())
	f.Add(build(`{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[1],"data_offsets":[4,6]}}`, make([]byte, 6)))
	f.Add(build(`{"a":{"dtype":"F64","shape":[1,1],"data_offsets":[0,8]}}  `, make([]byte, 8)))
	f.Fuzz(func(t *testing.T, in []byte) {
		file, err := read(in)
		if err != nil {
			return
		}
		var out bytes.Buffer
		for _, tn := range file.Tensors {
			n := 1
			for _, d := range tn.Shape {
				n *= d
			}
			if n != len(tn.Data) {
				t.Fatalf("tensor %q: shape %v with %d values", tn.Name, tn.Shape, len(tn.Data))
			}
		}
		if err := Write(&out, file); err != nil {
			t.Fatalf("re-encoding a file that was read: %v", err)
		}
		back, err := read(out.Bytes())
		if err != nil {
			t.Fatalf("reading a written file: %v", err)
		}
		if len(back.Tensors) != len(file.Tensors) {
			t.Fatalf("%d tensors after round trip, want %d", len(back.Tensors), len(file.Tensors))
		}
	})
}
