package audio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

const refDir = "../testdata/reference/mel"

// noLen hides the Len method of a reader, so Decode cannot know its size.
type noLen struct{ io.Reader }

func TestDecodeReference(t *testing.T) {
	tests := []struct {
		file    string
		rate    int
		samples int
	}{
		{"espeak_us_fox.wav", 22050, 68161},
		{"espeak_gb_mel.wav", 22050, 53569},
		{"espeak_us_hello.wav", 22050, 24047},
		{"sweep_log_20_10000.wav", 22050, 22050},
		{"silence.wav", 22050, 11025},
		{"noise_-20dBFS.wav", 22050, 22050},
		{"short_600.wav", 22050, 600},
		{"short_300.wav", 22050, 300},
		{"espeak_us_16k.wav", 16000, 31804},
		{"short_300_16k.wav", 16000, 300},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join(refDir, tt.file)
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			c, err := DecodeFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if c.SampleRate != tt.rate || len(c.Samples) != tt.samples {
				t.Fatalf("got %d samples at %d Hz, want %d at %d Hz", len(c.Samples), c.SampleRate, tt.samples, tt.rate)
			}
			// The reference normalisation, from the raw bytes after the
			// canonical 44-byte header.
			for i, v := range c.Samples {
				want := float32(int16(binary.LittleEndian.Uint16(raw[44+2*i:]))) / 32768
				if math.Float32bits(v) != math.Float32bits(want) {
					t.Fatalf("sample %d = %v, want %v", i, v, want)
				}
			}
			// Readers of every shape give the same result.
			for name, r := range map[string]io.Reader{
				"bytes.Reader": bytes.NewReader(raw),
				"one byte":     iotest.OneByteReader(bytes.NewReader(raw)),
				"half":         iotest.HalfReader(bytes.NewReader(raw)),
				"data+EOF":     iotest.DataErrReader(bytes.NewReader(raw)),
			} {
				got, err := Decode(r)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if !sameBits(got.Samples, c.Samples) || got.SampleRate != c.SampleRate {
					t.Fatalf("%s: result differs from DecodeFile", name)
				}
			}
			// Re-encoding reproduces the file byte for byte.
			var buf bytes.Buffer
			if err := Encode(&buf, c, PCM16); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), raw) {
				t.Fatal("Encode(Decode(file), PCM16) differs from the file")
			}
		})
	}
}

func TestDecodeFormats(t *testing.T) {
	fmtPCM16 := chunk("fmt ", fmtBody(tagPCM, 1, 22050, 16))
	list := chunk("LIST", []byte("INFOISFT\x05\x00\x00\x00glow\x00")) // odd size, padded
	tests := []struct {
		name string
		file []byte
		rate int
		want []float32
	}{
		{
			name: "8-bit unsigned",
			file: wavFile(chunk("fmt ", fmtBody(tagPCM, 1, 8000, 8)), chunk("data", []byte{0, 128, 255, 64, 1})),
			rate: 8000,
			want: []float32{-1, 0, 127.0 / 128, -0.5, -127.0 / 128},
		},
		{
			name: "16-bit",
			file: pcm16File(22050, -32768, -1, 0, 1, 32767, 12345),
			rate: 22050,
			want: []float32{-1, -1.0 / 32768, 0, 1.0 / 32768, 32767.0 / 32768, 12345.0 / 32768},
		},
		{
			name: "24-bit",
			file: wavFile(chunk("fmt ", fmtBody(tagPCM, 1, 48000, 24)), chunk("data", s24(-1<<23, -1, 0, 1, 1<<23-1, 0x123456, -0x123456))),
			rate: 48000,
			want: []float32{-1, -1.0 / (1 << 23), 0, 1.0 / (1 << 23), (1<<23 - 1.0) / (1 << 23), 0x123456 / float32(1<<23), -0x123456 / float32(1<<23)},
		},
		{
			name: "32-bit integer",
			file: wavFile(chunk("fmt ", fmtBody(tagPCM, 1, 44100, 32)), chunk("data", s32(math.MinInt32, -1, 0, 1<<30, math.MaxInt32, 1<<24+1))),
			rate: 44100,
			// MaxInt32/2^31 and (2^24+1)/2^31 round to float32.
			want: []float32{-1, -1.0 / (1 << 31), 0, 0.5, 1, 1.0 / 128},
		},
		{
			name: "32-bit float",
			file: wavFile(chunk("fmt ", fmtBody(tagFloat, 1, 24000, 32)), chunk("data", f32(0.25, -1.5, 3, math.SmallestNonzeroFloat32))),
			rate: 24000,
			want: []float32{0.25, -1.5, 3, math.SmallestNonzeroFloat32},
		},
		{
			name: "64-bit float",
			file: wavFile(chunk("fmt ", fmtBody(tagFloat, 1, 24000, 64)), chunk("data", f64(0.1, -2.5, 1e-300))),
			rate: 24000,
			want: []float32{0.1, -2.5, 0},
		},
		{
			name: "extensible 24-bit in 20 valid bits",
			file: wavFile(chunk("fmt ", fmtExtensible(tagPCM, 1, 96000, 24, 20)), chunk("data", s24(0x400000, -0x100000))),
			rate: 96000,
			want: []float32{0.5, -0.125},
		},
		{
			name: "extensible 16-bit",
			file: wavFile(chunk("fmt ", fmtExtensible(tagPCM, 1, 16000, 16, 16)), chunk("data", s16(16384, -8192))),
			rate: 16000,
			want: []float32{0.5, -0.25},
		},
		{
			name: "extensible float stereo",
			file: wavFile(chunk("fmt ", fmtExtensible(tagFloat, 2, 22050, 32, 32)), chunk("data", f32(0.5, 0.25, -1, 1))),
			rate: 22050,
			want: []float32{0.375, 0},
		},
		{
			name: "stereo 16-bit downmix",
			file: wavFile(chunk("fmt ", fmtBody(tagPCM, 2, 22050, 16)), chunk("data", s16(1000, -3000, 32767, 32767, -32768, 32767))),
			rate: 22050,
			want: []float32{-1000.0 / 32768, 32767.0 / 32768, -0.5 / 32768},
		},
		{
			name: "three channels 24-bit downmix",
			file: wavFile(chunk("fmt ", fmtBody(tagPCM, 3, 22050, 24)), chunk("data", s24(3<<20, 0, 0, 1<<22, 1<<22, 1<<22))),
			rate: 22050,
			want: []float32{0.125, 0.5},
		},
		{
			name: "odd LIST chunk before fmt and after data",
			file: wavFile(list, fmtPCM16, chunk("data", s16(1, 2)), list),
			rate: 22050,
			want: []float32{1.0 / 32768, 2.0 / 32768},
		},
		{
			name: "chunks between fmt and data",
			file: wavFile(chunk("fmt ", fmtBody(tagFloat, 1, 22050, 32)), chunk("fact", le32(1)), list, chunk("data", f32(0.5))),
			rate: 22050,
			want: []float32{0.5},
		},
		{
			name: "fmt chunk longer than 40 bytes",
			file: wavFile(chunk("fmt ", append(fmtExtensible(tagPCM, 1, 22050, 16, 16), 1, 2, 3)), chunk("data", s16(-16384))),
			rate: 22050,
			want: []float32{-0.5},
		},
		{
			name: "18-byte fmt with cbSize",
			file: wavFile(chunk("fmt ", append(fmtBody(tagPCM, 1, 22050, 16), 0, 0)), chunk("data", s16(8192))),
			rate: 22050,
			want: []float32{0.25},
		},
		{
			name: "incomplete last frame dropped",
			file: wavFile(chunk("fmt ", fmtBody(tagPCM, 2, 22050, 16)), chunk("data", append(s16(100, 300, 7), 1))),
			rate: 22050,
			want: []float32{200.0 / 32768},
		},
		{
			name: "empty data chunk",
			file: wavFile(fmtPCM16, chunk("data", nil)),
			rate: 22050,
			want: []float32{},
		},
		{
			name: "wrong RIFF size is ignored",
			file: append([]byte("RIFF\x00\x00\x00\x00"), pcm16File(22050, 3)[8:]...),
			rate: 22050,
			want: []float32{3.0 / 32768},
		},
		{
			name: "unknown data size reads to EOF",
			file: wavFile(fmtPCM16, chunkSized("data", unknownSize, s16(1, -1, 3))),
			rate: 22050,
			want: []float32{1.0 / 32768, -1.0 / 32768, 3.0 / 32768},
		},
		{
			name: "unknown data size ending mid-frame",
			file: wavFile(fmtPCM16, chunkSized("data", unknownSize, append(s16(5), 9))),
			rate: 22050,
			want: []float32{5.0 / 32768},
		},
		{
			name: "unknown data size, empty",
			file: wavFile(fmtPCM16, chunkSized("data", unknownSize, nil)),
			rate: 22050,
			want: []float32{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []io.Reader{bytes.NewReader(tt.file), noLen{iotest.HalfReader(bytes.NewReader(tt.file))}} {
				c, err := Decode(r)
				if err != nil {
					t.Fatal(err)
				}
				if c.SampleRate != tt.rate {
					t.Errorf("rate %d, want %d", c.SampleRate, tt.rate)
				}
				if !sameBits(c.Samples, tt.want) {
					t.Errorf("samples %v, want %v", c.Samples, tt.want)
				}
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	fmtPCM16 := chunk("fmt ", fmtBody(tagPCM, 1, 22050, 16))
	data := chunk("data", s16(1, 2, 3))
	badAlign := fmtBody(tagPCM, 2, 22050, 16)
	binary.LittleEndian.PutUint16(badAlign[12:], 2)
	badGUID := fmtExtensible(tagPCM, 1, 22050, 16, 16)
	badGUID[30] ^= 1
	shortExt := fmtExtensible(tagPCM, 1, 22050, 16, 16)
	binary.LittleEndian.PutUint16(shortExt[16:], 0)
	tests := []struct {
		name    string
		file    []byte
		wantErr error
		msg     string
	}{
		{"empty", nil, ErrMalformed, "empty input"},
		{"short header", []byte("RIFF\x10\x00"), ErrTruncated, "RIFF header"},
		{"not RIFF", []byte("ID3\x04\x00\x00\x00\x00\x00\x00\x00\x00"), ErrMalformed, "no RIFF signature"},
		{"RIFX", append([]byte("RIFX"), pcm16File(8000, 1)[4:]...), ErrUnsupported, "RIFX"},
		{"RF64", append([]byte("RF64"), pcm16File(8000, 1)[4:]...), ErrUnsupported, "RF64"},
		{"not WAVE", append([]byte("RIFF\x04\x00\x00\x00AVI "), data...), ErrMalformed, "not WAVE"},
		{"no chunks", wavFile(), ErrMalformed, "no fmt chunk"},
		{"no data chunk", wavFile(fmtPCM16), ErrMalformed, "no data chunk"},
		{"data before fmt", wavFile(data, fmtPCM16), ErrMalformed, "data chunk before fmt"},
		{"two fmt chunks", wavFile(fmtPCM16, fmtPCM16, data), ErrMalformed, "second fmt"},
		{"fmt too short", wavFile(chunk("fmt ", fmtBody(tagPCM, 1, 22050, 16)[:14]), data), ErrMalformed, "want at least 16"},
		{"A-law", wavFile(chunk("fmt ", fmtBody(tagALaw, 1, 8000, 8)), data), ErrUnsupported, "A-law"},
		{"mu-law", wavFile(chunk("fmt ", fmtBody(tagMuLaw, 1, 8000, 8)), data), ErrUnsupported, "mu-law"},
		{"ADPCM", wavFile(chunk("fmt ", fmtBody(2, 1, 8000, 4)), data), ErrUnsupported, "0x0002"},
		{"12-bit PCM", wavFile(chunk("fmt ", fmtBody(tagPCM, 1, 8000, 12)), data), ErrUnsupported, "12-bit integer PCM"},
		{"16-bit float", wavFile(chunk("fmt ", fmtBody(tagFloat, 1, 8000, 16)), data), ErrUnsupported, "16-bit IEEE float"},
		{"zero channels", wavFile(chunk("fmt ", fmtBody(tagPCM, 0, 8000, 16)), data), ErrMalformed, "zero channels"},
		{"zero rate", wavFile(chunk("fmt ", fmtBody(tagPCM, 1, 0, 16)), data), ErrMalformed, "sample rate 0"},
		{"huge rate", wavFile(chunk("fmt ", fmtBody(tagPCM, 1, 1<<30, 16)), data), ErrMalformed, "sample rate 1073741824"},
		{"block align", wavFile(chunk("fmt ", badAlign), data), ErrMalformed, "block align 2, want 4"},
		{"extensible GUID", wavFile(chunk("fmt ", badGUID), data), ErrUnsupported, "sub-format GUID"},
		{"extensible cbSize", wavFile(chunk("fmt ", shortExt), data), ErrMalformed, "EXTENSIBLE fmt chunk too short"},
		{"extensible 16-byte fmt", wavFile(chunk("fmt ", fmtBody(tagExtensible, 1, 8000, 16)), data), ErrMalformed, "EXTENSIBLE fmt chunk too short"},
		{"extensible A-law", wavFile(chunk("fmt ", fmtExtensible(tagALaw, 1, 8000, 8, 8)), data), ErrUnsupported, "A-law"},
		{"data truncated", wavFile(fmtPCM16, chunkSized("data", 100, s16(1, 2, 3))), ErrTruncated, "declares 100 bytes, input holds 6"},
		{"data huge", wavFile(fmtPCM16, chunkSized("data", 0xFFFFFFF0, s16(1))), ErrTruncated, "declares 4294967280 bytes"},
		{"fmt huge", wavFile(chunkSized("fmt ", 0xFFFFFFF0, fmtBody(tagPCM, 1, 8000, 16))), ErrTruncated, "fmt chunk"},
		{"LIST huge", wavFile(chunkSized("LIST", 0xFFFFFFFF, []byte("INFO"))), ErrTruncated, `"LIST" chunk`},
		{"chunk header cut", append(wavFile(fmtPCM16), "dat"...), ErrTruncated, "chunk header"},
		{"float NaN", wavFile(chunk("fmt ", fmtBody(tagFloat, 1, 8000, 32)), chunk("data", f32(0, float32(math.NaN())))), ErrNonFinite, "sample 1 is NaN"},
		{"float Inf", wavFile(chunk("fmt ", fmtBody(tagFloat, 1, 8000, 32)), chunk("data", f32(float32(math.Inf(-1))))), ErrNonFinite, "sample 0 is -Inf"},
		{"float64 overflow", wavFile(chunk("fmt ", fmtBody(tagFloat, 1, 8000, 64)), chunk("data", f64(1, 1e300))), ErrNonFinite, "sample 1 is +Inf"},
		{"stereo NaN", wavFile(chunk("fmt ", fmtBody(tagFloat, 2, 8000, 32)), chunk("data", f32(1, float32(math.NaN())))), ErrNonFinite, "sample 0 is NaN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []io.Reader{bytes.NewReader(tt.file), noLen{iotest.OneByteReader(bytes.NewReader(tt.file))}} {
				c, err := Decode(r)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.msg) || !strings.HasPrefix(err.Error(), "audio: decode: ") {
					t.Errorf("error %q, want it to contain %q", err, tt.msg)
				}
				if c.Samples != nil || c.SampleRate != 0 {
					t.Errorf("got a non-zero Clip with the error")
				}
			}
		})
	}
}

// TestDecodeReadError checks that errors from the reader are passed on.
func TestDecodeReadError(t *testing.T) {
	file := pcm16File(8000, 1, 2, 3, 4)
	for n := range len(file) {
		r := io.MultiReader(bytes.NewReader(file[:n]), iotest.ErrReader(iotest.ErrTimeout))
		if _, err := Decode(r); !errors.Is(err, iotest.ErrTimeout) {
			t.Fatalf("prefix %d: error %v, want %v", n, err, iotest.ErrTimeout)
		}
	}
}

// TestDecodeTruncated checks every strict prefix of valid files: each must
// give a decode error, never a panic or a partial result.
func TestDecodeTruncated(t *testing.T) {
	files := map[string][]byte{
		"pcm16": wavFile(chunk("LIST", []byte("INFOa")), chunk("fmt ", fmtBody(tagPCM, 1, 8000, 16)), chunk("data", s16(1, -2, 3))),
		"extensible float stereo": wavFile(chunk("fmt ", fmtExtensible(tagFloat, 2, 8000, 32, 32)),
			chunk("fact", le32(2)), chunk("data", f32(0.5, 0.25, -1, 1))),
		"8-bit odd size": wavFile(chunk("fmt ", fmtBody(tagPCM, 1, 8000, 8)), chunkSized("data", 3, []byte{1, 2, 3})),
	}
	for name, file := range files {
		if _, err := Decode(bytes.NewReader(file)); err != nil {
			t.Fatalf("%s: full file: %v", name, err)
		}
		for n := range len(file) {
			_, err := Decode(bytes.NewReader(file[:n]))
			if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrMalformed) {
				t.Errorf("%s cut at %d: error %v, want ErrTruncated or ErrMalformed", name, n, err)
			}
		}
	}
}

// TestDecodeCorrupt overwrites every byte of a small file with a few values:
// Decode must not panic, and anything it accepts must be sane.
func TestDecodeCorrupt(t *testing.T) {
	file := wavFile(chunk("fmt ", fmtExtensible(tagPCM, 2, 8000, 24, 24)), chunk("data", s24(1, 2, 3, 4)))
	for i := range file {
		for _, b := range []byte{0, 1, 0x80, 0xFF, file[i] ^ 0x10} {
			bad := bytes.Clone(file)
			bad[i] = b
			c, err := Decode(bytes.NewReader(bad))
			if err == nil && (c.SampleRate <= 0 || len(c.Samples) > len(bad)) {
				t.Errorf("byte %d = %#x: accepted with %d samples at %d Hz", i, b, len(c.Samples), c.SampleRate)
			}
		}
	}
}

// TestDecodeHugeSizesAllocation checks that sizes declared by a tiny input
// do not turn into large allocations, whatever the reader.
func TestDecodeHugeSizesAllocation(t *testing.T) {
	fmtPCM16 := chunk("fmt ", fmtBody(tagPCM, 1, 22050, 16))
	files := map[string][]byte{
		"data size":         wavFile(fmtPCM16, chunkSized("data", 0xFFFFFFF0, s16(1, 2))),
		"unknown data size": wavFile(fmtPCM16, chunkSized("data", unknownSize, s16(1, 2))),
		"fmt size":          wavFile(chunkSized("fmt ", 0xFFFFFFF0, fmtBody(tagPCM, 1, 8000, 16))),
		"LIST size":         wavFile(chunkSized("LIST", 0x7FFFFFFF, nil)),
		"8191 channels":     wavFile(chunk("fmt ", fmtBody(tagFloat, 8191, 8000, 64)), chunkSized("data", 0xFFFFFFF0, f64(1, 2))),
	}
	const limit = 2 << 20 // bytes; maxBlindAlloc float32s are 1 MiB
	for name, file := range files {
		for _, r := range []io.Reader{bytes.NewReader(file), noLen{bytes.NewReader(file)}} {
			if got := allocBytes(func() { _, _ = Decode(r) }); got > limit {
				t.Errorf("%s: Decode allocated %d bytes, want <= %d", name, got, limit)
			}
		}
	}
}

// TestDecodeAllocations checks that decoding 10 s of audio allocates little
// beyond the output.
func TestDecodeAllocations(t *testing.T) {
	const n = 220500
	v := make([]int16, n)
	for i := range v {
		v[i] = int16(i)
	}
	file := pcm16File(22050, v...)
	out := n * 4
	for name, r := range map[string]func() io.Reader{
		"bytes.Reader": func() io.Reader { return bytes.NewReader(file) },
		"plain reader": func() io.Reader { return noLen{bytes.NewReader(file)} },
	} {
		var c Clip
		got := allocBytes(func() { c, _ = Decode(r()) })
		if len(c.Samples) != n {
			t.Fatalf("%s: %d samples, want %d", name, len(c.Samples), n)
		}
		if extra := got - uint64(out); extra > 64<<10 {
			t.Errorf("%s: allocated %d bytes beyond the %d-byte output", name, extra, out)
		}
		if allocs := testing.AllocsPerRun(5, func() { _, _ = Decode(r()) }); allocs > 6 {
			t.Errorf("%s: %v allocations per Decode, want <= 6", name, allocs)
		}
	}
}

func TestDecodeFileErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.wav")
	if err := os.WriteFile(bad, []byte("RIFF\x04\x00\x00\x00WAVE"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path    string
		wantErr error
	}{
		{filepath.Join(dir, "missing.wav"), os.ErrNotExist},
		{bad, ErrMalformed},
		{dir, nil}, // a directory: some read error
	}
	for _, tt := range tests {
		_, err := DecodeFile(tt.path)
		if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
			t.Errorf("DecodeFile(%s): error %v, want %v", tt.path, err, tt.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), tt.path) {
			t.Errorf("error %q does not name the file", err)
		}
	}
}

// allocBytes returns the bytes allocated while f runs.
func allocBytes(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// sameBits reports whether a and b hold the same float32 bit patterns,
// treating -0 and +0 as equal.
func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) && !(a[i] == 0 && b[i] == 0) {
			return false
		}
	}
	return true
}

func BenchmarkDecode10s(b *testing.B) {
	v := make([]int16, 220500)
	for i := range v {
		v[i] = int16(i * 7)
	}
	file := pcm16File(22050, v...)
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(bytes.NewReader(file)); err != nil {
			b.Fatal(err)
		}
	}
}
