package melspec

import (
	"fmt"
	"math"
	"slices"

	"github.com/mjibson/go-dsp/fft"
)

// melClip is the floor applied to mel energies before the logarithm,
// float32(1e-5) as in Tacotron2's dynamic_range_compression.
const melClip = float64(float32(1e-5))

// Analyzer computes STFTs, mel spectrograms and inverse STFTs for one Config.
// It holds the precomputed window and filterbank; it is immutable and safe
// for concurrent use.
type Analyzer struct {
	cfg  Config
	bins int // NFFT/2 + 1
	pad  int // reflect padding on each side, NFFT/2

	// The window is non-zero only on [winLo, winHi) = the centred Win samples.
	winLo, winHi int
	window32     []float32 // [NFFT] periodic Hann, zero-padded to the centre
	window       []float64 // window32 widened to float64
	hannSq       []float64 // [NFFT] float64 Hann², unrounded, for the window sum-square

	filterbank []float32 // [NMels × Bins]
	bands      []melBand // sparse form of filterbank
	weights    []float64 // non-zero filterbank entries, widened to float64
}

// melBand locates the non-zero filterbank entries of one mel channel: bins
// [lo, hi) with weights weights[off : off+hi-lo].
type melBand struct {
	lo, hi, off int
}

// NewAnalyzer validates c and precomputes its window and mel filterbank.
func NewAnalyzer(c Config) (*Analyzer, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	a := &Analyzer{
		cfg:   c,
		bins:  c.Bins(),
		pad:   c.NFFT / 2,
		winLo: (c.NFFT - c.Win) / 2,
	}
	a.winHi = a.winLo + c.Win
	a.window32 = make([]float32, c.NFFT)
	a.window = make([]float64, c.NFFT)
	a.hannSq = make([]float64, c.NFFT)
	for i, w := range hann(c.Win) {
		j := a.winLo + i
		a.window32[j] = float32(w)
		a.window[j] = float64(a.window32[j])
		a.hannSq[j] = w * w
	}

	fb := melFilterbank(c)
	a.filterbank = make([]float32, len(fb))
	a.bands = make([]melBand, c.NMels)
	for m := range a.bands {
		row := a.filterbank[m*a.bins : (m+1)*a.bins]
		for k, w := range fb[m*a.bins : (m+1)*a.bins] {
			row[k] = float32(w)
		}
		lo := slices.IndexFunc(row, func(w float32) bool { return w != 0 })
		if lo < 0 { // an empty filter (too many mels for NFFT), as librosa allows
			a.bands[m] = melBand{off: len(a.weights)}
			continue
		}
		hi := a.bins
		for row[hi-1] == 0 {
			hi--
		}
		a.bands[m] = melBand{lo: lo, hi: hi, off: len(a.weights)}
		for _, w := range row[lo:hi] {
			a.weights = append(a.weights, float64(w))
		}
	}
	return a, nil
}

// hann returns scipy's periodic Hann window get_window("hann", n,
// fftbins=True) in float64: 0.5 + 0.5·cos(θ) with θ taken from
// linspace(-π, π, n+1).
func hann(n int) []float64 {
	theta := linspace(-math.Pi, math.Pi, n+1)
	w := make([]float64, n)
	for i := range w {
		w[i] = 0.5 + 0.5*math.Cos(theta[i])
	}
	return w
}

// Config returns the configuration of a.
func (a *Analyzer) Config() Config { return a.cfg }

// Window returns a copy of the analysis window: NFFT float32 values, the
// periodic Hann window of length Win zero-padded to the centre
// ((NFFT-Win)/2 zeros on the left).
func (a *Analyzer) Window() []float32 { return slices.Clone(a.window32) }

// Filterbank returns a copy of the mel filterbank as [NMels × Bins]
// row-major float32 values: librosa 0.6.0's Slaney-normalised filters built
// in float64 and rounded once.
func (a *Analyzer) Filterbank() []float32 { return slices.Clone(a.filterbank) }

// Mel returns the log-mel spectrogram of samples (expected in [-1, 1], e.g.
// int16/32768): ln(max(filterbank · |STFT|, 1e-5)) with Config.Frames
// frames. It fails with ErrTooShort unless len(samples) > NFFT/2.
func (a *Analyzer) Mel(samples []float32) (Spectrogram, error) {
	if err := a.checkSignal(samples); err != nil {
		return Spectrogram{}, err
	}
	frames := a.cfg.Frames(len(samples))
	out := Spectrogram{NMels: a.cfg.NMels, Frames: frames, Data: make([]float32, a.cfg.NMels*frames)}
	mag := make([]float64, a.bins)
	a.forEachFrame(samples, func(t int, spec []complex128) {
		for k, v := range spec {
			mag[k] = abs(v)
		}
		for m, b := range a.bands {
			var s float64
			w := a.weights[b.off : b.off+b.hi-b.lo]
			for i, x := range mag[b.lo:b.hi] {
				s += w[i] * x
			}
			out.Data[m*frames+t] = float32(math.Log(math.Max(s, melClip)))
		}
	})
	return out, nil
}

// STFT returns the short-time Fourier transform of samples as magnitude and
// phase (atan2(imaginary, real)), with Config.Bins bins and Config.Frames
// frames. It fails with ErrTooShort unless len(samples) > NFFT/2.
func (a *Analyzer) STFT(samples []float32) (Spectrum, error) {
	if err := a.checkSignal(samples); err != nil {
		return Spectrum{}, err
	}
	frames := a.cfg.Frames(len(samples))
	out := Spectrum{
		Bins:      a.bins,
		Frames:    frames,
		Magnitude: make([]float32, a.bins*frames),
		Phase:     make([]float32, a.bins*frames),
	}
	a.forEachFrame(samples, func(t int, spec []complex128) {
		for k, v := range spec {
			out.Magnitude[k*frames+t] = float32(abs(v))
			out.Phase[k*frames+t] = float32(math.Atan2(imag(v), real(v)))
		}
	})
	return out, nil
}

// abs returns |v| as sqrt(re² + im²), the reference's formula.
func abs(v complex128) float64 {
	re, im := real(v), imag(v)
	return math.Sqrt(re*re + im*im)
}

// checkSignal reports whether samples can be transformed: more than NFFT/2
// samples (the reflect padding needs them) and all finite.
func (a *Analyzer) checkSignal(samples []float32) error {
	if len(samples) <= a.pad {
		return fmt.Errorf("%w: got %d samples, need more than NFFT/2 = %d", ErrTooShort, len(samples), a.pad)
	}
	if i := firstNonFinite(samples); i >= 0 {
		return fmt.Errorf("melspec: sample %d is %v", i, samples[i])
	}
	return nil
}

// forEachFrame computes the spectrum of every frame of the reflect-padded,
// windowed signal and calls fn with the frame index, in increasing order, and
// its Bins complex values. fn may modify spec; the slice is reused. samples
// must have passed checkSignal.
//
// Two real frames are transformed with one complex FFT (frame t in the real
// part, frame t+1 in the imaginary part) and separated by Hermitian symmetry.
func (a *Analyzer) forEachFrame(samples []float32, fn func(t int, spec []complex128)) {
	n, hop := a.cfg.NFFT, a.cfg.Hop
	frames := a.cfg.Frames(len(samples))
	z := make([]complex128, n) // zero outside the window, never written there
	specA := make([]complex128, a.bins)
	specB := make([]complex128, a.bins)
	for t := 0; t < frames; t += 2 {
		second := t+1 < frames
		for j := a.winLo; j < a.winHi; j++ {
			w := a.window[j]
			re := w * float64(a.padded(samples, t*hop+j))
			var im float64
			if second {
				im = w * float64(a.padded(samples, (t+1)*hop+j))
			}
			z[j] = complex(re, im)
		}
		zf := fft.FFT(z)
		for k := range a.bins {
			p, q := zf[k], conj(zf[(n-k)%n])
			specA[k] = (p + q) * 0.5
			specB[k] = (p - q) * complex(0, -0.5)
		}
		fn(t, specA)
		if second {
			fn(t+1, specB)
		}
	}
}

// padded returns sample j of samples reflect-padded by NFFT/2 on both sides
// (mirrored without repeating the edge sample).
func (a *Analyzer) padded(samples []float32, j int) float32 {
	i := j - a.pad
	switch {
	case i < 0:
		i = -i
	case i >= len(samples):
		i = 2*(len(samples)-1) - i
	}
	return samples[i]
}

// conj returns the complex conjugate of v.
func conj(v complex128) complex128 { return complex(real(v), -imag(v)) }
