package npy

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ReadNPZ reads a numpy.savez or numpy.savez_compressed archive. Member
// "<key>.npy" becomes entry key of the result; keys may contain any
// characters, including dots, brackets and colons. A member that is not a
// .npy file, a duplicate key or bytes after an array are errors. The total
// number of elements across all members is capped at DefaultMaxElements.
func ReadNPZ(path string) (map[string]Array, error) {
	zr, err := zip.OpenReader(path)
	// Member names are only map keys, never paths on disk, so names that
	// archive/zip may flag as insecure (GODEBUG=zipinsecurepath=0) are fine.
	if errors.Is(err, zip.ErrInsecurePath) && zr != nil {
		err = nil
	}
	if err != nil {
		return nil, fmt.Errorf("npy: open npz: %w", err)
	}
	defer zr.Close()
	out := make(map[string]Array, len(zr.File))
	budget := DefaultMaxElements
	for _, f := range zr.File {
		key, ok := strings.CutSuffix(f.Name, ".npy")
		if !ok {
			return nil, fmt.Errorf("npy: %s: member %q is not a .npy file", path, f.Name)
		}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("npy: %s: duplicate member %q", path, f.Name)
		}
		if budget <= 0 {
			return nil, fmt.Errorf("npy: %s: total element limit of %d reached before member %q", path, DefaultMaxElements, f.Name)
		}
		a, err := readMember(f, budget)
		if err != nil {
			return nil, fmt.Errorf("%s: member %q: %w", path, f.Name, err)
		}
		budget -= len(a.Data)
		out[key] = a
	}
	return out, nil
}

// readMember decodes one archive member holding at most maxElements (> 0)
// elements and checks that nothing follows the array.
func readMember(f *zip.File, maxElements int) (Array, error) {
	rc, err := f.Open()
	if err != nil {
		return Array{}, err
	}
	defer rc.Close()
	a, err := Read(rc, maxElements)
	if err != nil {
		return Array{}, err
	}
	// Reading to the end makes archive/zip verify the CRC-32.
	var b [1]byte
	if n, err := io.ReadFull(rc, b[:]); n != 0 {
		return Array{}, errors.New("unexpected data after the array")
	} else if err != io.EOF {
		return Array{}, err
	}
	return a, nil
}
