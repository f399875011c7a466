package torchfile

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/big"
	"path"
	"slices"
	"strings"

	"github.com/nlpodyssey/gopickle/types"
)

// file is an opened PyTorch file: the unpickled root object, whose tensors
// read their bytes on demand, and the byte order of those bytes.
type file struct {
	root   any
	order  binary.ByteOrder
	budget *budget
}

// open detects the container format (zip or legacy) and unpickles the root
// object.
func open(r io.ReaderAt, size int64) (*file, error) {
	if size < 0 {
		return nil, fmt.Errorf("%w: negative size %d", ErrFormat, size)
	}
	var head [262]byte
	n, err := r.ReadAt(head[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read header: %w", err)
	}
	switch {
	case bytes.HasPrefix(head[:n], []byte("PK\x03\x04")):
		return openZip(r, size)
	case n == len(head) && string(head[257:262]) == "ustar":
		return nil, fmt.Errorf("%w: tar-based checkpoints of early PyTorch versions are not supported", ErrFormat)
	}
	return openLegacy(r, size)
}

// storages is the set of storages a pickle references, by key.
type storages struct {
	byKey map[string]*storage
	// locate, when not nil, finds the bytes of a storage as soon as the
	// pickle names it (zip format).
	locate func(*storage) error
}

// persistentLoad resolves the persistent ids of torch.save:
// ('storage', storage class, key, location, numel[, view metadata]) and, in
// the legacy format, ('module', class, source file, source).
func (s *storages) persistentLoad(pid any) (any, error) {
	t, ok := pid.(*types.Tuple)
	if !ok || t.Len() == 0 {
		return nil, fmt.Errorf("%w: persistent id is a %s", ErrFormat, pyType(pid))
	}
	switch kind, _ := t.Get(0).(string); kind {
	case "module":
		if t.Len() != 4 {
			return nil, fmt.Errorf("%w: module persistent id of length %d", ErrFormat, t.Len())
		}
		c, ok := t.Get(1).(*pyClass)
		if !ok {
			return nil, fmt.Errorf("%w: module persistent id names a %s", ErrFormat, pyType(t.Get(1)))
		}
		return c, nil
	case "storage":
		return s.storage(*t)
	default:
		return nil, fmt.Errorf("%w: persistent id of kind %q", ErrFormat, short(kind))
	}
}

// storage resolves a storage persistent id: five items in the zip format,
// six in the legacy format (whose view metadata must be None), one storage
// per key.
func (s *storages) storage(pid []any) (any, error) {
	if len(pid) != 5 && len(pid) != 6 {
		return nil, fmt.Errorf("%w: storage persistent id of length %d", ErrFormat, len(pid))
	}
	if len(pid) == 6 && pid[5] != nil {
		return nil, fmt.Errorf("%w: storage views (legacy view metadata) are not supported", ErrFormat)
	}
	typ, ok1 := pid[1].(*storageType)
	key, ok2 := pid[2].(string)
	_, ok3 := pid[3].(string) // location ("cpu", "cuda:0"): irrelevant here
	numel, ok4 := pid[4].(int)
	if !ok1 || !ok2 || !ok3 || !ok4 || numel < 0 {
		return nil, fmt.Errorf("%w: malformed storage persistent id", ErrFormat)
	}
	if old := s.byKey[key]; old != nil {
		if old.dtype != typ.dtype || old.numel != int64(numel) {
			return nil, fmt.Errorf("%w: storage %q declared twice differently", ErrFormat, short(key))
		}
		return old, nil
	}
	st := &storage{key: key, dtype: typ.dtype, numel: int64(numel)}
	if st.numel > math.MaxInt64/st.dtype.size() {
		return nil, fmt.Errorf("%w: storage %q of %d elements", ErrLimit, short(key), numel)
	}
	if s.locate != nil {
		if err := s.locate(st); err != nil {
			return nil, err
		}
	}
	s.byKey[key] = st
	return st, nil
}

// openZip reads the zip format of torch.save (PyTorch >= 1.6): <dir>/data.pkl,
// storages in <dir>/data/<key>, optionally <dir>/byteorder.
func openZip(r io.ReaderAt, size int64) (*file, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	members := make(map[string]*zip.File, len(zr.File))
	var pickles []*zip.File
	for _, f := range zr.File {
		if _, dup := members[f.Name]; dup {
			return nil, fmt.Errorf("%w: duplicate zip member %q", ErrFormat, short(f.Name))
		}
		members[f.Name] = f
		dir, base := path.Split(f.Name)
		if strings.Count(dir, "/") != 1 || dir == "/" {
			continue
		}
		switch base {
		case "data.pkl":
			pickles = append(pickles, f)
		case "constants.pkl":
			return nil, fmt.Errorf("%w: TorchScript archives are not supported", ErrFormat)
		}
	}
	if len(pickles) != 1 {
		return nil, fmt.Errorf("%w: zip archive has %d <dir>/data.pkl members, want 1", ErrFormat, len(pickles))
	}
	dir, _ := path.Split(pickles[0].Name)

	order, err := zipByteOrder(members[dir+"byteorder"])
	if err != nil {
		return nil, err
	}
	data, err := readZipPickle(pickles[0])
	if err != nil {
		return nil, err
	}
	st := &storages{byKey: make(map[string]*storage)}
	st.locate = func(s *storage) error {
		f := members[dir+"data/"+s.key]
		if f == nil {
			return fmt.Errorf("%w: storage %q has no zip member", ErrFormat, short(s.key))
		}
		need := s.numel * s.dtype.size()
		if uint64(need) > f.UncompressedSize64 {
			return fmt.Errorf("%w: storage %q declares %d elements (%d bytes) but its record holds %d bytes",
				ErrFormat, short(s.key), s.numel, need, f.UncompressedSize64)
		}
		if f.Method != zip.Store {
			s.data = zipData{f}
			return nil
		}
		off, err := f.DataOffset()
		if err != nil {
			return fmt.Errorf("%w: %w", ErrFormat, err)
		}
		if off > size || f.CompressedSize64 != f.UncompressedSize64 || f.CompressedSize64 > uint64(size-off) {
			return fmt.Errorf("%w: zip member %q extends past the end of the file", ErrFormat, short(f.Name))
		}
		s.data = sectionData{r: r, off: off}
		return nil
	}
	root, err := unpickle(data, st.persistentLoad)
	if err != nil {
		return nil, err
	}
	return &file{root: root, order: order, budget: newBudget(size)}, nil
}

func readZipPickle(f *zip.File) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	defer rc.Close()
	return scanPickle(rc, int64(min(f.UncompressedSize64, math.MaxInt64)))
}

// zipByteOrder reads the optional byteorder record ("little" or "big").
func zipByteOrder(f *zip.File) (binary.ByteOrder, error) {
	if f == nil {
		return binary.LittleEndian, nil
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 16))
	if err != nil {
		return nil, fmt.Errorf("%w: byteorder: %w", ErrFormat, err)
	}
	switch string(b) {
	case "little":
		return binary.LittleEndian, nil
	case "big":
		return binary.BigEndian, nil
	}
	return nil, fmt.Errorf("%w: byteorder %q", ErrFormat, b)
}

// zipData is a compressed zip member holding a storage. PyTorch writes
// uncompressed members; this serves archives that were repacked.
type zipData struct{ f *zip.File }

func (z zipData) readAt(off, n int64) ([]byte, error) {
	rc, err := z.f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if _, err := io.CopyN(io.Discard, rc, off); err != nil {
		return nil, fmt.Errorf("read storage: %w", err)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(rc, b); err != nil {
		return nil, fmt.Errorf("read storage: %w", err)
	}
	return b, nil
}

// Legacy format constants (torch/serialization.py).
const (
	legacyMagic    = "1950a86a20f9469cfc6c"
	legacyProtocol = 1001
)

// openLegacy reads the format of torch.save before PyTorch 1.6 (and with
// _use_new_zipfile_serialization=False): five pickles (magic number,
// protocol version, sys info, the object, the storage keys), then for each
// key an int64 element count and the storage bytes.
func openLegacy(r io.ReaderAt, size int64) (*file, error) {
	var off int64
	next := func(pl func(any) (any, error)) (any, error) {
		data, err := scanPickle(io.NewSectionReader(r, off, size-off), size-off)
		if err != nil {
			return nil, err
		}
		off += int64(len(data))
		return unpickle(data, pl)
	}
	magic, err := next(nil)
	if n, ok := magic.(*big.Int); err != nil || !ok || n.Text(16) != legacyMagic {
		return nil, fmt.Errorf("%w: not a PyTorch file (no zip archive, no legacy magic number)", ErrFormat)
	}
	if v, err := next(nil); err != nil || v != legacyProtocol {
		return nil, fmt.Errorf("%w: unsupported legacy protocol version", ErrFormat)
	}
	sysInfo, err := next(nil)
	if err != nil {
		return nil, err
	}
	var order binary.ByteOrder = binary.LittleEndian
	if little, ok := lookup(sysInfo, "little_endian"); ok && little == false {
		order = binary.BigEndian
	}
	st := &storages{byKey: make(map[string]*storage)}
	root, err := next(st.persistentLoad)
	if err != nil {
		return nil, err
	}
	keysObj, err := next(nil)
	if err != nil {
		return nil, err
	}
	keys, ok := sequence(keysObj)
	if !ok {
		return nil, fmt.Errorf("%w: storage key list is a %s", ErrFormat, pyType(keysObj))
	}
	for _, k := range keys {
		key, _ := k.(string)
		s := st.byKey[key]
		if s == nil || s.data != nil {
			return nil, fmt.Errorf("%w: storage key list names an unknown or repeated storage", ErrFormat)
		}
		var count [8]byte
		if err := readFullAt(r, count[:], off); err != nil {
			return nil, fmt.Errorf("%w: storage %q: truncated file", ErrFormat, short(key))
		}
		off += 8
		if n := int64(order.Uint64(count[:])); n != s.numel {
			return nil, fmt.Errorf("%w: storage %q has %d elements in the file, %d in the pickle",
				ErrFormat, short(key), n, s.numel)
		}
		nbytes := s.numel * s.dtype.size()
		if nbytes > size-off {
			return nil, fmt.Errorf("%w: storage %q needs %d bytes, the file has %d left",
				ErrFormat, short(key), nbytes, size-off)
		}
		s.data = sectionData{r: r, off: off}
		off += nbytes
	}
	for _, key := range slices.Sorted(maps.Keys(st.byKey)) {
		if st.byKey[key].data == nil {
			return nil, fmt.Errorf("%w: storage %q is missing from the file", ErrFormat, short(key))
		}
	}
	return &file{root: root, order: order, budget: newBudget(size)}, nil
}

// short truncates a string from a file for use in an error message.
func short(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
