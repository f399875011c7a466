package audio

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func FuzzDecode(f *testing.F) {
	ref, err := os.ReadFile(filepath.Join(refDir, "short_300.wav"))
	if err != nil {
		f.Fatal(err)
	}
	list := chunk("LIST", []byte("INFOa"))
	seeds := [][]byte{
		ref,
		pcm16File(8000, 1, -2, 3),
		wavFile(list, chunk("fmt ", fmtBody(tagPCM, 2, 44100, 24)), chunk("data", s24(1, -1, 1<<22, 5)), list),
		wavFile(chunk("fmt ", fmtBody(tagPCM, 1, 8000, 8)), chunk("data", []byte{0, 128, 255})),
		wavFile(chunk("fmt ", fmtBody(tagPCM, 1, 8000, 32)), chunk("data", s32(-5, 1<<30))),
		wavFile(chunk("fmt ", append(fmtBody(tagFloat, 1, 8000, 32), 0, 0)), chunk("fact", le32(2)), chunk("data", f32(0.5, -2))),
		wavFile(chunk("fmt ", fmtBody(tagFloat, 1, 8000, 64)), chunk("data", f64(0.5, -2))),
		wavFile(chunk("fmt ", fmtExtensible(tagFloat, 3, 16000, 32, 32)), chunk("data", f32(1, 2, 3))),
		wavFile(chunk("fmt ", fmtExtensible(tagPCM, 1, 16000, 24, 20)), chunkSized("data", unknownSize, s24(1, 2))),
		[]byte("RIFF\xff\xff\xff\xffWAVE"),
		nil,
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Decode(bytes.NewReader(data))
		// Without a size hint the result must be the same.
		c2, err2 := Decode(noLen{bytes.NewReader(data)})
		if (err == nil) != (err2 == nil) || !sameBits(c.Samples, c2.Samples) || c.SampleRate != c2.SampleRate {
			t.Fatalf("Decode depends on the reader: %v vs %v", err, err2)
		}
		if err != nil {
			return
		}
		if c.SampleRate <= 0 || len(c.Samples) > len(data) {
			t.Fatalf("%d samples at %d Hz from %d bytes", len(c.Samples), c.SampleRate, len(data))
		}
		for i, v := range c.Samples {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("sample %d is %v", i, v)
			}
		}
		// Whatever decodes survives a Float32 round trip exactly.
		var buf bytes.Buffer
		if err := Encode(&buf, c, Float32); err != nil {
			t.Fatal(err)
		}
		back, err := Decode(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if !sameBits(back.Samples, c.Samples) || back.SampleRate != c.SampleRate {
			t.Fatal("Float32 round trip changed the clip")
		}
	})
}
