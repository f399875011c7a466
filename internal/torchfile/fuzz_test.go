package torchfile

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/nlpodyssey/gopickle/pickle"
)

// fuzzPickles returns small pickles exercising the object model.
func fuzzPickles() []string {
	return []string{
		"\x80\x02ccollections\nOrderedDict\n)R(X\x01\x00\x00\x00aK\x01u.",
		"\x80\x04\x8c\x0bcollections\x94\x8c\x0bOrderedDict\x94\x93)R.",
		"\x80\x02c__builtin__\nset\n]\x85R.",
		"\x80\x02ctorch\nSize\nK\x02K\x03\x86\x85R.",
		"\x80\x02cglow\nWN\n)\x81}X\x01\x00\x00\x00nK\x02sb.",
		"\x80\x02]q\x00(K\x01h\x00e.",
		"\x80\x04\x95\x07\x00\x00\x00\x00\x00\x00\x00\x8f(NK\x01\x90.",
	}
}

func FuzzLoad(f *testing.F) {
	files, err := filepath.Glob(filepath.Join(fixtureDir, "*.pt"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, p := range fuzzPickles() {
		f.Add(legacyFile(f, []byte(p)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		if ck, err := LoadReader(r, int64(len(data))); err == nil {
			if len(ck.Names) != len(ck.Tensors) {
				t.Fatalf("%d names, %d tensors", len(ck.Names), len(ck.Tensors))
			}
			for _, n := range ck.Names {
				checkShape(t, ck.Tensors[n])
			}
		}
		if x, err := LoadTensorReader(r, int64(len(data))); err == nil {
			checkShape(t, x)
		}
	})
}

func checkShape(t *testing.T, x Tensor) {
	n := 1
	for _, d := range x.Shape {
		n *= d
	}
	if n != len(x.Data) {
		t.Fatalf("shape %v, %d elements", x.Shape, len(x.Data))
	}
}

// FuzzUnpickle checks the validator's promise: gopickle, configured as the
// loaders configure it but without their recover, never panics on a pickle
// the validator accepted.
func FuzzUnpickle(f *testing.F) {
	for _, name := range []string{"tensors_misc.pt", "mel_transposed.pt"} {
		for _, m := range readZip(f, filepath.Join(fixtureDir, name)) {
			if filepath.Base(m.name) == "data.pkl" {
				f.Add(m.data)
			}
		}
	}
	for _, p := range fuzzPickles() {
		f.Add([]byte(p))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := scanPickle(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		u := pickle.NewUnpickler(bytes.NewReader(p))
		u.FindClass = lookupGlobal
		u.PersistentLoad = (&storages{byKey: make(map[string]*storage)}).persistentLoad
		_, _ = u.Load()
	})
}
