package melspec

import (
	"fmt"
	"math"

	"github.com/mjibson/go-dsp/fft"
)

// float32Tiny is numpy's finfo(float32).tiny, the smallest normal float32.
const float32Tiny = 0x1p-126

// Inverse resynthesises a signal from s like NVIDIA's STFT.inverse: each
// frame's inverse DFT (the imaginary parts of the DC and Nyquist bins are
// ignored) is windowed and overlap-added, the sum is divided by the window
// sum-square envelope wherever that exceeds float32 tiny, and NFFT/2 samples
// are trimmed from each end. The result has (Frames-1)·Hop samples.
func (a *Analyzer) Inverse(s Spectrum) ([]float32, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if s.Bins != a.bins {
		return nil, fmt.Errorf("melspec: spectrum has %d bins, want NFFT/2+1 = %d", s.Bins, a.bins)
	}
	o := a.newOverlapAdder(s.Frames)
	spec := make([]complex128, a.bins)
	for t := range s.Frames {
		for k := range spec {
			i := k*s.Frames + t
			m := float64(s.Magnitude[i])
			sin, cos := math.Sincos(float64(s.Phase[i]))
			spec[k] = complex(m*cos, m*sin)
		}
		o.add(t, spec)
	}
	return o.finish(), nil
}

// Denoise removes a stationary bias spectrum from samples like WaveGlow's
// Denoiser: every STFT magnitude becomes max(|X| − strength·bias, 0) with the
// phase kept, and the result is resynthesised with Inverse. bias has Bins
// entries (the Denoiser uses frame 0 of the STFT magnitude of the model's
// output for a zero mel). The result has floor(len(samples)/Hop)·Hop samples.
// It fails with ErrTooShort unless len(samples) > NFFT/2.
func (a *Analyzer) Denoise(samples []float32, bias []float32, strength float32) ([]float32, error) {
	if err := a.checkSignal(samples); err != nil {
		return nil, err
	}
	if len(bias) != a.bins {
		return nil, fmt.Errorf("melspec: denoiser bias has %d entries, want NFFT/2+1 = %d", len(bias), a.bins)
	}
	if i := firstNonFinite(bias); i >= 0 {
		return nil, fmt.Errorf("melspec: denoiser bias entry %d is %v", i, bias[i])
	}
	if s := float64(strength); math.IsNaN(s) || math.IsInf(s, 0) {
		return nil, fmt.Errorf("melspec: denoiser strength %v is not finite", strength)
	}
	sub := make([]float64, a.bins)
	for k, b := range bias {
		sub[k] = float64(strength) * float64(b)
	}
	o := a.newOverlapAdder(a.cfg.Frames(len(samples)))
	a.forEachFrame(samples, func(t int, spec []complex128) {
		for k, v := range spec {
			m := abs(v)
			d := math.Max(m-sub[k], 0)
			if m > 0 {
				spec[k] = v * complex(d/m, 0)
			} else { // phase atan2(0, 0) = 0
				spec[k] = complex(d, 0)
			}
		}
		o.add(t, spec)
	})
	return o.finish(), nil
}

// overlapAdder accumulates windowed inverse DFTs of frames. Frames are
// buffered in pairs so that one complex inverse FFT serves two real frames.
type overlapAdder struct {
	a        *Analyzer
	frames   int
	out      []float64    // [(frames-1)·Hop + NFFT] overlap-add sum
	z        []complex128 // [NFFT] packed spectrum of two frames
	pending  []complex128 // [Bins] spectrum of frame pendingT
	pendingT int          // -1 if no frame is pending
}

// newOverlapAdder returns an overlapAdder for a signal of frames frames.
func (a *Analyzer) newOverlapAdder(frames int) *overlapAdder {
	return &overlapAdder{
		a:        a,
		frames:   frames,
		out:      make([]float64, (frames-1)*a.cfg.Hop+a.cfg.NFFT),
		z:        make([]complex128, a.cfg.NFFT),
		pending:  make([]complex128, a.bins),
		pendingT: -1,
	}
}

// add adds frame t with half spectrum spec (Bins values). spec is not
// retained.
func (o *overlapAdder) add(t int, spec []complex128) {
	if o.pendingT < 0 {
		copy(o.pending, spec)
		o.pendingT = t
		return
	}
	o.synthesize(o.pendingT, o.pending, t, spec)
	o.pendingT = -1
}

// synthesize overlap-adds frame t0 (spectrum s0) and, if s1 is not nil,
// frame t1 (spectrum s1). The real signal with half spectrum X is
// irfft(X); packing Z = X0 + i·X1 over the full Hermitian extension gives
// ifft(Z) = x0 + i·x1.
func (o *overlapAdder) synthesize(t0 int, s0 []complex128, t1 int, s1 []complex128) {
	a := o.a
	n, half, hop := a.cfg.NFFT, a.cfg.NFFT/2, a.cfg.Hop
	for k := 0; k <= half; k++ {
		x0 := s0[k]
		var x1 complex128
		if s1 != nil {
			x1 = s1[k]
		}
		if k == 0 || k == half { // the reference's inverse basis has no sine row here
			x0, x1 = complex(real(x0), 0), complex(real(x1), 0)
		}
		o.z[k] = x0 + x1*1i
		if k > 0 && k < half {
			o.z[n-k] = conj(x0) + conj(x1)*1i
		}
	}
	y := fft.IFFT(o.z)
	for j := a.winLo; j < a.winHi; j++ {
		w := a.window[j]
		o.out[t0*hop+j] += real(y[j]) * w
		if s1 != nil {
			o.out[t1*hop+j] += imag(y[j]) * w
		}
	}
}

// finish flushes a pending frame, normalises by the window sum-square
// envelope and returns the trimmed signal of (frames-1)·Hop samples.
//
// The reference's inverse basis is pinv(scale·F)·window with scale =
// NFFT/Hop, and it multiplies the normalised sum by scale again; the two
// factors cancel and are omitted.
func (o *overlapAdder) finish() []float32 {
	a := o.a
	if o.pendingT >= 0 {
		o.synthesize(o.pendingT, o.pending, -1, nil)
		o.pendingT = -1
	}
	hop := a.cfg.Hop
	// librosa's window_sumsquare with dtype float32: float64 Hann² added
	// into a float32 envelope.
	wss := make([]float32, len(o.out))
	for t := range o.frames {
		env := wss[t*hop:]
		for j := a.winLo; j < a.winHi; j++ {
			env[j] = float32(float64(env[j]) + a.hannSq[j])
		}
	}
	res := make([]float32, (o.frames-1)*hop)
	for i := range res {
		v := o.out[a.pad+i]
		if e := wss[a.pad+i]; e > float32Tiny {
			v /= float64(e)
		}
		res[i] = float32(v)
	}
	return res
}
