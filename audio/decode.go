package audio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

const (
	// unknownSize in a RIFF or data chunk size field means "until the end
	// of the stream"; StreamWriter writes it.
	unknownSize = 0xFFFFFFFF
	// maxFmtLen is how much of a fmt chunk is parsed (the
	// WAVE_FORMAT_EXTENSIBLE layout); longer chunks are skipped past.
	maxFmtLen = 40
	// readBlock is the size of the buffer the data chunk is read through.
	readBlock = 32 << 10
	// maxSampleRate is the highest sample rate decoded or encoded: the
	// byte rate of a mono Float32 file must fit its uint32 header field.
	maxSampleRate = math.MaxUint32 / 4
	// maxBlindAlloc caps the samples preallocated from a declared data
	// size when the input's real length is unknown, so that a tiny file
	// claiming 4 GiB of data cannot make Decode allocate gigabytes.
	maxBlindAlloc = 1 << 18
)

// WAVE format tags.
const (
	tagPCM        = 0x0001
	tagFloat      = 0x0003
	tagALaw       = 0x0006
	tagMuLaw      = 0x0007
	tagExtensible = 0xFFFE
)

// guidTail is bytes 2..15 of every KSDATAFORMAT_SUBTYPE GUID derived from a
// format tag (00000000-0000-0010-8000-00aa00389b71 with the tag in front).
var guidTail = [14]byte{0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71}

// sampleKind is one supported stored sample encoding.
type sampleKind int

const (
	kindU8 sampleKind = iota
	kindS16
	kindS24
	kindS32
	kindF32
	kindF64
)

// value decodes one little-endian sample from b, normalised to [-1, 1) for
// the integer kinds. The divisions are by powers of two, hence exact.
func (k sampleKind) value(b []byte) float64 {
	switch k {
	case kindU8:
		return (float64(b[0]) - 128) / (1 << 7)
	case kindS16:
		return float64(int16(binary.LittleEndian.Uint16(b))) / (1 << 15)
	case kindS24:
		// Place the 24 bits at the top of an int32, then shift back to
		// sign-extend.
		v := int32(uint32(b[0])<<8|uint32(b[1])<<16|uint32(b[2])<<24) >> 8
		return float64(v) / (1 << 23)
	case kindS32:
		return float64(int32(binary.LittleEndian.Uint32(b))) / (1 << 31)
	case kindF32:
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
	default: // kindF64
		return math.Float64frombits(binary.LittleEndian.Uint64(b))
	}
}

// waveFormat is what Decode needs from the fmt chunk.
type waveFormat struct {
	kind       sampleKind
	size       int // bytes per sample
	channels   int
	sampleRate int
}

// frameSize returns the bytes per frame (one sample of every channel).
func (f *waveFormat) frameSize() int { return f.size * f.channels }

// Decode reads a WAV file from r and returns its audio as a mono Clip.
//
// r is read sequentially (no seeking), up to the end of the data chunk;
// chunks after it are not read. The fmt chunk must come before the data
// chunk, as the RIFF/WAVE specification requires. Multi-channel audio is
// mixed down to mono by averaging the channels of each frame (summed in
// float64, then rounded once to float32); mono samples are exact, e.g.
// float32(int16)/32768 for 16-bit PCM. The RIFF chunk size is ignored.
//
// A data chunk size of 0xFFFFFFFF (a stream of unknown length, as
// StreamWriter writes) means "read to the end of r". A data chunk that
// declares more bytes than r holds is an error wrapping ErrTruncated: no
// partial audio is returned. A trailing incomplete frame (data size not a
// multiple of the frame size, or a stream cut mid-frame) is dropped, as
// other WAV readers do. NaN or infinite float samples give an error wrapping
// ErrNonFinite. Other errors wrap ErrMalformed or ErrUnsupported, or are
// read errors from r.
//
// Decode preallocates the output from the declared data size only up to the
// bytes r is known to hold (when r has a Len method, like *bytes.Reader) or
// to 2^18 samples otherwise, so hostile sizes cannot force a large
// allocation.
func Decode(r io.Reader) (Clip, error) {
	left := int64(-1)
	if l, ok := r.(interface{ Len() int }); ok {
		left = int64(l.Len())
	}
	c, err := decode(r, left)
	if err != nil {
		return Clip{}, fmt.Errorf("audio: decode: %w", err)
	}
	return c, nil
}

// DecodeFile decodes the WAV file at path; see Decode.
func DecodeFile(path string) (Clip, error) {
	f, err := os.Open(path)
	if err != nil {
		return Clip{}, fmt.Errorf("audio: %w", err)
	}
	defer f.Close()
	left := int64(-1)
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		left = st.Size()
	}
	c, err := decode(f, left)
	if err != nil {
		return Clip{}, fmt.Errorf("audio: decode %s: %w", path, err)
	}
	return c, nil
}

// decode does the work of Decode. left is the number of bytes r holds, or
// negative if unknown; it only bounds preallocation.
func decode(r io.Reader, left int64) (Clip, error) {
	// One scratch buffer for the headers: arrays passed to r.Read would
	// each escape to the heap.
	scratch := make([]byte, maxFmtLen)
	hdr := scratch[:12]
	if _, err := io.ReadFull(r, hdr); err != nil {
		if err == io.EOF {
			return Clip{}, fmt.Errorf("%w: empty input", ErrMalformed)
		}
		return Clip{}, readError("RIFF header", err)
	}
	switch string(hdr[:4]) {
	case "RIFF":
	case "RIFX", "RF64":
		return Clip{}, fmt.Errorf("%w: %s container", ErrUnsupported, hdr[:4])
	default:
		return Clip{}, fmt.Errorf("%w: no RIFF signature (starts with %q)", ErrMalformed, hdr[:4])
	}
	if string(hdr[8:12]) != "WAVE" {
		return Clip{}, fmt.Errorf("%w: RIFF form type %q is not WAVE", ErrMalformed, hdr[8:12])
	}
	left -= int64(len(hdr))

	var (
		wf      waveFormat
		haveFmt bool
	)
	for {
		ch := scratch[:8]
		if _, err := io.ReadFull(r, ch); err != nil {
			if err == io.EOF {
				if !haveFmt {
					return Clip{}, fmt.Errorf("%w: no fmt chunk", ErrMalformed)
				}
				return Clip{}, fmt.Errorf("%w: no data chunk", ErrMalformed)
			}
			return Clip{}, readError("chunk header", err)
		}
		left -= int64(len(ch))
		size := binary.LittleEndian.Uint32(ch[4:])
		switch string(ch[:4]) {
		case "fmt ":
			if haveFmt {
				return Clip{}, fmt.Errorf("%w: second fmt chunk", ErrMalformed)
			}
			var err error
			if wf, err = readFmt(r, size, scratch); err != nil {
				return Clip{}, err
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return Clip{}, fmt.Errorf("%w: data chunk before fmt chunk", ErrMalformed)
			}
			return readData(r, &wf, size, left)
		default:
			// RIFF chunks are padded to an even length.
			n := int64(size) + int64(size&1)
			if _, err := io.CopyN(io.Discard, r, n); err != nil {
				return Clip{}, readError(fmt.Sprintf("%q chunk", ch[:4]), err)
			}
		}
		left -= int64(size) + int64(size&1)
	}
}

// readFmt reads and validates the body of a fmt chunk of the given size,
// including its pad byte. b is scratch space of maxFmtLen bytes.
func readFmt(r io.Reader, size uint32, b []byte) (waveFormat, error) {
	if size < 16 {
		return waveFormat{}, fmt.Errorf("%w: fmt chunk is %d bytes, want at least 16", ErrMalformed, size)
	}
	n := int(min(size, maxFmtLen))
	if _, err := io.ReadFull(r, b[:n]); err != nil {
		return waveFormat{}, readError("fmt chunk", err)
	}
	if rest := int64(size) - int64(n) + int64(size&1); rest > 0 {
		if _, err := io.CopyN(io.Discard, r, rest); err != nil {
			return waveFormat{}, readError("fmt chunk", err)
		}
	}

	le := binary.LittleEndian
	tag := le.Uint16(b[0:])
	channels := int(le.Uint16(b[2:]))
	rate := le.Uint32(b[4:])
	blockAlign := int(le.Uint16(b[12:]))
	bits := int(le.Uint16(b[14:]))

	if tag == tagExtensible {
		// wValidBitsPerSample (b[18:20]) is ignored: valid bits are
		// left-justified in the container, so scaling by the container
		// size is right.
		if n < maxFmtLen || le.Uint16(b[16:]) < 22 {
			return waveFormat{}, fmt.Errorf("%w: WAVE_FORMAT_EXTENSIBLE fmt chunk too short", ErrMalformed)
		}
		if [14]byte(b[26:40]) != guidTail {
			return waveFormat{}, fmt.Errorf("%w: WAVE_FORMAT_EXTENSIBLE sub-format GUID % x", ErrUnsupported, b[24:40])
		}
		tag = le.Uint16(b[24:])
	}

	var kind sampleKind
	switch {
	case tag == tagPCM && bits == 8:
		kind = kindU8
	case tag == tagPCM && bits == 16:
		kind = kindS16
	case tag == tagPCM && bits == 24:
		kind = kindS24
	case tag == tagPCM && bits == 32:
		kind = kindS32
	case tag == tagFloat && bits == 32:
		kind = kindF32
	case tag == tagFloat && bits == 64:
		kind = kindF64
	case tag == tagPCM || tag == tagFloat:
		return waveFormat{}, fmt.Errorf("%w: %d-bit %s", ErrUnsupported, bits, tagName(tag))
	default:
		return waveFormat{}, fmt.Errorf("%w: %s", ErrUnsupported, tagName(tag))
	}
	if channels == 0 {
		return waveFormat{}, fmt.Errorf("%w: zero channels", ErrMalformed)
	}
	if rate == 0 || rate > maxSampleRate {
		return waveFormat{}, fmt.Errorf("%w: sample rate %d", ErrMalformed, rate)
	}
	wf := waveFormat{kind: kind, size: bits / 8, channels: channels, sampleRate: int(rate)}
	if blockAlign != wf.frameSize() {
		return waveFormat{}, fmt.Errorf("%w: block align %d, want %d for %d channels of %d bits",
			ErrMalformed, blockAlign, wf.frameSize(), channels, bits)
	}
	return wf, nil
}

// tagName describes a WAVE format tag for error messages.
func tagName(tag uint16) string {
	switch tag {
	case tagPCM:
		return "integer PCM"
	case tagFloat:
		return "IEEE float"
	case tagALaw:
		return "A-law"
	case tagMuLaw:
		return "mu-law"
	}
	return fmt.Sprintf("format tag 0x%04x", tag)
}

// readData reads a data chunk of the given declared size, whose header has
// just been read. left is the number of bytes r holds, or negative if unknown.
func readData(r io.Reader, wf *waveFormat, size uint32, left int64) (Clip, error) {
	fs := int64(wf.frameSize())
	var want int64 // frames to preallocate
	switch {
	case left >= 0 && size == unknownSize:
		want = left / fs
	case left >= 0:
		want = min(int64(size), left) / fs
	case size == unknownSize:
		want = maxBlindAlloc
	default:
		want = min(int64(size)/fs, maxBlindAlloc)
	}
	c := Clip{Samples: make([]float32, 0, want), SampleRate: wf.sampleRate}

	// A whole number of frames, so that only the last read can end mid-frame.
	buf := make([]byte, max(1, readBlock/fs)*fs)
	var (
		err  error
		read int64 // bytes of the data chunk read so far
	)
	for size == unknownSize || read < int64(size) {
		b := buf
		if size != unknownSize {
			b = buf[:min(int64(len(buf)), int64(size)-read)]
		}
		var n int
		n, err = io.ReadFull(r, b)
		read += int64(n)
		var derr error
		if c.Samples, derr = appendFrames(c.Samples, wf, b[:int64(n)-int64(n)%fs]); derr != nil {
			return Clip{}, derr
		}
		if n < len(b) {
			break
		}
	}
	switch {
	case err == nil:
		return c, nil
	case size == unknownSize && (err == io.EOF || err == io.ErrUnexpectedEOF):
		return c, nil
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return Clip{}, fmt.Errorf("%w: data chunk declares %d bytes, input holds %d", ErrTruncated, size, read)
	default:
		return Clip{}, fmt.Errorf("reading data chunk: %w", err)
	}
}

// appendFrames decodes the whole frames in b, mixes each down to one sample
// and appends it to dst.
func appendFrames(dst []float32, wf *waveFormat, b []byte) ([]float32, error) {
	if wf.kind == kindS16 && wf.channels == 1 {
		// Fast path for the common case; same values as the general one.
		for ; len(b) >= 2; b = b[2:] {
			dst = append(dst, float32(int16(binary.LittleEndian.Uint16(b)))/(1<<15))
		}
		return dst, nil
	}
	channels := float64(wf.channels)
	for len(b) > 0 {
		var sum float64
		for range wf.channels {
			sum += wf.kind.value(b)
			b = b[wf.size:]
		}
		v := float32(sum / channels)
		// Only float input can be non-finite (or overflow float32).
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("%w: sample %d is %v", ErrNonFinite, len(dst), v)
		}
		dst = append(dst, v)
	}
	return dst, nil
}

// readError wraps an error from reading part of the file, turning an early
// end of input into ErrTruncated.
func readError(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: input ends inside the %s", ErrTruncated, what)
	}
	return fmt.Errorf("reading %s: %w", what, err)
}
