// Package melspec implements the Tacotron2/WaveGlow mel-spectrogram front end
// and the short-time Fourier transform it is built on.
//
// The computation follows NVIDIA's tacotron2 stft.py and layers.py (as used
// by WaveGlow's mel2samp.py): the signal is reflect-padded by NFFT/2 on both
// sides, cut into frames of NFFT samples every Hop samples, multiplied by a
// periodic Hann window of Win samples zero-padded to NFFT, transformed to a
// magnitude spectrum, projected onto a Slaney mel filterbank (librosa 0.6.0
// values) and compressed with ln(max(x, 1e-5)).
//
// Internally every transform runs in float64; results are rounded to float32
// once. The Analyzer also provides NVIDIA's STFT.inverse and the spectral
// subtraction of WaveGlow's Denoiser.
package melspec

import (
	"fmt"
	"math"
)

// Resource limits enforced by Config.Validate. They are far above any
// practical front end and only guard against absurd allocations.
const (
	maxNFFT  = 1 << 16
	maxNMels = 1 << 12
)

// Config holds the STFT and mel filterbank parameters.
type Config struct {
	SampleRate int     // sampling rate in Hz
	NFFT       int     // FFT size (Tacotron2's filter_length); must be even
	Hop        int     // hop between frames in samples
	Win        int     // Hann window length, at most NFFT; zero-padded to the centre of NFFT
	NMels      int     // number of mel channels
	FMin, FMax float64 // lowest and highest filterbank frequency in Hz
}

// DefaultConfig returns WaveGlow's front-end parameters: 22050 Hz, NFFT 1024,
// hop 256, window 1024, 80 mel channels from 0 to 8000 Hz.
func DefaultConfig() Config {
	return Config{
		SampleRate: 22050,
		NFFT:       1024,
		Hop:        256,
		Win:        1024,
		NMels:      80,
		FMin:       0,
		FMax:       8000,
	}
}

// Validate reports whether c describes a usable front end. It requires
// positive sizes, an even NFFT of at most 65536, Win <= NFFT, at most 4096 mel
// channels and 0 <= FMin < FMax <= SampleRate/2.
func (c Config) Validate() error {
	if err := c.validate(); err != nil {
		return fmt.Errorf("melspec: invalid config: %w", err)
	}
	return nil
}

func (c Config) validate() error {
	nyquist := float64(c.SampleRate) / 2
	switch {
	case c.SampleRate <= 0:
		return fmt.Errorf("sample rate %d is not positive", c.SampleRate)
	case c.NFFT <= 0:
		return fmt.Errorf("NFFT %d is not positive", c.NFFT)
	case c.NFFT%2 != 0:
		return fmt.Errorf("NFFT %d is odd", c.NFFT)
	case c.NFFT > maxNFFT:
		return fmt.Errorf("NFFT %d exceeds the limit %d", c.NFFT, maxNFFT)
	case c.Hop <= 0:
		return fmt.Errorf("hop %d is not positive", c.Hop)
	case c.Win <= 0:
		return fmt.Errorf("window length %d is not positive", c.Win)
	case c.Win > c.NFFT:
		return fmt.Errorf("window length %d exceeds NFFT %d", c.Win, c.NFFT)
	case c.NMels <= 0:
		return fmt.Errorf("number of mel channels %d is not positive", c.NMels)
	case c.NMels > maxNMels:
		return fmt.Errorf("number of mel channels %d exceeds the limit %d", c.NMels, maxNMels)
	case math.IsNaN(c.FMin) || math.IsInf(c.FMin, 0):
		return fmt.Errorf("FMin %v is not finite", c.FMin)
	case math.IsNaN(c.FMax) || math.IsInf(c.FMax, 0):
		return fmt.Errorf("FMax %v is not finite", c.FMax)
	case c.FMin < 0:
		return fmt.Errorf("FMin %v is negative", c.FMin)
	case c.FMax > nyquist:
		return fmt.Errorf("FMax %v exceeds the Nyquist frequency %v", c.FMax, nyquist)
	case c.FMin >= c.FMax:
		return fmt.Errorf("FMin %v is not below FMax %v", c.FMin, c.FMax)
	}
	return nil
}

// Bins returns the number of STFT frequency bins, NFFT/2+1.
func (c Config) Bins() int { return c.NFFT/2 + 1 }

// Frames returns the number of STFT frames for a signal of n samples,
// n/Hop + 1. The transform itself needs n > NFFT/2; Frames does not check.
func (c Config) Frames(n int) int {
	if c.Hop <= 0 || n < 0 {
		return 0
	}
	return n/c.Hop + 1
}
