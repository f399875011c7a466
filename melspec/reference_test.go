package melspec

import (
	"errors"
	"fmt"
	"math"
	"path"
	"testing"
)

// TestReferenceWindowAndFilterbank compares the window (exactly) and the
// filterbank (abs ≤ 1e-9) with every parameter set of mel/cases.json.
func TestReferenceWindowAndFilterbank(t *testing.T) {
	seen := make(map[string]bool)
	for _, c := range readCases(t) {
		if seen[c.Filterbank] {
			continue
		}
		seen[c.Filterbank] = true
		t.Run(c.Filterbank, func(t *testing.T) {
			a, err := NewAnalyzer(c.config())
			if err != nil {
				t.Fatal(err)
			}
			wantWin := readNPY(t, path.Join("mel", c.window()))
			gotWin := a.Window()
			if len(gotWin) != len(wantWin.Data) {
				t.Fatalf("window has %d values, want %d", len(gotWin), len(wantWin.Data))
			}
			for i, w := range wantWin.Data {
				if gotWin[i] != w {
					t.Errorf("window[%d] = %v, want %v", i, gotWin[i], w)
				}
			}
			wantFB := readNPY(t, path.Join("mel", c.Filterbank))
			gotFB := a.Filterbank()
			if want := []int{c.Params.NMelChannels, c.Params.FilterLength/2 + 1}; fmt.Sprint(wantFB.Shape) != fmt.Sprint(want) {
				t.Fatalf("fixture shape %v, want %v", wantFB.Shape, want)
			}
			if len(gotFB) != len(wantFB.Data) {
				t.Fatalf("filterbank has %d values, want %d", len(gotFB), len(wantFB.Data))
			}
			d, at := maxAbsDiff(gotFB, wantFB.Data, nil)
			differ := 0
			for i := range gotFB {
				if gotFB[i] != wantFB.Data[i] {
					differ++
				}
			}
			t.Logf("filterbank: max abs error %.3g at (%d, %d), %d differing entries", d, at/wantFB.Shape[1], at%wantFB.Shape[1], differ)
			if d > 1e-9 {
				t.Errorf("filterbank max abs error %.3g > 1e-9", d)
			}
		})
	}
}

// TestReferenceMel compares Mel and STFT magnitude with every case of
// mel/cases.json using the tolerances of README §5.
func TestReferenceMel(t *testing.T) {
	for _, c := range readCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			rate, x := readWAV(t, path.Join("mel", c.WAV))
			if rate != c.Params.SamplingRate || len(x) != c.NumSamples {
				t.Fatalf("%s: %d samples at %d Hz, want %d at %d Hz", c.WAV, len(x), rate, c.NumSamples, c.Params.SamplingRate)
			}
			a, err := NewAnalyzer(c.config())
			if err != nil {
				t.Fatal(err)
			}
			mel, melErr := a.Mel(x)
			spec, specErr := a.STFT(x)
			if c.ExpectError {
				if !errors.Is(melErr, ErrTooShort) || !errors.Is(specErr, ErrTooShort) {
					t.Fatalf("Mel error %v, STFT error %v; want ErrTooShort", melErr, specErr)
				}
				return
			}
			if melErr != nil || specErr != nil {
				t.Fatalf("Mel error %v, STFT error %v", melErr, specErr)
			}
			ref := readNPZ(t, path.Join("mel", c.NPZ))
			wantMel, wantMag := ref["mel"], ref["magnitude"]
			if fmt.Sprint(wantMel.Shape) != fmt.Sprint([]int{mel.NMels, mel.Frames}) || mel.Frames != c.Frames {
				t.Fatalf("mel shape [%d %d], want %v (%d frames)", mel.NMels, mel.Frames, wantMel.Shape, c.Frames)
			}
			if fmt.Sprint(wantMag.Shape) != fmt.Sprint([]int{spec.Bins, spec.Frames}) {
				t.Fatalf("magnitude shape [%d %d], want %v", spec.Bins, spec.Frames, wantMag.Shape)
			}
			if err := mel.Validate(); err != nil {
				t.Fatal(err)
			}

			magErr, _ := maxAbsDiff(spec.Magnitude, wantMag.Data, nil)
			magTol := 1e-5 * maxAbs(wantMag.Data)

			floor := float32(math.Log(1e-3))
			logErr, at := maxAbsDiff(mel.Data, wantMel.Data, func(i int) bool { return wantMel.Data[i] > floor })

			expGot := make([]float32, len(mel.Data))
			expWant := make([]float32, len(mel.Data))
			for i := range mel.Data {
				expGot[i] = float32(math.Exp(float64(mel.Data[i])))
				expWant[i] = float32(math.Exp(float64(wantMel.Data[i])))
			}
			expErr, _ := maxAbsDiff(expGot, expWant, nil)
			expTol := 1e-5 * maxAbs(expWant)
			allErr, _ := maxAbsDiff(mel.Data, wantMel.Data, nil)

			t.Logf("magnitude abs %.3g (%.3g of max); log-mel abs %.3g (where ref > ln 1e-3), %.3g (all); exp(mel) abs %.3g (%.3g of max)",
				magErr, relTo(magErr, wantMag.Data), logErr, allErr, expErr, relTo(expErr, expWant))
			if magErr > magTol {
				t.Errorf("magnitude max abs error %.3g > %.3g", magErr, magTol)
			}
			if logErr > 1e-3 {
				t.Errorf("log-mel max abs error %.3g at (%d, %d) > 1e-3", logErr, at/mel.Frames, at%mel.Frames)
			}
			if expErr > expTol {
				t.Errorf("exp(mel) max abs error %.3g > %.3g", expErr, expTol)
			}
		})
	}
}

// TestReferenceDenoise checks the bias spectrum and Denoise against
// waveglow/tiny/denoiser.npz.
func TestReferenceDenoise(t *testing.T) {
	ref := readNPZ(t, "waveglow/tiny/denoiser.npz")
	a, err := NewAnalyzer(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}

	biasAudio, biasSpec := ref["bias_audio"].Data, ref["bias_spec"].Data
	spec, err := a.STFT(biasAudio)
	if err != nil {
		t.Fatal(err)
	}
	if len(biasSpec) != spec.Bins {
		t.Fatalf("bias_spec has %d values, want %d", len(biasSpec), spec.Bins)
	}
	frame0 := make([]float32, spec.Bins)
	for k := range frame0 {
		frame0[k] = spec.Magnitude[k*spec.Frames]
	}
	d, _ := maxAbsDiff(frame0, biasSpec, nil)
	t.Logf("bias spectrum: max abs error %.3g (%.3g of max)", d, relTo(d, biasSpec))
	if tol := 1e-5 * maxAbs(biasSpec); d > tol {
		t.Errorf("bias spectrum max abs error %.3g > %.3g", d, tol)
	}

	audio, want := ref["audio"].Data, ref["denoised"].Data
	strength := ref["strength"].Data[0]
	if strength != 0.1 {
		t.Fatalf("strength %v, want 0.1", strength)
	}
	got, err := a.Denoise(audio, biasSpec, strength)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || len(got) != len(audio)/256*256 {
		t.Fatalf("Denoise returned %d samples, want %d", len(got), len(want))
	}
	d, at := maxAbsDiff(got, want, nil)
	t.Logf("denoised: max abs error %.3g at %d (%.3g of max)", d, at, relTo(d, want))
	if tol := 1e-5 * maxAbs(want); d > tol {
		t.Errorf("denoised max abs error %.3g > %.3g", d, tol)
	}
	// Without the bias the output is the input: the test must see a change.
	if plain, _ := maxAbsDiff(audio[:len(want)], want, nil); plain < 100*d {
		t.Errorf("denoising changed the audio by only %.3g, comparable to the error %.3g", plain, d)
	}
}
