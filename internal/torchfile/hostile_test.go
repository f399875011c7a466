package torchfile

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// pk builds pickles for tests.
type pk struct{ bytes.Buffer }

func (p *pk) op(s string) *pk { p.WriteString(s); return p }

// str appends BINUNICODE s.
func (p *pk) str(s string) *pk {
	p.WriteByte('X')
	_ = binary.Write(p, binary.LittleEndian, uint32(len(s)))
	p.WriteString(s)
	return p
}

// global appends GLOBAL module.name.
func (p *pk) global(module, name string) *pk { return p.op("c" + module + "\n" + name + "\n") }

// put and get use LONG_BINPUT / LONG_BINGET.
func (p *pk) put(i uint32) *pk {
	p.WriteByte('r')
	_ = binary.Write(p, binary.LittleEndian, i)
	return p
}

func (p *pk) get(i uint32) *pk {
	p.WriteByte('j')
	_ = binary.Write(p, binary.LittleEndian, i)
	return p
}

// module appends a module instance of class glow.WN with empty _parameters
// and _buffers and a _modules OrderedDict stored in memo slot odSlot.
func (p *pk) module(odSlot uint32) *pk {
	p.global("glow", "WN").op(")\x81}(")
	p.str("_parameters").global("collections", "OrderedDict").op(")R")
	p.str("_buffers").global("collections", "OrderedDict").op(")R")
	p.str("_modules").global("collections", "OrderedDict").op(")R").put(odSlot)
	return p.op("ub")
}

// legacyFile wraps a pickle in the legacy container, with no storages: the
// header pickles of the reference legacy checkpoint, the pickle, and an empty
// storage key list.
func legacyFile(t testing.TB, pickle []byte) []byte {
	t.Helper()
	ref, err := os.ReadFile(filepath.Join(refDir, "checkpoint_legacy_cuda.pt"))
	if err != nil {
		t.Fatal(err)
	}
	const headerLen = 137 // magic number, protocol version and sys info pickles
	out := append([]byte{}, ref[:headerLen]...)
	out = append(out, pickle...)
	return append(out, "\x80\x02]."...)
}

func TestHostilePickles(t *testing.T) {
	deepModules := new(pk).op("\x80\x02")
	const depth = maxModuleDepth + 2
	for i := range uint32(depth) {
		deepModules.module(2 * i).put(2*i + 1).op("0")
	}
	for i := range uint32(depth - 1) {
		deepModules.get(2 * i).str("m").get(2*i + 3).op("s0")
	}
	deepModules.get(1).op(".")

	for _, tc := range []struct {
		name   string
		pickle string
		err    error
		msg    string // in the error message
	}{
		{"GLOBAL builtins.eval", "\x80\x02cbuiltins\neval\nX\x01\x00\x00\x001\x85R.", ErrForbiddenGlobal, "builtins.eval"},
		{"GLOBAL subprocess.Popen", "\x80\x02csubprocess\nPopen\n.", ErrForbiddenGlobal, "subprocess.Popen"},
		{"STACK_GLOBAL posix.system", "\x80\x04\x8c\x05posix\x8c\x06system\x93\x8c\x02id\x85R.", ErrForbiddenGlobal, "posix.system"},
		{"STACK_GLOBAL from memo", "\x80\x04\x8c\x02os\x94\x8c\x06system\x94h\x00h\x01\x930\x8c\x01x.", ErrForbiddenGlobal, "os.system"},
		{"STACK_GLOBAL of non-strings", "\x80\x04K\x01K\x02\x93.", ErrFormat, "STACK_GLOBAL"},
		{"copy_reg._reconstructor", "\x80\x02ccopy_reg\n_reconstructor\n.", ErrForbiddenGlobal, "copy_reg._reconstructor"},
		{"array._array_reconstructor", "\x80\x02carray\n_array_reconstructor\n.", ErrForbiddenGlobal, "array._array_reconstructor"},
		{"__builtin__.object", "\x80\x02c__builtin__\nobject\n.", ErrForbiddenGlobal, "__builtin__.object"},
		{"torch.load", "\x80\x02ctorch\nload\n.", ErrForbiddenGlobal, "torch.load"},
		{"INST", "(ios\nsystem\nX\x01\x00\x00\x00x.", ErrFormat, "not supported"},
		{"OBJ", "(K\x01o.", ErrFormat, "not supported"},
		{"EXT1", "\x82\x01.", ErrFormat, "not supported"},
		{"bytes", "C\x01a.", ErrFormat, "bytes"},
		{"unknown opcode", "\xff.", ErrFormat, "unknown pickle opcode"},
		{"BINUNICODE of 4 GiB", "X\xff\xff\xff\xffab.", ErrFormat, "bytes left"},
		{"BINUNICODE8 of 2^62 bytes", "\x8d\x00\x00\x00\x00\x00\x00\x00\x40.", ErrFormat, "bytes left"},
		{"FRAME of 2^63 bytes", "\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\x7fN.", ErrFormat, "bytes left"},
		{"LONG4 negative", "\x8b\xff\xff\xff\xff.", ErrFormat, "bytes left"},
		{"truncated", "X\x05\x00\x00\x00ab", ErrFormat, "bytes left"},
		{"empty LONG1", "\x8a\x00.", ErrFormat, "LONG"},
		{"odd SETITEMS", "}(K\x01u.", ErrFormat, "odd"},
		{"odd DICT", "(K\x01d.", ErrFormat, "odd"},
		{"unwritten memo slot", "h\x05.", ErrFormat, "memo"},
		{"negative PUT", "Np-1\n.", ErrFormat, "memo index"},
		{"stack underflow", "NR.", ErrFormat, "underflow"},
		{"SETITEM underflow", "}N(s.", ErrFormat, "underflow"},
		{"POP_MARK without mark", "1.", ErrFormat, "mark"},
		{"values left at STOP", "NN.", ErrFormat, "left on its stack"},
		{"protocol 6", "\x80\x06N.", ErrFormat, "protocol"},
		{"deep marks", strings.Repeat("(", maxMarkDepth+1), ErrLimit, "nested"},
		{"stack flood", strings.Repeat("N", maxStackItems+1), ErrLimit, "stack"},
		{"opcode flood", strings.Repeat("N0", maxPickleOps/2+1), ErrLimit, "opcodes"},
		{"REDUCE of a module class", "\x80\x02cglow\nWaveGlow\n)R.", ErrFormat, "Callable"},
		{"unknown persistent id", "\x80\x02X\x03\x00\x00\x00foo\x85Q.", ErrFormat, "persistent id"},
		{"text persistent id", "Pfoo\n.", ErrFormat, "persistent id"},
		{"cyclic list", "]q\x00h\x00a.", ErrFormat, "list"},
		{"module nesting", deepModules.String(), ErrLimit, "nested"},
		{"OrderedDict with items", "\x80\x02ccollections\nOrderedDict\nK\x01\x85R.", ErrFormat, "OrderedDict"},
		{"rebuild with bad args", "\x80\x02ctorch._utils\n_rebuild_tensor_v2\nK\x01\x85R.", ErrFormat, "_rebuild_tensor_v2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := legacyFile(t, []byte(tc.pickle))
			_, err := LoadReader(bytes.NewReader(file), int64(len(file)))
			if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %v, want %v containing %q", err, tc.err, tc.msg)
			}
			if strings.HasPrefix(tc.name, "GLOBAL") || strings.HasPrefix(tc.name, "STACK_GLOBAL") {
				// Refused by the validator, before anything ran.
				if !strings.Contains(err.Error(), "pickle at byte") {
					t.Errorf("error %v not from the validator", err)
				}
			}
		})
	}
}

func TestModuleCycle(t *testing.T) {
	// A module listed among its own submodules is walked once.
	p := new(pk).op("\x80\x02").module(0).put(1).op("0")
	p.get(0).str("self").get(1).op("s0").get(1).op(".")
	file := legacyFile(t, p.Bytes())
	ck, err := LoadReader(bytes.NewReader(file), int64(len(file)))
	if err != nil {
		t.Fatal(err)
	}
	if len(ck.Names) != 0 {
		t.Errorf("names %v", ck.Names)
	}
}

func TestScanPickleEnd(t *testing.T) {
	for _, tc := range []struct {
		name  string
		data  string
		avail int64
		err   error
	}{
		// A string of 100 MiB in a stream of unknown (huge) length.
		{"100 MiB string", "\x8d\x00\x00\x40\x06\x00\x00\x00\x00" + strings.Repeat("a", 1024), 1 << 40, ErrLimit},
		{"no STOP", "NNN", 3, ErrFormat},
		{"shorter than announced", "NNN", 100, ErrFormat},
		{"data after STOP", "N.garbage", 9, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := scanPickle(strings.NewReader(tc.data), tc.avail)
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if err == nil && string(got) != "N." {
				t.Errorf("pickle %q, want %q", got, "N.")
			}
		})
	}
}

func TestEvilFixture(t *testing.T) {
	_, err := Load(filepath.Join(fixtureDir, "evil_os_system.pt"))
	if !errors.Is(err, ErrForbiddenGlobal) || !strings.Contains(err.Error(), "posix.system") {
		t.Fatalf("error %v, want ErrForbiddenGlobal naming posix.system", err)
	}
}

// zipMember is one member of a zip archive.
type zipMember struct {
	name string
	data []byte
}

func readZip(t testing.TB, path string) []zipMember {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var out []zipMember
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
		out = append(out, zipMember{f.Name, b})
	}
	return out
}

// writeZip builds an archive; sizes, when not nil, overrides the declared
// size of members (written raw, uncompressed, with a wrong CRC).
func writeZip(t testing.TB, members []zipMember, method uint16, sizes map[string]uint64) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range members {
		var w io.Writer
		var err error
		if n, ok := sizes[m.name]; ok {
			w, err = zw.CreateRaw(&zip.FileHeader{Name: m.name, Method: zip.Store, CompressedSize64: n, UncompressedSize64: n})
		} else {
			w, err = zw.CreateHeader(&zip.FileHeader{Name: m.name, Method: method})
		}
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
	return buf.Bytes()
}

func TestZipVariants(t *testing.T) {
	ref := filepath.Join(refDir, "state_dict.pt")
	want, err := Load(ref)
	if err != nil {
		t.Fatal(err)
	}
	members := readZip(t, ref)

	t.Run("deflated", func(t *testing.T) {
		file := writeZip(t, members, zip.Deflate, nil)
		got, err := LoadReader(bytes.NewReader(file), int64(len(file)))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range want.Names {
			if !equalData(got.Tensors[n].Data, want.Tensors[n].Data) {
				t.Fatalf("%s differs", n)
			}
		}
	})

	t.Run("big endian", func(t *testing.T) {
		mel := filepath.Join(fixtureDir, "mel_batched.pt")
		want, err := LoadTensor(mel)
		if err != nil {
			t.Fatal(err)
		}
		var swapped []zipMember
		for _, m := range readZip(t, mel) {
			if strings.Contains(m.name, "/data/") {
				b := bytes.Clone(m.data)
				for i := 0; i+4 <= len(b); i += 4 {
					b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
				}
				m.data = b
			}
			swapped = append(swapped, m)
		}
		swapped = append(swapped, zipMember{"mel_batched/byteorder", []byte("big")})
		file := writeZip(t, swapped, zip.Store, nil)
		got, err := LoadTensorReader(bytes.NewReader(file), int64(len(file)))
		if err != nil {
			t.Fatal(err)
		}
		if !equalData(got.Data, want.Data) {
			t.Error("big-endian storage decoded differently")
		}
	})

	for _, tc := range []struct {
		name    string
		members func() []zipMember
		err     error
	}{
		{"missing storage", func() []zipMember {
			var out []zipMember
			for _, m := range members {
				if !strings.HasSuffix(m.name, "/data/3") {
					out = append(out, m)
				}
			}
			return out
		}, ErrFormat},
		{"two data.pkl", func() []zipMember {
			return append(append([]zipMember{}, members...), zipMember{"other/data.pkl", []byte("N.")})
		}, ErrFormat},
		{"TorchScript", func() []zipMember {
			return append(append([]zipMember{}, members...), zipMember{"state_dict/constants.pkl", []byte(")")})
		}, ErrFormat},
		{"bad byteorder", func() []zipMember {
			return append(append([]zipMember{}, members...), zipMember{"state_dict/byteorder", []byte("middle")})
		}, ErrFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := writeZip(t, tc.members(), zip.Store, nil)
			if _, err := LoadReader(bytes.NewReader(file), int64(len(file))); !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
		})
	}
}

func equalData(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// TestHugeStorage checks that storages declaring 2^31 float32 elements (8
// GiB) in tiny files fail fast, without allocating their declared size.
func TestHugeStorage(t *testing.T) {
	fixture := filepath.Join(fixtureDir, "huge_storage.pt")
	pickle := readZip(t, fixture)[0]
	record := zipMember{"huge_storage/data/0", []byte{0, 0, 0, 0}}
	const declared = 8 << 30
	for _, tc := range []struct {
		name string
		file func() []byte
		err  error
	}{
		{"fixture", func() []byte {
			b, err := os.ReadFile(fixture)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}, ErrFormat},
		{"stored member declaring 8 GiB", func() []byte {
			return writeZip(t, []zipMember{pickle, record}, zip.Store, map[string]uint64{record.name: declared})
		}, ErrFormat},
		{"deflated member declaring 8 GiB", func() []byte {
			var buf bytes.Buffer
			zw := zip.NewWriter(&buf)
			w, err := zw.Create(pickle.name)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(pickle.data); err != nil {
				t.Fatal(err)
			}
			w, err = zw.CreateRaw(&zip.FileHeader{Name: record.name, Method: zip.Deflate, CompressedSize64: 2, UncompressedSize64: declared})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write([]byte{3, 0}); err != nil { // an empty deflate stream
				t.Fatal(err)
			}
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			return buf.Bytes()
		}, ErrLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := tc.file()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, err := LoadReader(bytes.NewReader(file), int64(len(file)))
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
				t.Errorf("allocated %d bytes", alloc)
			}
			if elapsed > 5*time.Second {
				t.Errorf("took %v", elapsed)
			}
		})
	}
}

func TestLegacyCorruption(t *testing.T) {
	orig, err := os.ReadFile(filepath.Join(fixtureDir, "mel_legacy_view.pt"))
	if err != nil {
		t.Fatal(err)
	}
	const storageBytes = 8 * 30 * 4 // torch.randn(8, 30), float32
	countAt := len(orig) - storageBytes - 8
	for _, tc := range []struct {
		name string
		edit func([]byte) []byte
	}{
		{"truncated storage", func(b []byte) []byte { return b[:len(b)-10] }},
		{"truncated count", func(b []byte) []byte { return b[:countAt+4] }},
		{"count mismatch", func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[countAt:], 1<<40)
			return b
		}},
		{"bad magic", func(b []byte) []byte {
			b[5] ^= 0xff
			return b
		}},
		{"not a pickle", func([]byte) []byte { return []byte("hello, world") }},
		{"empty", func([]byte) []byte { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.edit(bytes.Clone(orig))
			if _, err := LoadTensorReader(bytes.NewReader(b), int64(len(b))); !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v, want ErrFormat", err)
			}
		})
	}
}

func TestNewTensorRef(t *testing.T) {
	st := &storage{key: "0", dtype: float32Type, numel: 12}
	for _, tc := range []struct {
		name          string
		offset        int
		shape, stride []int
		ok            bool
		numel, lo, hi int64
	}{
		{"contiguous", 0, []int{3, 4}, []int{4, 1}, true, 12, 0, 12},
		{"transposed", 0, []int{4, 3}, []int{1, 4}, true, 12, 0, 12},
		{"offset view", 5, []int{2, 3}, []int{4, 1}, true, 6, 5, 12},
		{"expanded", 11, []int{1000, 1}, []int{0, 1}, true, 1000, 11, 12},
		{"0-d", 7, []int{}, []int{}, true, 1, 7, 8},
		{"empty", 100, []int{0, 5}, []int{5, 1}, true, 0, 0, 0},
		{"past the end", 1, []int{3, 4}, []int{4, 1}, false, 0, 0, 0},
		{"offset past the end", 12, []int{}, []int{}, false, 0, 0, 0},
		{"negative offset", -1, []int{1}, []int{1}, false, 0, 0, 0},
		{"negative size", 0, []int{-1}, []int{1}, false, 0, 0, 0},
		{"negative stride", 0, []int{2}, []int{-1}, false, 0, 0, 0},
		{"rank mismatch", 0, []int{2, 2}, []int{1}, false, 0, 0, 0},
		{"huge stride", 0, []int{2}, []int{math.MaxInt64}, false, 0, 0, 0},
		{"numel overflow", 0, []int{1 << 40, 1 << 40}, []int{0, 0}, false, 0, 0, 0},
		{"too many dims", 0, make([]int, maxDims+1), make([]int, maxDims+1), false, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref, err := newTensorRef(st, tc.offset, tc.shape, tc.stride)
			if !tc.ok {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ref.numel != tc.numel || ref.lo != tc.lo || ref.hi != tc.hi {
				t.Errorf("numel %d, range [%d, %d), want %d, [%d, %d)", ref.numel, ref.lo, ref.hi, tc.numel, tc.lo, tc.hi)
			}
		})
	}
}
