package melspec

import (
	"errors"
	"fmt"
	"math"
)

// Spectrogram is a log-mel spectrogram in Tacotron2's [NMels × Frames]
// layout, stored row-major: the value of mel channel m at frame t is
// Data[m*Frames+t].
type Spectrogram struct {
	NMels, Frames int
	Data          []float32
}

// At returns the value of mel channel m at frame t. Like indexing a slice, it
// panics if m or t is out of range.
func (s Spectrogram) At(m, t int) float32 {
	if m < 0 || m >= s.NMels || t < 0 || t >= s.Frames {
		panic(fmt.Sprintf("melspec: index (%d, %d) out of range [%d × %d]", m, t, s.NMels, s.Frames))
	}
	return s.Data[m*s.Frames+t]
}

// Validate reports whether the shape of s is consistent with its data and
// every value is finite. A non-finite value is reported with its mel channel
// and frame.
func (s Spectrogram) Validate() error {
	if err := checkShape(s.NMels, s.Frames, len(s.Data)); err != nil {
		return fmt.Errorf("melspec: invalid spectrogram: %w", err)
	}
	if i := firstNonFinite(s.Data); i >= 0 {
		return fmt.Errorf("melspec: invalid spectrogram: value %v at mel %d, frame %d", s.Data[i], i/s.Frames, i%s.Frames)
	}
	return nil
}

// Spectrum is a short-time Fourier transform in polar form: Magnitude and
// Phase are [Bins × Frames] row-major, so bin k of frame t is at index
// k*Frames+t. Phase is atan2(imaginary, real) in radians.
type Spectrum struct {
	Bins, Frames     int
	Magnitude, Phase []float32
}

// Validate reports whether the shape of s is consistent with its data and
// every value is finite. A non-finite value is reported with its bin and
// frame.
func (s Spectrum) Validate() error {
	if err := checkShape(s.Bins, s.Frames, len(s.Magnitude)); err != nil {
		return fmt.Errorf("melspec: invalid spectrum magnitude: %w", err)
	}
	if err := checkShape(s.Bins, s.Frames, len(s.Phase)); err != nil {
		return fmt.Errorf("melspec: invalid spectrum phase: %w", err)
	}
	if i := firstNonFinite(s.Magnitude); i >= 0 {
		return fmt.Errorf("melspec: invalid spectrum: magnitude %v at bin %d, frame %d", s.Magnitude[i], i/s.Frames, i%s.Frames)
	}
	if i := firstNonFinite(s.Phase); i >= 0 {
		return fmt.Errorf("melspec: invalid spectrum: phase %v at bin %d, frame %d", s.Phase[i], i/s.Frames, i%s.Frames)
	}
	return nil
}

// checkShape reports whether a rows × cols matrix is non-empty and has n
// elements.
func checkShape(rows, cols, n int) error {
	if rows <= 0 || cols <= 0 {
		return fmt.Errorf("shape [%d × %d] is not positive", rows, cols)
	}
	if rows > math.MaxInt/cols || rows*cols != n {
		return fmt.Errorf("shape [%d × %d] does not match %d values", rows, cols, n)
	}
	return nil
}

// firstNonFinite returns the index of the first NaN or infinite value in x,
// or -1 if there is none.
func firstNonFinite(x []float32) int {
	for i, v := range x {
		if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
			return i
		}
	}
	return -1
}

// ErrTooShort is wrapped by the errors of transforms whose input has no more
// than NFFT/2 samples, the reflect-padding width (PyTorch rejects such input).
var ErrTooShort = errors.New("melspec: signal too short for reflect padding")
