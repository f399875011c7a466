// Package atomicfile writes files so that readers see either the old content
// or the complete new content, never a partial file.
//
// The new content goes to a temporary file in the destination directory,
// which is flushed, synced to stable storage, closed and then renamed over the
// destination. Rename within one directory is atomic on POSIX file systems
// and replaces the destination on Windows.
package atomicfile

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteFile writes a file atomically: it calls write with a temporary file in
// the same directory, syncs, closes and renames it over path. On any error
// the temporary file is removed and path is untouched.
//
// The writer passed to write is buffered; write must not retain it after
// returning. The file gets permission bits perm exactly (the umask is not
// applied). After the rename the directory is synced on a best-effort basis
// so the new name survives a crash.
func WriteFile(path string, perm os.FileMode, write func(w io.Writer) error) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("atomicfile: create temporary file for %s: %w", path, err)
	}
	tmp := f.Name()
	committed := false
	defer func() {
		if !committed {
			// Cleanup after a failure (or a panic in write); errors here
			// cannot improve on the one already being reported.
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()

	bw := bufio.NewWriter(f)
	if err := write(bw); err != nil {
		return fmt.Errorf("atomicfile: write %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("atomicfile: write %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("atomicfile: set permissions of %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("atomicfile: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("atomicfile: close %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("atomicfile: rename into %s: %w", path, err)
	}
	committed = true
	syncDir(dir)
	return nil
}

// syncDir makes a rename in dir durable where the platform allows it.
// Failure is ignored: some systems (Windows, some network file systems)
// cannot sync a directory, and the file itself is already synced.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}
