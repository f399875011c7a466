package torchfile

import (
	"archive/zip"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// npyArray is one float32 array of an .npz archive.
type npyArray struct {
	name  string
	shape []int
	data  []float32
}

// readNPZ reads the float32 arrays of an .npz archive (numpy.savez), in
// member order. It is a minimal npy parser for the fixtures: version 1-3
// headers, little-endian float32, C order.
func readNPZ(t testing.TB, path string) []npyArray {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var out []npyArray
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		a, err := parseNPY(b)
		if err != nil {
			t.Fatalf("%s: %s: %v", path, f.Name, err)
		}
		a.name = strings.TrimSuffix(f.Name, ".npy")
		out = append(out, a)
	}
	return out
}

var (
	npyDescr   = regexp.MustCompile(`'descr':\s*'([^']*)'`)
	npyFortran = regexp.MustCompile(`'fortran_order':\s*(True|False)`)
	npyShape   = regexp.MustCompile(`'shape':\s*\(([^)]*)\)`)
)

func parseNPY(b []byte) (npyArray, error) {
	if len(b) < 10 || string(b[:6]) != "\x93NUMPY" {
		return npyArray{}, fmt.Errorf("not an npy file")
	}
	var hlen, start int
	switch b[6] {
	case 1:
		hlen, start = int(binary.LittleEndian.Uint16(b[8:])), 10
	case 2, 3:
		hlen, start = int(binary.LittleEndian.Uint32(b[8:])), 12
	default:
		return npyArray{}, fmt.Errorf("npy version %d", b[6])
	}
	header := string(b[start : start+hlen])
	d, f, s := npyDescr.FindStringSubmatch(header), npyFortran.FindStringSubmatch(header), npyShape.FindStringSubmatch(header)
	if d == nil || f == nil || s == nil {
		return npyArray{}, fmt.Errorf("bad header %q", header)
	}
	if d[1] != "<f4" || f[1] != "False" {
		return npyArray{}, fmt.Errorf("unsupported array %q", header)
	}
	a := npyArray{shape: []int{}}
	n := 1
	for _, dim := range strings.Split(s[1], ",") {
		if dim = strings.TrimSpace(dim); dim == "" {
			continue
		}
		v, err := strconv.Atoi(dim)
		if err != nil {
			return npyArray{}, err
		}
		a.shape = append(a.shape, v)
		n *= v
	}
	raw := b[start+hlen:]
	if len(raw) != 4*n {
		return npyArray{}, fmt.Errorf("%d data bytes for %d elements", len(raw), n)
	}
	a.data = make([]float32, n)
	for i := range a.data {
		a.data[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return a, nil
}

// equalTensor reports whether a tensor equals an expected array bit for bit.
func equalTensor(got Tensor, want npyArray) error {
	if fmt.Sprint(got.Shape) != fmt.Sprint(want.shape) {
		return fmt.Errorf("shape %v, want %v", got.Shape, want.shape)
	}
	if len(got.Data) != len(want.data) {
		return fmt.Errorf("%d elements, want %d", len(got.Data), len(want.data))
	}
	for i := range got.Data {
		if math.Float32bits(got.Data[i]) != math.Float32bits(want.data[i]) {
			return fmt.Errorf("element %d = %v, want %v", i, got.Data[i], want.data[i])
		}
	}
	return nil
}
