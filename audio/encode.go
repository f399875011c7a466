package audio

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
)

// writeBlock is the size of the buffer samples are encoded into before
// being handed to the io.Writer.
const writeBlock = 16 << 10

// headerLen returns the size of the header Encode writes for f: the
// canonical 44 bytes for PCM16; for Float32 an 18-byte fmt chunk (cbSize 0)
// and a 12-byte fact chunk, as the specification asks of non-PCM formats.
func headerLen(f Format) int {
	if f == Float32 {
		return 58
	}
	return 44
}

// checkParams validates the format, the sample rate and the number of
// samples (n, or -1 for a stream of unknown length) of a file to write.
func checkParams(f Format, sampleRate, n int) error {
	bps := int64(f.bytesPerSample())
	if bps == 0 {
		return fmt.Errorf("%w: %v", ErrUnsupported, f)
	}
	if sampleRate <= 0 || int64(sampleRate) > maxSampleRate {
		return fmt.Errorf("sample rate %d out of range [1, %d]", sampleRate, maxSampleRate)
	}
	// The RIFF size must fit in 32 bits and differ from unknownSize.
	if maxN := (unknownSize - 1 - int64(headerLen(f)-8)) / bps; int64(n) > maxN {
		return fmt.Errorf("%d samples exceed the WAV size limit of %d %v samples", n, maxN, f)
	}
	return nil
}

// checkFinite returns an error wrapping ErrNonFinite if s holds a NaN or an
// infinity.
func checkFinite(s []float32) error {
	for i, v := range s {
		if v-v != 0 { // NaN or ±Inf
			return fmt.Errorf("%w: sample %d is %v", ErrNonFinite, i, v)
		}
	}
	return nil
}

// appendHeader appends the WAV header for f to dst. n is the number of
// samples, or -1 for unknown, which writes 0xFFFFFFFF in the RIFF, fact and
// data size fields. The parameters must have passed checkParams.
func appendHeader(dst []byte, f Format, sampleRate, n int) []byte {
	le := binary.LittleEndian
	bps := uint32(f.bytesPerSample())
	riffSize, dataSize, frames := uint32(unknownSize), uint32(unknownSize), uint32(unknownSize)
	if n >= 0 {
		dataSize = uint32(n) * bps
		riffSize = uint32(headerLen(f)-8) + dataSize
		frames = uint32(n)
	}
	dst = append(dst, "RIFF"...)
	dst = le.AppendUint32(dst, riffSize)
	dst = append(dst, "WAVEfmt "...)
	tag := uint16(tagPCM)
	if f == Float32 {
		dst = le.AppendUint32(dst, 18)
		tag = tagFloat
	} else {
		dst = le.AppendUint32(dst, 16)
	}
	dst = le.AppendUint16(dst, tag)
	dst = le.AppendUint16(dst, 1) // channels
	dst = le.AppendUint32(dst, uint32(sampleRate))
	dst = le.AppendUint32(dst, uint32(sampleRate)*bps) // byte rate
	dst = le.AppendUint16(dst, uint16(bps))            // block align
	dst = le.AppendUint16(dst, uint16(8*bps))          // bits per sample
	if f == Float32 {
		dst = le.AppendUint16(dst, 0) // cbSize
		dst = append(dst, "fact"...)
		dst = le.AppendUint32(dst, 4)
		dst = le.AppendUint32(dst, frames)
	}
	dst = append(dst, "data"...)
	return le.AppendUint32(dst, dataSize)
}

// pcm16 converts v to a 16-bit sample: v·32768 rounded half to even and
// clipped to [-32768, 32767]. The product is exact in float64.
func pcm16(v float32) int16 {
	x := math.RoundToEven(float64(v) * 32768)
	switch {
	case x > math.MaxInt16:
		return math.MaxInt16
	case x < math.MinInt16:
		return math.MinInt16
	}
	return int16(x)
}

// writeSamples encodes s in format f after the bytes already in buf and
// writes everything to w, one buffer at a time. buf's capacity must be at
// least writeBlock.
func writeSamples(w io.Writer, buf []byte, s []float32, f Format) error {
	le := binary.LittleEndian
	bps := f.bytesPerSample()
	for {
		k := min(len(s), (cap(buf)-len(buf))/bps)
		if f == PCM16 {
			for _, v := range s[:k] {
				buf = le.AppendUint16(buf, uint16(pcm16(v)))
			}
		} else {
			for _, v := range s[:k] {
				buf = le.AppendUint32(buf, math.Float32bits(v))
			}
		}
		s = s[k:]
		if _, err := w.Write(buf); err != nil {
			return err
		}
		if len(s) == 0 {
			return nil
		}
		buf = buf[:0]
	}
}

// Encode writes c to w as a complete mono WAV file in format f, with exact
// RIFF, fact and data sizes. PCM16 clips samples outside [-1, 32767/32768];
// Float32 stores them unchanged. A NaN or infinite sample is an error
// wrapping ErrNonFinite, and so are an invalid format (ErrUnsupported) and a
// sample rate or length that a WAV header cannot hold; in all these cases
// nothing is written to w.
func Encode(w io.Writer, c Clip, f Format) error {
	if err := checkClip(c, f); err != nil {
		return fmt.Errorf("audio: encode: %w", err)
	}
	if err := encode(w, c, f); err != nil {
		return fmt.Errorf("audio: encode: %w", err)
	}
	return nil
}

// checkClip validates c and f for Encode and WriteFile.
func checkClip(c Clip, f Format) error {
	if err := checkParams(f, c.SampleRate, len(c.Samples)); err != nil {
		return err
	}
	return checkFinite(c.Samples)
}

// encode writes a clip that has passed checkClip.
func encode(w io.Writer, c Clip, f Format) error {
	buf := appendHeader(make([]byte, 0, writeBlock), f, c.SampleRate, len(c.Samples))
	return writeSamples(w, buf, c.Samples, f)
}

// WriteFile writes c to the file at path as Encode does, atomically: it
// writes a temporary file in the same directory, syncs it to disk and
// renames it over path, so that path never holds a partial file. On error
// the temporary file is removed. The file gets permissions 0644.
func WriteFile(path string, c Clip, f Format) (err error) {
	if err := checkClip(c, f); err != nil {
		return fmt.Errorf("audio: write %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("audio: %w", err)
	}
	defer func() {
		if err != nil {
			// The write already failed; these only clean up.
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := encode(tmp, c, f); err != nil {
		return fmt.Errorf("audio: write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("audio: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("audio: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("audio: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("audio: %w", err)
	}
	return nil
}

// StreamWriter writes a mono WAV file of unknown length (or, made by
// NewRawWriter, bare samples) to an io.Writer that cannot seek, such as an
// http.ResponseWriter. The header, written by
// NewStreamWriter, has 0xFFFFFFFF as RIFF, fact and data sizes, which
// browsers, sox, ffmpeg and Decode read as "until the end of the stream".
// Each Write hands its encoded samples to the underlying writer before
// returning; nothing is buffered, so there is nothing to flush or close.
// A StreamWriter is not safe for concurrent use.
type StreamWriter struct {
	w   io.Writer
	f   Format
	buf []byte // encoding buffer, reused by every Write
	err error  // first write error; the stream is broken after it
}

// NewStreamWriter writes the header of a WAV stream of unknown length in
// format f at the given sample rate to w, and returns a StreamWriter that
// appends samples to it.
func NewStreamWriter(w io.Writer, sampleRate int, f Format) (*StreamWriter, error) {
	if err := checkParams(f, sampleRate, -1); err != nil {
		return nil, fmt.Errorf("audio: stream: %w", err)
	}
	buf := appendHeader(make([]byte, 0, writeBlock), f, sampleRate, -1)
	if _, err := w.Write(buf); err != nil {
		return nil, fmt.Errorf("audio: stream: writing header: %w", err)
	}
	return &StreamWriter{w: w, f: f, buf: buf[:0]}, nil
}

// NewRawWriter returns a StreamWriter that writes samples in format f
// with no header at all: raw little-endian 16-bit PCM or float32, for
// pipelines that take bare samples (telephony, sox -t raw).
func NewRawWriter(w io.Writer, f Format) (*StreamWriter, error) {
	if f.bytesPerSample() == 0 {
		return nil, fmt.Errorf("audio: raw stream: %w", ErrUnsupported)
	}
	return &StreamWriter{w: w, f: f, buf: make([]byte, 0, writeBlock)}, nil
}

// Write encodes samples as Encode does and writes them to the stream. A NaN
// or infinite sample is an error wrapping ErrNonFinite, and then nothing is
// written: the stream stays valid and Write can be called again. An error
// from the underlying writer is returned by this and every later Write,
// since the stream may then end mid-sample.
func (s *StreamWriter) Write(samples []float32) error {
	if s.err != nil {
		return s.err
	}
	if err := checkFinite(samples); err != nil {
		return fmt.Errorf("audio: stream: %w", err)
	}
	if len(samples) == 0 {
		return nil
	}
	if err := writeSamples(s.w, s.buf, samples, s.f); err != nil {
		s.err = fmt.Errorf("audio: stream: %w", err)
		return s.err
	}
	return nil
}
