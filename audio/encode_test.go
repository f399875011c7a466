package audio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

// plainWriter hides every method of its writer but Write, like an
// http.ResponseWriter that cannot seek.
type plainWriter struct{ w io.Writer }

func (p plainWriter) Write(b []byte) (int, error) { return p.w.Write(b) }

// failWriter accepts n bytes, then fails.
type failWriter struct{ n int }

var errWrite = errors.New("write failed")

func (f *failWriter) Write(b []byte) (int, error) {
	if len(b) > f.n {
		n := f.n
		f.n = 0
		return n, errWrite
	}
	f.n -= len(b)
	return len(b), nil
}

func TestEncodeHeader(t *testing.T) {
	tests := []struct {
		f    Format
		c    Clip
		want []byte
	}{
		{PCM16, Clip{Samples: []float32{0.5, -1}, SampleRate: 22050}, wavFile(
			chunk("fmt ", fmtBody(tagPCM, 1, 22050, 16)),
			chunk("data", s16(16384, -32768)))},
		{Float32, Clip{Samples: []float32{0.5, -3}, SampleRate: 16000}, wavFile(
			chunk("fmt ", append(fmtBody(tagFloat, 1, 16000, 32), 0, 0)),
			chunk("fact", le32(2)),
			chunk("data", f32(0.5, -3)))},
		{PCM16, Clip{SampleRate: 8000}, wavFile(
			chunk("fmt ", fmtBody(tagPCM, 1, 8000, 16)),
			chunk("data", nil))},
		{Float32, Clip{SampleRate: 8000}, wavFile(
			chunk("fmt ", append(fmtBody(tagFloat, 1, 8000, 32), 0, 0)),
			chunk("fact", le32(0)),
			chunk("data", nil))},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		if err := Encode(plainWriter{&buf}, tt.c, tt.f); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), tt.want) {
			t.Errorf("%v, %d samples:\n got % x\nwant % x", tt.f, len(tt.c.Samples), buf.Bytes(), tt.want)
		}
		if len(buf.Bytes()) != headerLen(tt.f)+len(tt.c.Samples)*tt.f.bytesPerSample() {
			t.Errorf("%v: %d bytes, header length %d is wrong", tt.f, buf.Len(), headerLen(tt.f))
		}
	}
}

func TestPCM16Conversion(t *testing.T) {
	tests := []struct {
		in   float32
		want int16
	}{
		{0, 0},
		{float32(math.Copysign(0, -1)), 0},
		{0.5, 16384},
		{-0.5, -16384},
		{1, 32767}, // clipped
		{-1, -32768},
		{32767.0 / 32768, 32767},
		{1.5, 32767},
		{-2, -32768},
		{math.MaxFloat32, 32767},
		{-math.MaxFloat32, -32768},
		{0.4 / 32768, 0},
		{0.6 / 32768, 1},
		{-0.6 / 32768, -1},
		{0.5 / 32768, 0},   // half to even
		{1.5 / 32768, 2},   // half to even
		{-2.5 / 32768, -2}, // half to even
		{100.5 / 32768, 100},
		{math.SmallestNonzeroFloat32, 0},
	}
	for _, tt := range tests {
		if got := pcm16(tt.in); got != tt.want {
			t.Errorf("pcm16(%v) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// TestPCM16RoundTrip checks every int16 value: v/32768 encodes to v and
// decodes back to the same float32 bits.
func TestPCM16RoundTrip(t *testing.T) {
	c := Clip{Samples: make([]float32, 1<<16), SampleRate: 22050}
	for i := range c.Samples {
		c.Samples[i] = float32(int16(i)) / 32768
	}
	var buf bytes.Buffer
	if err := Encode(&buf, c, PCM16); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()[44:]
	for i := range c.Samples {
		if got := int16(binary.LittleEndian.Uint16(data[2*i:])); got != int16(i) {
			t.Fatalf("sample %d stored as %d, want %d", i, got, int16(i))
		}
	}
	got, err := Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !sameBits(got.Samples, c.Samples) || got.SampleRate != c.SampleRate {
		t.Fatal("PCM16 round trip is not exact")
	}
}

func TestFloat32RoundTrip(t *testing.T) {
	samples := []float32{0, 1, -1, 0.1, -0.7, 3.5, -1e-30, math.SmallestNonzeroFloat32, math.MaxFloat32, -math.MaxFloat32}
	for i := range 20000 { // several write blocks
		samples = append(samples, float32(math.Sin(float64(i)*0.01))*1.5)
	}
	c := Clip{Samples: samples, SampleRate: 44100}
	var buf bytes.Buffer
	if err := Encode(&buf, c, Float32); err != nil {
		t.Fatal(err)
	}
	got, err := Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for i := range samples {
		if math.Float32bits(got.Samples[i]) != math.Float32bits(samples[i]) {
			t.Fatalf("sample %d = %v, want %v", i, got.Samples[i], samples[i])
		}
	}
	if len(got.Samples) != len(samples) || got.SampleRate != 44100 {
		t.Fatalf("got %d samples at %d Hz", len(got.Samples), got.SampleRate)
	}
}

func TestEncodeErrors(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	tests := []struct {
		name    string
		c       Clip
		f       Format
		wantErr error
		msg     string
	}{
		{"NaN PCM16", Clip{Samples: []float32{0, nan}, SampleRate: 8000}, PCM16, ErrNonFinite, "sample 1 is NaN"},
		{"NaN Float32", Clip{Samples: []float32{nan}, SampleRate: 8000}, Float32, ErrNonFinite, "sample 0 is NaN"},
		{"+Inf PCM16", Clip{Samples: []float32{inf}, SampleRate: 8000}, PCM16, ErrNonFinite, "+Inf"},
		{"-Inf Float32", Clip{Samples: []float32{1, 2, -inf}, SampleRate: 8000}, Float32, ErrNonFinite, "sample 2 is -Inf"},
		{"zero format", Clip{SampleRate: 8000}, 0, ErrUnsupported, "Format(0)"},
		{"unknown format", Clip{SampleRate: 8000}, 7, ErrUnsupported, "Format(7)"},
		{"zero rate", Clip{}, PCM16, nil, "sample rate 0 out of range"},
		{"negative rate", Clip{SampleRate: -1}, Float32, nil, "sample rate -1 out of range"},
		{"rate too high", Clip{SampleRate: 1 << 30}, PCM16, nil, "out of range [1, 1073741823]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := Encode(&buf, tt.c, tt.f)
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q, want it to contain %q", err, tt.msg)
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %d bytes despite the error", buf.Len())
			}
			if _, err := NewStreamWriter(&buf, tt.c.SampleRate, tt.f); err == nil && tt.wantErr != ErrNonFinite {
				t.Errorf("NewStreamWriter accepted rate %d, format %v", tt.c.SampleRate, tt.f)
			}
		})
	}
}

func TestCheckParamsLength(t *testing.T) {
	tests := []struct {
		f    Format
		n    int
		fail bool
	}{
		{PCM16, 0, false},
		{PCM16, (0xFFFFFFFE - 36) / 2, false},
		{PCM16, (0xFFFFFFFE-36)/2 + 1, true},
		{Float32, (0xFFFFFFFE - 50) / 4, false},
		{Float32, (0xFFFFFFFE-50)/4 + 1, true},
		{PCM16, -1, false}, // stream
	}
	for _, tt := range tests {
		if err := checkParams(tt.f, 22050, tt.n); (err != nil) != tt.fail {
			t.Errorf("checkParams(%v, n=%d) = %v, want failure %v", tt.f, tt.n, err, tt.fail)
		}
	}
}

func TestEncodeWriteError(t *testing.T) {
	c := Clip{Samples: make([]float32, 3*writeBlock), SampleRate: 8000}
	for _, n := range []int{0, 10, writeBlock, 2 * writeBlock} {
		if err := Encode(&failWriter{n: n}, c, PCM16); !errors.Is(err, errWrite) {
			t.Errorf("writer failing after %d bytes: error %v, want %v", n, err, errWrite)
		}
	}
}

func TestStreamWriter(t *testing.T) {
	// Write sizes that cross the encoding buffer in various ways.
	sizes := []int{0, 1, 7, writeBlock/2 + 3, 0, writeBlock, 3 * writeBlock, 5}
	for _, f := range []Format{PCM16, Float32} {
		t.Run(f.String(), func(t *testing.T) {
			var out bytes.Buffer
			sw, err := NewStreamWriter(plainWriter{&out}, 16000, f)
			if err != nil {
				t.Fatal(err)
			}
			hdr := bytes.Clone(out.Bytes())
			if len(hdr) != headerLen(f) {
				t.Fatalf("header is %d bytes, want %d", len(hdr), headerLen(f))
			}
			le := binary.LittleEndian
			if le.Uint32(hdr[4:]) != unknownSize || le.Uint32(hdr[len(hdr)-4:]) != unknownSize ||
				string(hdr[len(hdr)-8:len(hdr)-4]) != "data" {
				t.Errorf("header % x lacks unknown RIFF and data sizes", hdr)
			}
			// Apart from the sizes, the header is Encode's.
			var enc bytes.Buffer
			if err := Encode(&enc, Clip{SampleRate: 16000}, f); err != nil {
				t.Fatal(err)
			}
			want := enc.Bytes()
			le.PutUint32(want[4:], unknownSize)
			le.PutUint32(want[len(want)-4:], unknownSize)
			if f == Float32 {
				le.PutUint32(want[46:], unknownSize) // fact sample count
			}
			if !bytes.Equal(hdr, want) {
				t.Errorf("header\n got % x\nwant % x", hdr, want)
			}

			var all []float32
			for k, n := range sizes {
				s := make([]float32, n)
				for i := range s {
					s[i] = float32(math.Sin(float64(k*1000+i))) * 1.25
				}
				if err := sw.Write(s); err != nil {
					t.Fatal(err)
				}
				all = append(all, s...)
			}
			// The stream decodes as it is, and equals a whole-file encoding.
			got, err := Decode(bytes.NewReader(out.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			enc.Reset()
			if err := Encode(&enc, Clip{Samples: all, SampleRate: 16000}, f); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes()[len(hdr):], enc.Bytes()[len(hdr):]) {
				t.Error("stream data differs from Encode's")
			}
			wantClip, err := Decode(&enc)
			if err != nil {
				t.Fatal(err)
			}
			if !sameBits(got.Samples, wantClip.Samples) || got.SampleRate != 16000 {
				t.Errorf("decoded stream: %d samples at %d Hz, want %d at 16000", len(got.Samples), got.SampleRate, len(wantClip.Samples))
			}
			// A stream cut anywhere, even mid-sample, decodes to its whole samples.
			for _, cut := range []int{len(hdr), len(hdr) + 1, len(hdr) + 4*1000 + 3} {
				c, err := Decode(iotest.HalfReader(bytes.NewReader(out.Bytes()[:cut])))
				if err != nil {
					t.Fatalf("cut at %d: %v", cut, err)
				}
				if n := (cut - len(hdr)) / f.bytesPerSample(); !sameBits(c.Samples, wantClip.Samples[:n]) {
					t.Errorf("cut at %d: %d samples, want the first %d", cut, len(c.Samples), n)
				}
			}
		})
	}
}

func TestStreamWriterNonFinite(t *testing.T) {
	var out bytes.Buffer
	sw, err := NewStreamWriter(&out, 8000, PCM16)
	if err != nil {
		t.Fatal(err)
	}
	before := out.Len()
	if err := sw.Write([]float32{0.5, float32(math.NaN())}); !errors.Is(err, ErrNonFinite) {
		t.Fatalf("error %v, want ErrNonFinite", err)
	}
	if out.Len() != before {
		t.Fatal("a rejected Write wrote data")
	}
	// The stream is still usable.
	if err := sw.Write([]float32{0.5}); err != nil {
		t.Fatal(err)
	}
	c, err := Decode(&out)
	if err != nil || !sameBits(c.Samples, []float32{0.5}) {
		t.Fatalf("Decode = %v, %v; want [0.5]", c.Samples, err)
	}
}

func TestStreamWriterWriteError(t *testing.T) {
	if _, err := NewStreamWriter(&failWriter{n: 10}, 8000, Float32); !errors.Is(err, errWrite) {
		t.Errorf("header write failure: error %v, want %v", err, errWrite)
	}
	fw := &failWriter{n: 44 + 3}
	sw, err := NewStreamWriter(fw, 8000, PCM16)
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.Write([]float32{1, 2}); !errors.Is(err, errWrite) {
		t.Fatalf("error %v, want %v", err, errWrite)
	}
	// The error is sticky, even if the writer would now accept data.
	fw.n = 1000
	if err := sw.Write([]float32{1}); !errors.Is(err, errWrite) {
		t.Errorf("second Write: error %v, want %v", err, errWrite)
	}
	if fw.n != 1000 {
		t.Error("Write wrote to a broken stream")
	}
}

func TestStreamWriterAllocations(t *testing.T) {
	sw, err := NewStreamWriter(io.Discard, 22050, PCM16)
	if err != nil {
		t.Fatal(err)
	}
	s := make([]float32, 3*writeBlock)
	if allocs := testing.AllocsPerRun(10, func() { _ = sw.Write(s) }); allocs != 0 {
		t.Errorf("Write allocates %v times, want 0", allocs)
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.wav")
	c := Clip{Samples: []float32{0.25, -0.5, 1}, SampleRate: 22050}
	for _, f := range []Format{Float32, PCM16} { // the second overwrites the first
		if err := WriteFile(path, c, f); err != nil {
			t.Fatal(err)
		}
		got, err := DecodeFile(path)
		if err != nil {
			t.Fatal(err)
		}
		want := []float32{0.25, -0.5, 1}
		if f == PCM16 {
			want[2] = 32767.0 / 32768
		}
		if !sameBits(got.Samples, want) || got.SampleRate != 22050 {
			t.Errorf("%v: read back %v at %d Hz, want %v", f, got.Samples, got.SampleRate, want)
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o644 {
		t.Errorf("permissions %v, want 0644", perm)
	}

	// Failures leave the previous file intact and no temporary file behind.
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.MkdirAll(filepath.Join(sub, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		path string
		c    Clip
	}{
		{path, Clip{Samples: []float32{float32(math.NaN())}, SampleRate: 22050}},
		{path, Clip{SampleRate: 0}},
		{filepath.Join(dir, "missing", "x.wav"), c},
		{sub, c}, // renaming a file over a non-empty directory fails
	}
	for _, b := range bad {
		if err := WriteFile(b.path, b.c, PCM16); err == nil {
			t.Errorf("WriteFile(%s, %d samples at %d Hz) succeeded", b.path, len(b.c.Samples), b.c.SampleRate)
		}
	}
	after, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(before, after) {
		t.Errorf("failed writes changed %s (%v)", path, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "out.wav sub" {
		t.Errorf("directory holds %v, want only out.wav and sub", names)
	}
}

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in   string
		want Format
		fail bool
	}{
		{"pcm16", PCM16, false},
		{"PCM16", PCM16, false},
		{"float32", Float32, false},
		{"Float32", Float32, false},
		{"", 0, true},
		{"pcm24", 0, true},
		{"Format(1)", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseFormat(tt.in)
		if got != tt.want || (err != nil) != tt.fail {
			t.Errorf("ParseFormat(%q) = %v, %v; want %v, failure %v", tt.in, got, err, tt.want, tt.fail)
		}
		if !tt.fail && got.String() != strings.ToLower(tt.in) {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), strings.ToLower(tt.in))
		}
	}
}

func BenchmarkEncode10s(b *testing.B) {
	c := Clip{Samples: make([]float32, 220500), SampleRate: 22050}
	for i := range c.Samples {
		c.Samples[i] = float32(math.Sin(float64(i) * 0.01))
	}
	for _, f := range []Format{PCM16, Float32} {
		b.Run(f.String(), func(b *testing.B) {
			b.SetBytes(int64(len(c.Samples) * f.bytesPerSample()))
			b.ReportAllocs()
			for b.Loop() {
				if err := Encode(io.Discard, c, f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestRawWriter checks that a raw stream holds exactly the sample bytes of
// the WAV file Encode writes, and that bad input writes nothing.
func TestRawWriter(t *testing.T) {
	samples := []float32{0, 0.5, -0.5, 1, -1, 2, -2, 1e-6}
	for _, f := range []Format{PCM16, Float32} {
		var wav, raw bytes.Buffer
		if err := Encode(&wav, Clip{Samples: samples, SampleRate: 22050}, f); err != nil {
			t.Fatal(err)
		}
		w, err := NewRawWriter(&raw, f)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(samples[:3]); err != nil {
			t.Fatal(err)
		}
		if err := w.Write(samples[3:]); err != nil {
			t.Fatal(err)
		}
		want := wav.Bytes()[wav.Len()-len(samples)*f.bytesPerSample():]
		if !bytes.Equal(raw.Bytes(), want) {
			t.Errorf("format %v: raw stream % x, want the WAV data % x", f, raw.Bytes(), want)
		}
		if err := w.Write([]float32{1, float32(math.NaN())}); !errors.Is(err, ErrNonFinite) {
			t.Errorf("format %v: NaN sample: error %v, want ErrNonFinite", f, err)
		}
		if raw.Len() != len(want) {
			t.Errorf("format %v: a rejected write wrote %d bytes", f, raw.Len()-len(want))
		}
	}
	if _, err := NewRawWriter(io.Discard, Format(99)); !errors.Is(err, ErrUnsupported) {
		t.Errorf("unknown format: error %v, want ErrUnsupported", err)
	}
}
