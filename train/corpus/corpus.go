// Package corpus feeds WaveGlow training: it lists the clips of a speech
// corpus and cuts them into batches of fixed-length segments with their
// mel spectrograms, exactly as NVIDIA's mel2samp.py data loader does.
package corpus

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// List returns the WAV files of a corpus, in a deterministic order. source
// is one of:
//
//   - a directory: every *.wav file in it and its subdirectories, sorted;
//   - an LJSpeech-style metadata.csv ("id|transcription|normalised", '|'
//     separated, no header): the files wavs/<id>.wav next to it, in file
//     order;
//   - a filelist (NVIDIA style, any other file): one WAV path per line, in
//     order; a relative path is looked up next to the filelist first and
//     then in the working directory (where NVIDIA's train.py runs); blank
//     lines and lines starting with '#' are skipped, and a '|'-separated
//     line (Tacotron2 filelists) contributes its first field.
//
// Every listed file must exist.
func List(source string) ([]string, error) {
	fi, err := os.Stat(source)
	if err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	var files []string
	switch {
	case fi.IsDir():
		files, err = listDir(source)
	case strings.EqualFold(filepath.Base(source), "metadata.csv"):
		files, err = listMetadata(source)
	default:
		files, err = listFilelist(source)
	}
	if err != nil {
		return nil, fmt.Errorf("corpus %s: %w", source, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("corpus %s: no WAV files", source)
	}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("corpus %s: %w", source, err)
		}
	}
	return files, nil
}

func listDir(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.EqualFold(filepath.Ext(path), ".wav") {
			files = append(files, path)
		}
		return nil
	})
	slices.Sort(files)
	return files, err
}

func listMetadata(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comma = '|'
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	dir := filepath.Join(filepath.Dir(path), "wavs")
	var files []string
	for line := 1; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, err
		}
		id := strings.TrimSpace(rec[0])
		if id == "" {
			return nil, fmt.Errorf("line %d: empty clip id", line)
		}
		files = append(files, filepath.Join(dir, id+".wav"))
	}
}

func listFilelist(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dir := filepath.Dir(path)
	var files []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexByte(line, '|'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if !filepath.IsAbs(line) {
			if _, err := os.Stat(filepath.Join(dir, line)); err == nil {
				line = filepath.Join(dir, line)
			}
		}
		files = append(files, line)
	}
	return files, sc.Err()
}
