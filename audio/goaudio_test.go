package audio

import (
	"bytes"
	"math"
	"testing"

	"github.com/go-audio/wav"
)

// TestGoAudioReadsOurFiles uses github.com/go-audio/wav as an independent
// decoder: every PCM16 file Encode writes must parse there with the same
// format and the same integer samples. (The package does not decode with
// go-audio; see the package comment for why.)
func TestGoAudioReadsOurFiles(t *testing.T) {
	for _, rate := range []int{8000, 16000, 22050, 44100} {
		samples := make([]float32, 3001)
		for i := range samples {
			samples[i] = float32(0.9 * math.Sin(float64(i)*0.05) * math.Cos(float64(i)*0.0007))
		}
		samples[7], samples[8] = 2, -2 // clipped
		var buf bytes.Buffer
		if err := Encode(&buf, Clip{Samples: samples, SampleRate: rate}, PCM16); err != nil {
			t.Fatal(err)
		}
		d := wav.NewDecoder(bytes.NewReader(buf.Bytes()))
		if !d.IsValidFile() {
			t.Fatalf("rate %d: go-audio rejects our file", rate)
		}
		pcm, err := d.FullPCMBuffer()
		if err != nil {
			t.Fatalf("rate %d: go-audio: %v", rate, err)
		}
		if d.SampleRate != uint32(rate) || d.NumChans != 1 || d.BitDepth != 16 || d.WavAudioFormat != 1 {
			t.Errorf("go-audio header: rate %d, %d channels, %d bits, format %d", d.SampleRate, d.NumChans, d.BitDepth, d.WavAudioFormat)
		}
		if len(pcm.Data) != len(samples) {
			t.Fatalf("go-audio decoded %d samples, want %d", len(pcm.Data), len(samples))
		}
		ours, err := Decode(bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range pcm.Data {
			if float32(v)/32768 != ours.Samples[i] {
				t.Fatalf("sample %d: go-audio %d, ours %v", i, v, ours.Samples[i])
			}
		}
	}
}
