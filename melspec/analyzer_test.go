package melspec

import (
	"errors"
	"math"
	"math/cmplx"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
)

// testSignal returns n deterministic samples: two sines plus noise, within
// [-1, 1].
func testSignal(n int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	x := make([]float32, n)
	for i := range x {
		v := 0.4*math.Sin(2*math.Pi*440*float64(i)/22050) +
			0.2*math.Sin(2*math.Pi*3100*float64(i)/22050+1) +
			0.05*r.NormFloat64()
		x[i] = float32(v)
	}
	return x
}

// naiveSTFT computes the STFT of x by definition in float64: reflect
// padding, the analyzer's window and a direct DFT. It returns [frames][bins].
func naiveSTFT(c Config, window []float32, x []float32) [][]complex128 {
	p := c.NFFT / 2
	pad := make([]float64, 0, len(x)+2*p)
	for i := p; i > 0; i-- {
		pad = append(pad, float64(x[i]))
	}
	for _, v := range x {
		pad = append(pad, float64(v))
	}
	for i := len(x) - 2; i >= len(x)-1-p; i-- {
		pad = append(pad, float64(x[i]))
	}
	twiddle := make([]complex128, c.NFFT) // e^{-2πim/NFFT}
	for m := range twiddle {
		twiddle[m] = cmplx.Exp(complex(0, -2*math.Pi*float64(m)/float64(c.NFFT)))
	}
	frames := (len(pad)-c.NFFT)/c.Hop + 1
	out := make([][]complex128, frames)
	for t := range out {
		out[t] = make([]complex128, c.NFFT/2+1)
		for k := range out[t] {
			var s complex128
			for n := range c.NFFT {
				s += complex(pad[t*c.Hop+n]*float64(window[n]), 0) * twiddle[k*n%c.NFFT]
			}
			out[t][k] = s
		}
	}
	return out
}

// testConfigs are parameter sets beyond the reference fixtures: a window
// shorter than NFFT (even and odd padding), a hop that does not divide NFFT,
// and a non-power-of-two NFFT.
var testConfigs = []struct {
	name string
	c    Config
}{
	{"win800", Config{SampleRate: 22050, NFFT: 1024, Hop: 256, Win: 800, NMels: 80, FMax: 8000}},
	{"win301_hop100", Config{SampleRate: 16000, NFFT: 512, Hop: 100, Win: 301, NMels: 40, FMin: 55, FMax: 8000}},
	{"nfft800", Config{SampleRate: 22050, NFFT: 800, Hop: 200, Win: 800, NMels: 80, FMin: 20, FMax: 11025}},
}

func TestWindowPadding(t *testing.T) {
	for _, tc := range testConfigs {
		t.Run(tc.name, func(t *testing.T) {
			a, err := NewAnalyzer(tc.c)
			if err != nil {
				t.Fatal(err)
			}
			w := a.Window()
			if len(w) != tc.c.NFFT {
				t.Fatalf("window has %d values, want %d", len(w), tc.c.NFFT)
			}
			lpad := (tc.c.NFFT - tc.c.Win) / 2
			for i, v := range w {
				var want float64
				if n := i - lpad; n >= 0 && n < tc.c.Win {
					want = 0.5 - 0.5*math.Cos(2*math.Pi*float64(n)/float64(tc.c.Win))
				}
				if math.Abs(float64(v)-want) > 1e-7 {
					t.Fatalf("window[%d] = %v, want %v (left padding %d)", i, v, want, lpad)
				}
			}
			// The copy must not alias the analyzer's window.
			w[lpad+1] = 42
			if a.Window()[lpad+1] == 42 {
				t.Error("Window returned the analyzer's own slice")
			}
		})
	}
}

// TestSTFTAgainstDFT compares STFT and Mel with a direct float64
// computation for parameter sets without reference fixtures.
func TestSTFTAgainstDFT(t *testing.T) {
	for _, tc := range testConfigs {
		t.Run(tc.name, func(t *testing.T) {
			a, err := NewAnalyzer(tc.c)
			if err != nil {
				t.Fatal(err)
			}
			x := testSignal(3*tc.c.NFFT+37, 7)
			spec, err := a.STFT(x)
			if err != nil {
				t.Fatal(err)
			}
			want := naiveSTFT(tc.c, a.Window(), x)
			if spec.Frames != len(want) || spec.Frames != tc.c.Frames(len(x)) || spec.Bins != tc.c.Bins() {
				t.Fatalf("STFT shape [%d × %d], want [%d × %d]", spec.Bins, spec.Frames, tc.c.Bins(), len(want))
			}
			var maxMag float64
			for _, f := range want {
				for _, v := range f {
					maxMag = math.Max(maxMag, cmplx.Abs(v))
				}
			}
			fb := a.Filterbank()
			mel, err := a.Mel(x)
			if err != nil {
				t.Fatal(err)
			}
			for tt, f := range want {
				for k, v := range f {
					i := k*spec.Frames + tt
					if d := math.Abs(float64(spec.Magnitude[i]) - cmplx.Abs(v)); d > 1e-6*maxMag {
						t.Fatalf("magnitude (bin %d, frame %d) = %v, want %v", k, tt, spec.Magnitude[i], cmplx.Abs(v))
					}
					if cmplx.Abs(v) < 1e-3*maxMag {
						continue // phase of a near-zero bin is noise
					}
					d := math.Abs(math.Remainder(float64(spec.Phase[i])-cmplx.Phase(v), 2*math.Pi))
					if d > 1e-4 {
						t.Fatalf("phase (bin %d, frame %d) = %v, want %v", k, tt, spec.Phase[i], cmplx.Phase(v))
					}
				}
				for m := range tc.c.NMels {
					var s float64
					for k, v := range f {
						s += float64(fb[m*spec.Bins+k]) * cmplx.Abs(v)
					}
					wantMel := math.Log(math.Max(s, 1e-5))
					if d := math.Abs(float64(mel.At(m, tt)) - wantMel); d > 1e-5 {
						t.Fatalf("mel (%d, %d) = %v, want %v", m, tt, mel.At(m, tt), wantMel)
					}
				}
			}
		})
	}
}

// TestEmptyFilters uses more mel channels than the FFT resolves, which
// leaves some filters empty (librosa allows it); those rows are ln(1e-5).
func TestEmptyFilters(t *testing.T) {
	c := Config{SampleRate: 22050, NFFT: 64, Hop: 16, Win: 64, NMels: 128, FMax: 11025}
	a, err := NewAnalyzer(c)
	if err != nil {
		t.Fatal(err)
	}
	fb := a.Filterbank()
	mel, err := a.Mel(testSignal(1000, 3))
	if err != nil {
		t.Fatal(err)
	}
	empty := 0
	for m := range c.NMels {
		if slices.ContainsFunc(fb[m*c.Bins():(m+1)*c.Bins()], func(w float32) bool { return w != 0 }) {
			continue
		}
		empty++
		for tt := range mel.Frames {
			if got, want := mel.At(m, tt), float32(math.Log(float64(float32(1e-5)))); got != want {
				t.Fatalf("empty filter %d: mel at frame %d = %v, want %v", m, tt, got, want)
			}
		}
	}
	if empty == 0 {
		t.Fatal("configuration produced no empty filter")
	}
}

// TestInverseRoundTrip checks that Inverse(STFT(x)) reconstructs x and that
// Denoise with zero strength is the identity.
func TestInverseRoundTrip(t *testing.T) {
	cases := append([]struct {
		name string
		c    Config
	}{
		{"default", DefaultConfig()},
		{"16k", Config{SampleRate: 16000, NFFT: 512, Hop: 128, Win: 512, NMels: 80, FMax: 7600}},
	}, testConfigs...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, err := NewAnalyzer(tc.c)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range []int{tc.c.NFFT/2 + 1, 2*tc.c.NFFT + 1, 5000, 5000 + tc.c.Hop} {
				x := testSignal(n, uint64(n))
				wantLen := n / tc.c.Hop * tc.c.Hop
				spec, err := a.STFT(x)
				if err != nil {
					t.Fatal(err)
				}
				y, err := a.Inverse(spec)
				if err != nil {
					t.Fatal(err)
				}
				if len(y) != wantLen {
					t.Fatalf("n=%d: Inverse returned %d samples, want %d", n, len(y), wantLen)
				}
				if d, at := maxAbsDiff(y, x[:wantLen], nil); d > 2e-6 {
					t.Fatalf("n=%d: Inverse(STFT(x)) differs from x by %.3g at %d", n, d, at)
				}
				z, err := a.Denoise(x, make([]float32, tc.c.Bins()), 0)
				if err != nil {
					t.Fatal(err)
				}
				if len(z) != wantLen {
					t.Fatalf("n=%d: Denoise returned %d samples, want %d", n, len(z), wantLen)
				}
				if d, at := maxAbsDiff(z, x[:wantLen], nil); d > 1e-6 {
					t.Fatalf("n=%d: Denoise(x, 0) differs from x by %.3g at %d", n, d, at)
				}
			}
		})
	}
}

// TestDenoiseMatchesInverse checks Denoise against spectral subtraction
// spelled out with STFT and Inverse, and that a large bias silences the
// signal.
func TestDenoiseMatchesInverse(t *testing.T) {
	a, err := NewAnalyzer(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	x := testSignal(9000, 11)
	spec, err := a.STFT(x)
	if err != nil {
		t.Fatal(err)
	}
	bias := make([]float32, spec.Bins)
	for k := range bias {
		bias[k] = float32(2 + math.Sin(float64(k)))
	}
	const strength = 0.7
	for k := range spec.Bins {
		for tt := range spec.Frames {
			i := k*spec.Frames + tt
			spec.Magnitude[i] = max(spec.Magnitude[i]-strength*bias[k], 0)
		}
	}
	want, err := a.Inverse(spec)
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.Denoise(x, bias, strength)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("Denoise returned %d samples, want %d", len(got), len(want))
	}
	if d, at := maxAbsDiff(got, want, nil); d > 1e-5*maxAbs(want) {
		t.Fatalf("Denoise differs from STFT/Inverse by %.3g at %d (max %.3g)", d, at, maxAbs(want))
	}
	if plain, _ := maxAbsDiff(got, x[:len(got)], nil); plain < 0.01 {
		t.Fatalf("denoising changed the signal by only %.3g", plain)
	}

	silent, err := a.Denoise(x, bias, 1e6)
	if err != nil {
		t.Fatal(err)
	}
	if m := maxAbs(silent); m != 0 {
		t.Fatalf("Denoise with a huge bias left max |y| = %v, want 0", m)
	}
}

// TestInverseDCAndNyquist checks the closed form of a spectrum with only
// DC and Nyquist bins: the reference's inverse basis has no sine rows there,
// so every frame's inverse DFT is (m0·cos φ0 ± m1·cos φ1)/NFFT, alternating
// in sign with the sample index (the hop is even). Overlap-adding the windowed
// frames and dividing by the window sum-square envelope scales sample i by
// Σ_t w[j_t] / Σ_t w[j_t]² over the frames t covering it.
func TestInverseDCAndNyquist(t *testing.T) {
	a, err := NewAnalyzer(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	const frames, bins, nfft, hop = 9, 513, 1024, 256
	const m0, p0, m1, p1 = 3.0, 1.0, 2.0, -2.5
	s := Spectrum{Bins: bins, Frames: frames, Magnitude: make([]float32, bins*frames), Phase: make([]float32, bins*frames)}
	for tt := range frames {
		s.Magnitude[tt], s.Phase[tt] = m0, p0
		s.Magnitude[(bins-1)*frames+tt], s.Phase[(bins-1)*frames+tt] = m1, p1
	}
	y, err := a.Inverse(s)
	if err != nil {
		t.Fatal(err)
	}
	if len(y) != (frames-1)*hop {
		t.Fatalf("Inverse returned %d samples, want %d", len(y), (frames-1)*hop)
	}
	w := a.Window()
	dc := float64(float32(m0)) * math.Cos(float64(float32(p0)))
	ny := float64(float32(m1)) * math.Cos(float64(float32(p1)))
	for i, v := range y {
		var sw, sw2 float64
		for tt := range frames {
			if j := i + nfft/2 - tt*hop; j >= 0 && j < nfft {
				sw += float64(w[j])
				sw2 += float64(w[j]) * float64(w[j])
			}
		}
		want := (dc + ny*float64(1-2*(i%2))) / nfft * sw / sw2
		if math.Abs(float64(v)-want) > 1e-6*math.Abs(want) {
			t.Fatalf("y[%d] = %v, want %v", i, v, want)
		}
	}
}

// TestInverseWithoutOverlap uses hop = NFFT, where the window sum-square
// envelope is just Hann², very small near the frame edges and 0 at the frame
// start: the reference divides wherever the envelope exceeds float32 tiny,
// which reconstructs every sample except those under a zero of the window.
func TestInverseWithoutOverlap(t *testing.T) {
	c := Config{SampleRate: 8000, NFFT: 64, Hop: 64, Win: 64, NMels: 8, FMax: 4000}
	a, err := NewAnalyzer(c)
	if err != nil {
		t.Fatal(err)
	}
	x := testSignal(1000, 4)
	y, err := a.Denoise(x, make([]float32, c.Bins()), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(y) != 1000/64*64 {
		t.Fatalf("Denoise returned %d samples, want %d", len(y), 1000/64*64)
	}
	for i, v := range y {
		want := x[i]
		if (i+c.NFFT/2)%c.Hop == 0 { // the window's first sample is 0
			want = 0
		}
		if d := math.Abs(float64(v - want)); d > 1e-5 {
			t.Fatalf("y[%d] = %v, want %v", i, v, want)
		}
	}
}

func TestSignalErrors(t *testing.T) {
	a, err := NewAnalyzer(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	bias := make([]float32, a.Config().Bins())
	withBad := func(n, i int, v float32) []float32 {
		x := testSignal(n, 1)
		x[i] = v
		return x
	}
	for _, tc := range []struct {
		name    string
		x       []float32
		tooShrt bool
		want    string
	}{
		{"empty", nil, true, "got 0 samples"},
		{"NFFT/2", make([]float32, 512), true, "got 512 samples, need more than NFFT/2 = 512"},
		{"NaN", withBad(2000, 1234, float32(math.NaN())), false, "sample 1234 is NaN"},
		{"Inf", withBad(2000, 0, float32(math.Inf(-1))), false, "sample 0 is -Inf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, melErr := a.Mel(tc.x)
			_, stftErr := a.STFT(tc.x)
			_, denErr := a.Denoise(tc.x, bias, 0.1)
			for _, err := range []error{melErr, stftErr, denErr} {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %v, want one containing %q", err, tc.want)
				}
				if errors.Is(err, ErrTooShort) != tc.tooShrt {
					t.Fatalf("errors.Is(%v, ErrTooShort) = %v, want %v", err, !tc.tooShrt, tc.tooShrt)
				}
			}
		})
	}
	// One sample more than NFFT/2 is enough.
	if _, err := a.Mel(make([]float32, 513)); err != nil {
		t.Fatalf("Mel of 513 samples: %v", err)
	}
}

func TestDenoiseErrors(t *testing.T) {
	a, err := NewAnalyzer(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	x := testSignal(4000, 2)
	bias := func(n, bad int) []float32 {
		b := make([]float32, n)
		if bad >= 0 {
			b[bad] = float32(math.NaN())
		}
		return b
	}
	for _, tc := range []struct {
		name     string
		bias     []float32
		strength float32
		want     string
	}{
		{"short bias", bias(512, -1), 0.1, "bias has 512 entries, want NFFT/2+1 = 513"},
		{"NaN bias", bias(513, 7), 0.1, "bias entry 7 is NaN"},
		{"NaN strength", bias(513, -1), float32(math.NaN()), "strength NaN"},
		{"Inf strength", bias(513, -1), float32(math.Inf(1)), "strength +Inf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.Denoise(x, tc.bias, tc.strength)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestInverseErrors(t *testing.T) {
	a, err := NewAnalyzer(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	good := func() Spectrum {
		s, err := a.STFT(testSignal(2000, 5))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	mod := func(f func(*Spectrum)) Spectrum {
		s := good()
		f(&s)
		return s
	}
	for _, tc := range []struct {
		name string
		s    Spectrum
		want string
	}{
		{"zero frames", Spectrum{Bins: 513}, "not positive"},
		{"short phase", mod(func(s *Spectrum) { s.Phase = s.Phase[:len(s.Phase)-1] }), "phase: shape [513 × 8] does not match 4103 values"},
		{"wrong bins", func() Spectrum {
			b, err := NewAnalyzer(Config{SampleRate: 16000, NFFT: 512, Hop: 128, Win: 512, NMels: 80, FMax: 7600})
			if err != nil {
				t.Fatal(err)
			}
			s, err := b.STFT(testSignal(2000, 5))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}(), "257 bins, want NFFT/2+1 = 513"},
		{"NaN magnitude", mod(func(s *Spectrum) { s.Magnitude[3*s.Frames+2] = float32(math.NaN()) }), "magnitude NaN at bin 3, frame 2"},
		{"Inf phase", mod(func(s *Spectrum) { s.Phase[5] = float32(math.Inf(1)) }), "phase +Inf at bin 0, frame 5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.Inverse(tc.s)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	// A single frame inverts to an empty signal, as (Frames-1)·Hop says.
	y, err := a.Inverse(Spectrum{Bins: 513, Frames: 1, Magnitude: make([]float32, 513), Phase: make([]float32, 513)})
	if err != nil || len(y) != 0 {
		t.Fatalf("single frame: %d samples, error %v; want 0 samples", len(y), err)
	}
}

func TestSpectrogramValidate(t *testing.T) {
	data := func(n, bad int, v float32) []float32 {
		d := make([]float32, n)
		if bad >= 0 {
			d[bad] = v
		}
		return d
	}
	for _, tc := range []struct {
		name string
		s    Spectrogram
		want string // "" means valid
	}{
		{"valid", Spectrogram{NMels: 2, Frames: 3, Data: data(6, -1, 0)}, ""},
		{"zero frames", Spectrogram{NMels: 80}, "shape [80 × 0] is not positive"},
		{"negative mels", Spectrogram{NMels: -1, Frames: 3, Data: data(3, -1, 0)}, "not positive"},
		{"length mismatch", Spectrogram{NMels: 2, Frames: 3, Data: data(5, -1, 0)}, "does not match 5 values"},
		{"overflow", Spectrogram{NMels: math.MaxInt / 2, Frames: 3, Data: data(3, -1, 0)}, "does not match"},
		{"NaN", Spectrogram{NMels: 2, Frames: 3, Data: data(6, 4, float32(math.NaN()))}, "NaN at mel 1, frame 1"},
		{"Inf", Spectrogram{NMels: 2, Frames: 3, Data: data(6, 2, float32(math.Inf(-1)))}, "-Inf at mel 0, frame 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.s.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestSpectrogramAt(t *testing.T) {
	s := Spectrogram{NMels: 2, Frames: 3, Data: []float32{0, 1, 2, 3, 4, 5}}
	if got := s.At(1, 2); got != 5 {
		t.Errorf("At(1, 2) = %v, want 5", got)
	}
	if got := s.At(0, 1); got != 1 {
		t.Errorf("At(0, 1) = %v, want 1", got)
	}
	for _, idx := range [][2]int{{2, 0}, {0, 3}, {-1, 0}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("At(%d, %d) did not panic", idx[0], idx[1])
				}
			}()
			s.At(idx[0], idx[1])
		}()
	}
}

// TestConcurrentUse runs one Analyzer from several goroutines; under -race
// it also checks that the Analyzer is not written to.
func TestConcurrentUse(t *testing.T) {
	a, err := NewAnalyzer(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	x := testSignal(6000, 9)
	want, err := a.Mel(x)
	if err != nil {
		t.Fatal(err)
	}
	bias := make([]float32, 513)
	for k := range bias {
		bias[k] = 0.01
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for g := range errs {
		wg.Go(func() {
			got, err := a.Mel(x)
			if err == nil && !slices.Equal(got.Data, want.Data) {
				err = errors.New("concurrent Mel differs from sequential Mel")
			}
			if err == nil {
				_, err = a.Denoise(x, bias, 0.1)
			}
			errs[g] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkMel reports the cost of the default front end per second of
// 22.05 kHz audio.
func BenchmarkMel(b *testing.B) {
	a, err := NewAnalyzer(DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	x := testSignal(22050, 1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Mel(x); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/s-audio")
}

// BenchmarkDenoise reports the cost of spectral subtraction per second of
// 22.05 kHz audio.
func BenchmarkDenoise(b *testing.B) {
	a, err := NewAnalyzer(DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	x := testSignal(22050, 1)
	bias := make([]float32, 513)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Denoise(x, bias, 0.1); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/s-audio")
}
