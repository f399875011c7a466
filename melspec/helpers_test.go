package melspec

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glowvoc/glowvoc/audio"
	"github.com/glowvoc/glowvoc/internal/npy"
)

// refDir holds the reference fixtures (testdata/reference/README.md).
const refDir = "../testdata/reference"

// readNPY reads a .npy file relative to refDir.
func readNPY(t *testing.T, name string) npy.Array {
	t.Helper()
	a, err := npy.ReadFile(filepath.Join(refDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// readNPZ reads every array of a .npz file relative to refDir.
func readNPZ(t *testing.T, name string) map[string]npy.Array {
	t.Helper()
	m, err := npy.ReadNPZ(filepath.Join(refDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// readWAV reads a WAV file relative to refDir and returns its rate and its
// samples (16-bit values as int16/32768, like the reference).
func readWAV(t *testing.T, name string) (int, []float32) {
	t.Helper()
	c, err := audio.DecodeFile(filepath.Join(refDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return c.SampleRate, c.Samples
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
