package audio

import (
	"errors"
	"fmt"
	"strings"
)

// Clip is mono audio: samples nominally in [-1, 1] (float WAV files may hold
// larger values, which are kept) and the sample rate in hertz.
type Clip struct {
	Samples    []float32
	SampleRate int
}

// Format says how Encode, WriteFile and StreamWriter store samples.
// The zero value is not a valid format.
type Format int

// The sample formats that can be written.
const (
	// PCM16 is 16-bit signed integer PCM (WAVE_FORMAT_PCM).
	PCM16 Format = iota + 1
	// Float32 is 32-bit IEEE float (WAVE_FORMAT_IEEE_FLOAT).
	Float32
)

// String returns the name ParseFormat accepts: "pcm16" or "float32".
func (f Format) String() string {
	switch f {
	case PCM16:
		return "pcm16"
	case Float32:
		return "float32"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// ParseFormat returns the Format named s ("pcm16" or "float32", ignoring case).
func ParseFormat(s string) (Format, error) {
	for _, f := range []Format{PCM16, Float32} {
		if strings.EqualFold(s, f.String()) {
			return f, nil
		}
	}
	return 0, fmt.Errorf("audio: unknown sample format %q (want pcm16 or float32)", s)
}

// bytesPerSample returns the size of one stored sample, or 0 for an invalid f.
func (f Format) bytesPerSample() int {
	switch f {
	case PCM16:
		return 2
	case Float32:
		return 4
	}
	return 0
}

// Errors returned (wrapped) by this package; test for them with errors.Is.
var (
	// ErrMalformed reports input that is not a well-formed RIFF/WAVE file.
	ErrMalformed = errors.New("malformed WAV")
	// ErrUnsupported reports a well-formed WAV file whose encoding this
	// package does not decode (A-law, ADPCM, 12-bit PCM, ...), or an
	// invalid Format passed to an encoder.
	ErrUnsupported = errors.New("unsupported WAV encoding")
	// ErrTruncated reports input that ends before the sizes it declares.
	ErrTruncated = errors.New("truncated WAV")
	// ErrNonFinite reports a NaN or infinite sample, in a float WAV file
	// being decoded or in samples being encoded.
	ErrNonFinite = errors.New("non-finite sample")
)
