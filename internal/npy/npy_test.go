package npy

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// rawNPY builds a version 1.0 .npy stream with the given dict and payload.
func rawNPY(dict string, payload []byte) []byte {
	var b bytes.Buffer
	b.WriteString(magic)
	b.Write([]byte{1, 0})
	_ = binary.Write(&b, binary.LittleEndian, uint16(len(dict)))
	b.WriteString(dict)
	b.Write(payload)
	return b.Bytes()
}

// payload encodes values with the given byte order using binary.Write.
func payload(order binary.ByteOrder, values any) []byte {
	var b bytes.Buffer
	if err := binary.Write(&b, order, values); err != nil {
		panic(err)
	}
	return b.Bytes()
}

func dict(descr, shape string, fortran bool) string {
	f := "False"
	if fortran {
		f = "True"
	}
	return "{'descr': '" + descr + "', 'fortran_order': " + f + ", 'shape': " + shape + ", }\n"
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		a    Array
	}{
		{"scalar", Array{Data: []float32{3.5}}},
		{"vector", Array{Shape: []int{5}, Data: []float32{1, -2, 3, float32(math.Inf(1)), 0}}},
		{"matrix", Array{Shape: []int{2, 3}, Data: []float32{1, 2, 3, 4, 5, 6}}},
		{"empty", Array{Shape: []int{0, 4}, Data: []float32{}}},
		{"3d", Array{Shape: []int{1, 2, 2}, Data: []float32{1e-30, 2, 3, -0}}},
		{"large", Array{Shape: []int{3, 10000}, Data: make([]float32, 30000)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := Write(&b, tt.a); err != nil {
				t.Fatal(err)
			}
			raw := b.Bytes()
			hlen := int(binary.LittleEndian.Uint16(raw[8:10]))
			if (10+hlen)%64 != 0 || raw[10+hlen-1] != '\n' {
				t.Errorf("header of %d bytes is not 64-aligned or lacks the newline: %q", 10+hlen, raw[:10+hlen])
			}
			if got, want := len(raw), 10+hlen+4*len(tt.a.Data); got != want {
				t.Errorf("file size %d, want %d", got, want)
			}
			got, err := Read(bytes.NewReader(raw), 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Shape) != len(tt.a.Shape) || (len(got.Shape) > 0 && !reflect.DeepEqual(got.Shape, tt.a.Shape)) {
				t.Errorf("shape %v, want %v", got.Shape, tt.a.Shape)
			}
			if len(got.Data) != len(tt.a.Data) || (len(got.Data) > 0 && !reflect.DeepEqual(got.Data, tt.a.Data)) {
				t.Errorf("data %v, want %v", got.Data, tt.a.Data)
			}
		})
	}
}

// TestWriteHeaderText pins the exact header numpy writes for these shapes.
func TestWriteHeaderText(t *testing.T) {
	tests := []struct {
		shape []int
		dict  string
	}{
		{nil, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }"},
		{[]int{5}, "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }"},
		{[]int{2, 3}, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"},
	}
	for _, tt := range tests {
		n := 1
		for _, d := range tt.shape {
			n *= d
		}
		var b bytes.Buffer
		if err := Write(&b, Array{Shape: tt.shape, Data: make([]float32, n)}); err != nil {
			t.Fatal(err)
		}
		raw := b.Bytes()
		h := raw[10 : 10+int(binary.LittleEndian.Uint16(raw[8:10]))]
		if got := strings.TrimRight(string(h), " \n"); got != tt.dict {
			t.Errorf("shape %v: header %q, want %q", tt.shape, got, tt.dict)
		}
	}
}

func TestWriteErrors(t *testing.T) {
	tests := []struct {
		name string
		a    Array
	}{
		{"length mismatch", Array{Shape: []int{2, 2}, Data: []float32{1, 2, 3}}},
		{"negative dim", Array{Shape: []int{-1}, Data: nil}},
		{"overflow", Array{Shape: []int{math.MaxInt / 2, 4}, Data: nil}},
		{"too many dims", Array{Shape: make([]int, 65), Data: nil}},
	}
	for _, tt := range tests {
		if err := Write(io.Discard, tt.a); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
}

func TestReadDtypes(t *testing.T) {
	le, be := binary.LittleEndian, binary.BigEndian
	tests := []struct {
		descr   string
		payload []byte
		want    []float32
	}{
		{"<f4", payload(le, []float32{1.5, -2}), []float32{1.5, -2}},
		{">f4", payload(be, []float32{1.5, -2}), []float32{1.5, -2}},
		{"<f8", payload(le, []float64{0.1, 1e300}), []float32{0.1, float32(math.Inf(1))}},
		{">f8", payload(be, []float64{0.1, -3}), []float32{0.1, -3}},
		// float16: 1, -2, 65504 (max), 2^-24 (smallest subnormal), -0, +Inf.
		{"<f2", payload(le, []uint16{0x3c00, 0xc000, 0x7bff, 0x0001, 0x8000, 0x7c00}),
			[]float32{1, -2, 65504, 1.0 / (1 << 24), float32(math.Copysign(0, -1)), float32(math.Inf(1))}},
		{">f2", payload(be, []uint16{0x3555, 0x03ff}), []float32{0.33325195, 0.000060975552}},
		{"|i1", []byte{0xff, 0x7f}, []float32{-1, 127}},
		{"|u1", []byte{0xff, 0x7f}, []float32{255, 127}},
		{"<i2", payload(le, []int16{-300, 7}), []float32{-300, 7}},
		{">i2", payload(be, []int16{-300, 7}), []float32{-300, 7}},
		{"<u2", payload(le, []uint16{65535, 7}), []float32{65535, 7}},
		{"<i4", payload(le, []int32{-70000, 1234}), []float32{-70000, 1234}},
		{"<u4", payload(le, []uint32{1 << 31, 5}), []float32{1 << 31, 5}},
		{"<i8", payload(le, []int64{-1 << 40, 42}), []float32{-1 << 40, 42}},
		{">i8", payload(be, []int64{-1 << 40, 42}), []float32{-1 << 40, 42}},
		{"<u8", payload(le, []uint64{1 << 63, 42}), []float32{1 << 63, 42}},
	}
	for _, tt := range tests {
		t.Run(tt.descr, func(t *testing.T) {
			shape := "(" + strconv.Itoa(len(tt.want)) + ",)"
			a, err := Read(bytes.NewReader(rawNPY(dict(tt.descr, shape, false), tt.payload)), 0)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(a.Shape, []int{len(tt.want)}) {
				t.Errorf("shape %v", a.Shape)
			}
			for i := range tt.want {
				if math.Float32bits(a.Data[i]) != math.Float32bits(tt.want[i]) {
					t.Errorf("element %d = %v, want %v", i, a.Data[i], tt.want[i])
				}
			}
		})
	}
}

func TestFloat16NaN(t *testing.T) {
	a, err := Read(bytes.NewReader(rawNPY(dict("<f2", "(1,)", false), []byte{0x01, 0x7e})), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(float64(a.Data[0])) {
		t.Errorf("got %v, want NaN", a.Data[0])
	}
}

func TestReadFortranOrder(t *testing.T) {
	// Column-major [2, 3]: C-order [[1, 2, 3], [4, 5, 6]] stored as 1 4 2 5 3 6.
	// Column-major [2, 2, 2]: element (i, j, k) stored at i + 2j + 4k.
	var f3 []float32
	for k := range 2 {
		for j := range 2 {
			for i := range 2 {
				f3 = append(f3, float32(100*i+10*j+k))
			}
		}
	}
	tests := []struct {
		shape string
		data  []float32
		want  []float32
	}{
		{"(2, 3)", []float32{1, 4, 2, 5, 3, 6}, []float32{1, 2, 3, 4, 5, 6}},
		{"(2, 2, 2)", f3, []float32{0, 1, 10, 11, 100, 101, 110, 111}},
		{"(4,)", []float32{1, 2, 3, 4}, []float32{1, 2, 3, 4}},
		{"(0, 3)", []float32{}, []float32{}},
	}
	for _, tt := range tests {
		a, err := Read(bytes.NewReader(rawNPY(dict("<f4", tt.shape, true), payload(binary.LittleEndian, tt.data))), 0)
		if err != nil {
			t.Fatalf("%s: %v", tt.shape, err)
		}
		if !reflect.DeepEqual(a.Data, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.shape, a.Data, tt.want)
		}
	}
}

func TestReadHeaderVariants(t *testing.T) {
	one := payload(binary.LittleEndian, []float32{7})
	six := payload(binary.LittleEndian, []float32{1, 2, 3, 4, 5, 6})
	tests := []struct {
		name  string
		dict  string
		data  []byte
		shape []int
	}{
		{"numpy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }          \n", six, []int{2, 3}},
		{"reordered", "{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4'}", six, []int{2, 3}},
		{"double quotes", `{"descr": "<f4", "fortran_order": False, "shape": (6,)}`, six, []int{6}},
		{"tight", "{'descr':'<f4','fortran_order':False,'shape':(2,3)}", six, []int{2, 3}},
		{"spaces", "{ 'descr' : '<f4' , 'fortran_order' : False , 'shape' : ( 2 , 3 , ) , }", six, []int{2, 3}},
		{"scalar", "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", one, nil},
		{"scalar fortran", "{'descr': '<f4', 'fortran_order': True, 'shape': (), }", one, nil},
	}
	for _, tt := range tests {
		a, err := Read(bytes.NewReader(rawNPY(tt.dict, tt.data)), 0)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if len(a.Shape) != len(tt.shape) || (len(tt.shape) > 0 && !reflect.DeepEqual(a.Shape, tt.shape)) {
			t.Errorf("%s: shape %v, want %v", tt.name, a.Shape, tt.shape)
		}
	}
}

func TestReadVersions(t *testing.T) {
	d := dict("<f4", "(1,)", false)
	data := payload(binary.LittleEndian, []float32{2.5})
	for _, major := range []byte{2, 3} {
		var b bytes.Buffer
		b.WriteString(magic)
		b.Write([]byte{major, 0})
		_ = binary.Write(&b, binary.LittleEndian, uint32(len(d)))
		b.WriteString(d)
		b.Write(data)
		a, err := Read(&b, 0)
		if err != nil {
			t.Fatalf("version %d.0: %v", major, err)
		}
		if a.Data[0] != 2.5 {
			t.Errorf("version %d.0: got %v", major, a.Data)
		}
	}
}

func TestReadErrors(t *testing.T) {
	f4 := func(n int) []byte { return make([]byte, 4*n) }
	v2 := func(hlen uint32) []byte {
		b := []byte(magic + "\x02\x00")
		return binary.LittleEndian.AppendUint32(b, hlen)
	}
	tests := []struct {
		name    string
		in      []byte
		max     int
		wantErr string
	}{
		{"empty", nil, 0, "magic"},
		{"bad magic", []byte("\x93NUMPX\x01\x00\x00\x00"), 0, "bad magic"},
		{"version 4", []byte(magic + "\x04\x00\x00\x00"), 0, "version 4.0"},
		{"version 1.1", []byte(magic + "\x01\x01\x00\x00"), 0, "version 1.1"},
		{"huge header", v2(1 << 31), 0, "header length"},
		{"short header", v2(100), 0, "read header"},
		{"complex", rawNPY(dict("<c8", "(1,)", false), f4(2)), 0, `"<c8"`},
		{"object", rawNPY(dict("|O", "(1,)", false), f4(2)), 0, `"|O"`},
		{"bool", rawNPY(dict("|b1", "(1,)", false), f4(1)), 0, `"|b1"`},
		{"f1", rawNPY(dict("<f1", "(1,)", false), f4(1)), 0, `"<f1"`},
		{"i3", rawNPY(dict("<i3", "(1,)", false), f4(1)), 0, `"<i3"`},
		{"native order", rawNPY(dict("=f4", "(1,)", false), f4(1)), 0, `"=f4"`},
		{"pipe f4", rawNPY(dict("|f4", "(1,)", false), f4(1)), 0, `"|f4"`},
		{"string", rawNPY(dict("<U10", "(1,)", false), f4(10)), 0, `"<U10"`},
		{"structured", rawNPY("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", f4(1)), 0, "structured"},
		{"missing key", rawNPY("{'descr': '<f4', 'shape': (1,), }", f4(1)), 0, "missing"},
		{"extra key", rawNPY("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", f4(1)), 0, "unexpected key"},
		{"duplicate key", rawNPY("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", f4(1)), 0, "duplicate"},
		{"bad bool", rawNPY("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}", f4(1)), 0, "True or False"},
		{"not tuple", rawNPY("{'descr': '<f4', 'fortran_order': False, 'shape': (3)}", f4(3)), 0, "not a tuple"},
		{"list shape", rawNPY("{'descr': '<f4', 'fortran_order': False, 'shape': [3]}", f4(3)), 0, "expected '('"},
		{"negative dim", rawNPY("{'descr': '<f4', 'fortran_order': False, 'shape': (-3,)}", f4(3)), 0, "non-negative"},
		{"huge dim", rawNPY("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,)}", nil), 0, "dimension"},
		{"overflow product", rawNPY("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296)}", nil), 0, "limit"},
		{"over cap", rawNPY(dict("<f4", "(10, 10)", false), f4(100)), 99, "limit"},
		{"over default cap", rawNPY(dict("<f4", "(65536, 65536)", false), nil), 0, "limit"},
		{"trailing text", rawNPY(dict("<f4", "(1,)", false)+"x", f4(1)), 0, "after the dict"},
		{"unterminated", rawNPY("{'descr: '<f4'", nil), 0, "expected ':'"},
		{"unclosed", rawNPY("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)", f4(1)), 0, "expected '}'"},
		{"escape", rawNPY(`{'descr': '<f\4', 'fortran_order': False, 'shape': (1,)}`, f4(1)), 0, "escape"},
		{"too many dims", rawNPY("{'descr': '<f4', 'fortran_order': False, 'shape': ("+strings.Repeat("1,", 65)+")}", f4(1)), 0, "dimensions"},
		{"truncated data", rawNPY(dict("<f4", "(2, 3)", false), f4(5)), 0, "unexpected EOF"},
		{"no data", rawNPY(dict("<f8", "(1000000,)", false), nil), 0, "unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Read(bytes.NewReader(tt.in), tt.max)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not mention %q", err, tt.wantErr)
			}
		})
	}
}

// TestReadConsumesExactly checks that consecutive arrays can be read from
// one stream.
func TestReadConsumesExactly(t *testing.T) {
	var b bytes.Buffer
	for i := range 3 {
		if err := Write(&b, Array{Shape: []int{i + 1}, Data: make([]float32, i+1)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		a, err := Read(&b, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Data) != i+1 {
			t.Errorf("array %d has %d elements", i, len(a.Data))
		}
	}
	if b.Len() != 0 {
		t.Errorf("%d bytes left", b.Len())
	}
}

func TestTruncationNeverPanics(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, Array{Shape: []int{2, 3}, Data: []float32{1, 2, 3, 4, 5, 6}}); err != nil {
		t.Fatal(err)
	}
	full := b.Bytes()
	for n := range len(full) {
		if _, err := Read(bytes.NewReader(full[:n]), 0); err == nil {
			t.Errorf("truncated to %d of %d bytes: no error", n, len(full))
		}
	}
	if _, err := Read(bytes.NewReader(full), 0); err != nil {
		t.Errorf("full file: %v", err)
	}
}

func TestFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.npy")
	want := Array{Shape: []int{2, 2}, Data: []float32{1, 2, 3, 4}}
	if err := WriteFile(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// Trailing bytes are rejected.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{0}); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(path); err == nil || !strings.Contains(err.Error(), "after the array") {
		t.Errorf("trailing byte: error %v", err)
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "missing.npy")); err == nil {
		t.Error("missing file: no error")
	}
}

func TestReadNPZReference(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "reference", "waveglow", "tiny")
	m, err := ReadNPZ(filepath.Join(dir, "infer_sigma0.npz"))
	if err != nil {
		t.Fatal(err)
	}
	for key, shape := range map[string][]int{"mel": {1, 80, 94}, "z": {1, 8, 3008}, "audio": {1, 24064}} {
		a, ok := m[key]
		if !ok {
			t.Errorf("infer_sigma0.npz: no %q", key)
			continue
		}
		if !reflect.DeepEqual(a.Shape, shape) {
			t.Errorf("infer_sigma0.npz %s: shape %v, want %v", key, a.Shape, shape)
		}
	}
	if len(m) != 3 {
		t.Errorf("infer_sigma0.npz: %d arrays, want 3", len(m))
	}
	// sigma 0: z is all zeros.
	for i, v := range m["z"].Data {
		if v != 0 {
			t.Fatalf("z[%d] = %v, want 0", i, v)
		}
	}

	m, err = ReadNPZ(filepath.Join(dir, "train.npz"))
	if err != nil {
		t.Fatal(err)
	}
	loss, ok := m["loss"]
	if !ok || len(loss.Shape) != 0 || len(loss.Data) != 1 {
		t.Errorf("train.npz loss: %+v, want a 0-d scalar", loss)
	}
	if a, ok := m["log_s.0"]; !ok || len(a.Data) == 0 {
		t.Errorf("train.npz: missing or empty log_s.0")
	}
}

// writeZip builds a zip archive with the given members, in order.
func writeZip(t *testing.T, members []zipMember) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "a.npz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for _, m := range members {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: m.name, Method: zip.Deflate})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

type zipMember struct {
	name string
	data []byte
}

func npyBytes(t *testing.T, a Array) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, a); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestReadNPZKeys(t *testing.T) {
	// Names archive/zip deems insecure paths are fine as keys, even when
	// it is asked to flag them.
	t.Setenv("GODEBUG", "zipinsecurepath=0")
	keys := []string{"upsample.weight[:,:,::64]", "log_s.0", "a:b", "plain", "../up", "/abs"}
	var members []zipMember
	for i, k := range keys {
		members = append(members, zipMember{k + ".npy", npyBytes(t, Array{Shape: []int{1}, Data: []float32{float32(i)}})})
	}
	m, err := ReadNPZ(writeZip(t, members))
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		if a, ok := m[k]; !ok || a.Data[0] != float32(i) {
			t.Errorf("key %q: %+v, %v", k, a, ok)
		}
	}
}

func TestReadNPZErrors(t *testing.T) {
	good := npyBytes(t, Array{Shape: []int{2}, Data: []float32{1, 2}})
	tests := []struct {
		name    string
		members []zipMember
		wantErr string
	}{
		{"not npy", []zipMember{{"a.txt", good}}, "not a .npy"},
		{"duplicate", []zipMember{{"a.npy", good}, {"a.npy", good}}, "duplicate"},
		{"bad member", []zipMember{{"a.npy", good[:70]}}, "unexpected EOF"},
		{"trailing", []zipMember{{"a.npy", append(append([]byte{}, good...), 0)}}, "after the array"},
	}
	for _, tt := range tests {
		_, err := ReadNPZ(writeZip(t, tt.members))
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: error %v, want one mentioning %q", tt.name, err, tt.wantErr)
		}
	}
	notZip := filepath.Join(t.TempDir(), "x.npz")
	if err := os.WriteFile(notZip, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadNPZ(notZip); err == nil {
		t.Error("non-zip file: no error")
	}
}

func FuzzRead(f *testing.F) {
	var b bytes.Buffer
	_ = Write(&b, Array{Shape: []int{2, 3}, Data: []float32{1, 2, 3, 4, 5, 6}})
	f.Add(b.Bytes())
	f.Add(rawNPY(dict("<f2", "(2,)", true), []byte{0, 0x3c, 0, 0xc0}))
	f.Add(rawNPY(dict(">f8", "(1, 1)", true), make([]byte, 8)))
	f.Add(rawNPY(dict("<i8", "()", false), make([]byte, 8)))
	f.Add(rawNPY(dict("|u1", "(2, 2, 1)", true), make([]byte, 4)))
	f.Fuzz(func(t *testing.T, in []byte) {
		const max = 1 << 16
		a, err := Read(bytes.NewReader(in), max)
		if err != nil {
			return
		}
		n := 1
		for _, d := range a.Shape {
			n *= d
		}
		if n != len(a.Data) || n > max {
			t.Fatalf("shape %v with %d elements", a.Shape, len(a.Data))
		}
		// Whatever was read must survive a round trip bit for bit.
		var out bytes.Buffer
		if err := Write(&out, a); err != nil {
			t.Fatal(err)
		}
		back, err := Read(&out, max)
		if err != nil {
			t.Fatal(err)
		}
		for i := range a.Data {
			if math.Float32bits(a.Data[i]) != math.Float32bits(back.Data[i]) {
				t.Fatalf("element %d changed", i)
			}
		}
	})
}
