package torchfile

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/glowvoc/glowvoc/internal/npy"
)

// npyArray is one float32 array of an .npz archive.
type npyArray struct {
	name  string
	shape []int
	data  []float32
}

// readNPZ reads the arrays of an .npz archive (numpy.savez) in member
// order, which the tests compare with the checkpoints' parameter order
// (npy.ReadNPZ returns a map).
func readNPZ(t testing.TB, path string) []npyArray {
	t.Helper()
	var out []npyArray
	for _, m := range readZip(t, path) {
		a, err := npy.Read(bytes.NewReader(m.data), 0)
		if err != nil {
			t.Fatalf("%s: %s: %v", path, m.name, err)
		}
		out = append(out, npyArray{name: strings.TrimSuffix(m.name, ".npy"), shape: a.Shape, data: a.Data})
	}
	return out
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
