package melspec

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// refDir holds the reference fixtures (testdata/reference/README.md).
const refDir = "../testdata/reference"

// array is a float32 array read from a .npy file.
type array struct {
	shape []int
	data  []float32
}

// parseNPY decodes a version 1.0, little-endian float32, C-order .npy file.
func parseNPY(b []byte) (array, error) {
	const magic = "\x93NUMPY\x01\x00"
	if len(b) < len(magic)+2 || string(b[:len(magic)]) != magic {
		return array{}, fmt.Errorf("not a version 1.0 .npy file")
	}
	hlen := int(binary.LittleEndian.Uint16(b[len(magic):]))
	start := len(magic) + 2 + hlen
	if len(b) < start {
		return array{}, fmt.Errorf("truncated header")
	}
	header := string(b[len(magic)+2 : start])
	if !strings.Contains(header, "'descr': '<f4'") || !strings.Contains(header, "'fortran_order': False") {
		return array{}, fmt.Errorf("unsupported header %q", header)
	}
	i := strings.Index(header, "'shape': (")
	if i < 0 {
		return array{}, fmt.Errorf("no shape in header %q", header)
	}
	rest := header[i+len("'shape': ("):]
	j := strings.IndexByte(rest, ')')
	if j < 0 {
		return array{}, fmt.Errorf("bad shape in header %q", header)
	}
	a := array{shape: []int{}}
	n := 1
	for _, f := range strings.Split(rest[:j], ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		d, err := strconv.Atoi(f)
		if err != nil {
			return array{}, fmt.Errorf("bad shape in header %q: %w", header, err)
		}
		a.shape = append(a.shape, d)
		n *= d
	}
	if len(b)-start != 4*n {
		return array{}, fmt.Errorf("%d data bytes for %d values", len(b)-start, n)
	}
	a.data = make([]float32, n)
	if err := binary.Read(bytes.NewReader(b[start:]), binary.LittleEndian, a.data); err != nil {
		return array{}, err
	}
	return a, nil
}

// readNPY reads a .npy file relative to refDir.
func readNPY(t *testing.T, name string) array {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(refDir, name))
	if err != nil {
		t.Fatal(err)
	}
	a, err := parseNPY(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return a
}

// readNPZ reads every array of a .npz file relative to refDir.
func readNPZ(t *testing.T, name string) map[string]array {
	t.Helper()
	z, err := zip.OpenReader(filepath.Join(refDir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	m := make(map[string]array)
	for _, f := range z.File {
		r, err := f.Open()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatalf("%s: %s: %v", name, f.Name, err)
		}
		a, err := parseNPY(b)
		if err != nil {
			t.Fatalf("%s: %s: %v", name, f.Name, err)
		}
		m[strings.TrimSuffix(f.Name, ".npy")] = a
	}
	return m
}

// readWAV reads a mono 16-bit PCM WAV file relative to refDir and returns its
// rate and its samples as int16/32768.
func readWAV(t *testing.T, name string) (int, []float32) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(refDir, name))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		t.Fatalf("%s: not a RIFF/WAVE file", name)
	}
	rate := 0
	for p := 12; p+8 <= len(b); {
		id, size := string(b[p:p+4]), int(binary.LittleEndian.Uint32(b[p+4:]))
		body := b[p+8 : min(len(b), p+8+size)]
		switch id {
		case "fmt ":
			if len(body) < 16 || binary.LittleEndian.Uint16(body) != 1 ||
				binary.LittleEndian.Uint16(body[2:]) != 1 || binary.LittleEndian.Uint16(body[14:]) != 16 {
				t.Fatalf("%s: not mono 16-bit PCM", name)
			}
			rate = int(binary.LittleEndian.Uint32(body[4:]))
		case "data":
			if rate == 0 {
				t.Fatalf("%s: data before fmt chunk", name)
			}
			x := make([]float32, len(body)/2)
			for i := range x {
				x[i] = float32(int16(binary.LittleEndian.Uint16(body[2*i:]))) / 32768
			}
			return rate, x
		}
		p += 8 + size + size%2
	}
	t.Fatalf("%s: no data chunk", name)
	return 0, nil
}

// melCase is one entry of mel/cases.json.
type melCase struct {
	Name   string `json:"name"`
	WAV    string `json:"wav"`
	Params struct {
		SamplingRate int     `json:"sampling_rate"`
		FilterLength int     `json:"filter_length"`
		HopLength    int     `json:"hop_length"`
		WinLength    int     `json:"win_length"`
		MelFMin      float64 `json:"mel_fmin"`
		MelFMax      float64 `json:"mel_fmax"`
		NMelChannels int     `json:"n_mel_channels"`
	} `json:"params"`
	Filterbank  string `json:"filterbank"`
	NumSamples  int    `json:"num_samples"`
	Frames      int    `json:"frames"`
	NPZ         string `json:"npz"`
	ExpectError bool   `json:"expect_error"`
}

// config returns the Config of the case's parameters.
func (c melCase) config() Config {
	p := c.Params
	return Config{
		SampleRate: p.SamplingRate,
		NFFT:       p.FilterLength,
		Hop:        p.HopLength,
		Win:        p.WinLength,
		NMels:      p.NMelChannels,
		FMin:       p.MelFMin,
		FMax:       p.MelFMax,
	}
}

// window returns the name of the case's window fixture.
func (c melCase) window() string {
	return strings.Replace(c.Filterbank, "filterbank_", "window_", 1)
}

// readCases reads mel/cases.json.
func readCases(t *testing.T) []melCase {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(refDir, "mel", "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Cases []melCase `json:"cases"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("cases.json: %v", err)
	}
	if len(f.Cases) == 0 {
		t.Fatal("cases.json: no cases")
	}
	return f.Cases
}

// maxAbs returns max |x|.
func maxAbs(x []float32) float64 {
	var m float64
	for _, v := range x {
		m = math.Max(m, math.Abs(float64(v)))
	}
	return m
}

// maxAbsDiff returns max |got - want| over the indices where keep is nil or
// true, and the index at which it occurs. A NaN difference counts as +Inf.
func maxAbsDiff(got, want []float32, keep func(i int) bool) (float64, int) {
	var m float64
	at := -1
	for i := range want {
		if keep != nil && !keep(i) {
			continue
		}
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if math.IsNaN(d) {
			d = math.Inf(1)
		}
		if d > m || at < 0 {
			m, at = d, i
		}
	}
	return m, at
}

// relTo returns d / max |ref|, or 0 if ref is all zeros.
func relTo(d float64, ref []float32) float64 {
	if m := maxAbs(ref); m > 0 {
		return d / m
	}
	return 0
}
