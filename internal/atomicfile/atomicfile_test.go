package atomicfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// entries lists the names in dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func TestWriteFile(t *testing.T) {
	tests := []struct {
		name     string
		existing []byte // nil: no file before
		content  []byte
	}{
		{"new file", nil, []byte("hello")},
		{"replace", []byte("old content that is longer"), []byte("new")},
		{"empty", []byte("x"), []byte{}},
		{"large", nil, bytes.Repeat([]byte("0123456789"), 100000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f.bin")
			if tt.existing != nil {
				if err := os.WriteFile(path, tt.existing, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := WriteFile(path, 0o640, func(w io.Writer) error {
				_, err := w.Write(tt.content)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.content) {
				t.Errorf("content %d bytes, want %d", len(got), len(tt.content))
			}
			if runtime.GOOS != "windows" {
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != 0o640 {
					t.Errorf("mode %v, want 0640", fi.Mode().Perm())
				}
			}
			if names := entries(t, dir); len(names) != 1 {
				t.Errorf("directory holds %v, want only f.bin", names)
			}
		})
	}
}

func TestWriteFileRelative(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := WriteFile("rel.txt", 0o644, func(w io.Writer) error {
		_, err := io.WriteString(w, "x")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile("rel.txt"); err != nil || string(got) != "x" {
		t.Errorf("got %q, %v", got, err)
	}
}

func TestWriteFileErrorKeepsOld(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name  string
		write func(w io.Writer) error
	}{
		{"error before writing", func(io.Writer) error { return errBoom }},
		{"error after partial write", func(w io.Writer) error {
			if _, err := w.Write(bytes.Repeat([]byte("y"), 1<<20)); err != nil {
				return err
			}
			return errBoom
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f.txt")
			if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			err := WriteFile(path, 0o644, tt.write)
			if !errors.Is(err, errBoom) {
				t.Fatalf("error %v, want one wrapping %v", err, errBoom)
			}
			if got, _ := os.ReadFile(path); string(got) != "old" {
				t.Errorf("content %q, want old", got)
			}
			if names := entries(t, dir); len(names) != 1 {
				t.Errorf("directory holds %v, want only f.txt", names)
			}
		})
	}
}

func TestWriteFilePanicCleansUp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.txt")
	func() {
		defer func() { _ = recover() }()
		_ = WriteFile(path, 0o644, func(io.Writer) error { panic("boom") })
	}()
	if names := entries(t, dir); len(names) != 0 {
		t.Errorf("directory holds %v, want nothing", names)
	}
}

func TestWriteFileMissingDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "such", "f.txt")
	if err := WriteFile(path, 0o644, func(io.Writer) error { return nil }); err == nil {
		t.Error("no error for a missing directory")
	}
}

// TestConcurrentWriters checks that readers and the final file only ever
// see one writer's complete content.
func TestConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.txt")
	const writers, size = 8, 64 << 10
	content := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i)}, size) }
	check := func(b []byte) error {
		if len(b) != size || !bytes.Equal(b, bytes.Repeat(b[:1], size)) {
			return fmt.Errorf("torn file: %d bytes", len(b))
		}
		return nil
	}
	if err := os.WriteFile(path, content(0), 0o644); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	errs := make(chan error, writers*5+1)
	done := make(chan struct{})
	go func() { // reader
		defer close(done)
		for range 200 {
			b, err := os.ReadFile(path)
			if err != nil {
				errs <- err
				return
			}
			if err := check(b); err != nil {
				errs <- err
				return
			}
		}
	}()
	for i := range writers {
		wg.Go(func() {
			for range 5 {
				if err := WriteFile(path, 0o644, func(w io.Writer) error {
					_, err := w.Write(content(i))
					return err
				}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	<-done
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := check(b); err != nil {
		t.Error(err)
	}
	if names := entries(t, dir); len(names) != 1 {
		t.Errorf("directory holds %v, want only f.txt", names)
	}
}
