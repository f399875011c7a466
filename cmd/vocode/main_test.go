package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/glowvoc/glowvoc/audio"
	"github.com/glowvoc/glowvoc/internal/npy"
	"github.com/glowvoc/glowvoc/vocoder"
)

// Reference fixtures (testdata/reference/README.md).
var (
	refDir      = filepath.Join("..", "..", "testdata", "reference")
	tinyDir     = filepath.Join(refDir, "waveglow", "tiny")
	tinyWeights = filepath.Join(tinyDir, "weights.npz")
	tinyConfig  = filepath.Join(tinyDir, "config.json")
	helloWAV    = filepath.Join(refDir, "mel", "espeak_us_hello.wav") // 24047 samples, 94 frames
)

// helloSamples and helloFrames describe helloWAV.
const (
	helloSamples = 24047
	helloFrames  = 94
)

// result is the outcome of one vocode invocation.
type result struct {
	code           int
	stdout, stderr string
}

// vocode runs the command line args in-process.
func vocode(t *testing.T, args ...string) result {
	t.Helper()
	return vocodeCtx(t, context.Background(), args...)
}

func vocodeCtx(t *testing.T, ctx context.Context, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// mustSucceed fails the test unless r has exit status 0.
func mustSucceed(t *testing.T, r result) {
	t.Helper()
	if r.code != exitOK {
		t.Fatalf("exit status %d, stderr:\n%s", r.code, r.stderr)
	}
}

// checkExit fails the test unless r has exit status code and its stderr
// mentions every one of msg.
func checkExit(t *testing.T, r result, code int, msg []string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit status %d, want %d; stderr:\n%s", r.code, code, r.stderr)
	}
	for _, s := range msg {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("stderr does not mention %q:\n%s", s, r.stderr)
		}
	}
}

func readNPZ(t *testing.T, path string) map[string]npy.Array {
	t.Helper()
	a, err := npy.ReadNPZ(path)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func readNPY(t *testing.T, path string) npy.Array {
	t.Helper()
	a, err := npy.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func writeNPY(t *testing.T, path string, a npy.Array) string {
	t.Helper()
	if err := npy.WriteFile(path, a); err != nil {
		t.Fatal(err)
	}
	return path
}

func readWAV(t *testing.T, path string) audio.Clip {
	t.Helper()
	c, err := audio.DecodeFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// inferCase writes the mel and z of the tiny model's σ = 0.6 inference
// fixture to dir, with (batch) or without the leading batch dimension, and
// returns their paths and the expected audio.
func inferCase(t *testing.T, dir string, batch bool) (mel, z string, want []float32) {
	t.Helper()
	c := readNPZ(t, filepath.Join(tinyDir, "infer_sigma0.6.npz"))
	m, zz := c["mel"], c["z"]
	if !batch {
		m.Shape, zz.Shape = m.Shape[1:], zz.Shape[1:]
	}
	return writeNPY(t, filepath.Join(dir, "mel.npy"), m), writeNPY(t, filepath.Join(dir, "z.npy"), zz), c["audio"].Data
}

// checkClose fails unless |got−want| ≤ rel·max|want| + abs everywhere.
func checkClose(t *testing.T, got, want []float32, rel, abs float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d values, want %d", len(got), len(want))
	}
	var peak float64
	for _, v := range want {
		peak = math.Max(peak, math.Abs(float64(v)))
	}
	tol := rel*peak + abs
	for i := range want {
		if d := math.Abs(float64(got[i]) - float64(want[i])); !(d <= tol) {
			t.Fatalf("value %d: got %v, want %v (|diff| %g > %g)", i, got[i], want[i], d, tol)
		}
	}
}

func TestSynthNoiseMatchesReference(t *testing.T) {
	t.Parallel()
	for _, batch := range []bool{true, false} {
		name := map[bool]string{true: "batch", false: "unbatched"}[batch]
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			mel, z, want := inferCase(t, dir, batch)
			out := filepath.Join(dir, "out.npy")
			// Flags after the positional argument, --sigma ignored with --noise.
			mustSucceed(t, vocode(t, "synth", "--model", tinyWeights, "--config", tinyConfig, mel, "--noise", z, "--sigma", "0.3", "-o", out))
			got := readNPY(t, out)
			if !slices.Equal(got.Shape, []int{len(want)}) {
				t.Fatalf("output shape %v, want [%d]", got.Shape, len(want))
			}
			checkClose(t, got.Data, want, 1e-5, 1e-6)
		})
	}
}

func TestSynthWAV(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mel, z, want := inferCase(t, dir, true)
	out := filepath.Join(dir, "out.wav")
	mustSucceed(t, vocode(t, "synth", "--model", tinyWeights, "--noise", z, "-o", out, mel))
	c := readWAV(t, out)
	if c.SampleRate != 22050 || len(c.Samples) != len(want) {
		t.Fatalf("got %d samples at %d Hz, want %d at 22050 Hz", len(c.Samples), c.SampleRate, len(want))
	}
	// PCM16 quantises and clips to [-1, 32767/32768].
	for i, w := range want {
		w = min(max(w, -1), 32767.0/32768)
		if d := math.Abs(float64(c.Samples[i] - w)); d > 1.0/32768 {
			t.Fatalf("sample %d: got %v, want %v", i, c.Samples[i], w)
		}
	}
}

func TestMelMatchesReference(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := filepath.Join(dir, "hello.npy")
	mustSucceed(t, vocode(t, "mel", helloWAV, "-o", out))
	got := readNPY(t, out)
	want := readNPZ(t, filepath.Join(refDir, "mel", "espeak_us_hello.npz"))["mel"]
	if !slices.Equal(got.Shape, want.Shape) {
		t.Fatalf("shape %v, want %v", got.Shape, want.Shape)
	}
	floor := float32(math.Log(1e-3))
	for i, w := range want.Data {
		if w > floor && math.Abs(float64(got.Data[i]-w)) > 1e-3 {
			t.Fatalf("mel value %d: got %v, want %v", i, got.Data[i], w)
		}
	}
}

func TestMel16k(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := filepath.Join(dir, "out.npy")
	mustSucceed(t, vocode(t, "mel", "--sample-rate", "16000", "--n-fft", "512", "--hop", "128", "--win", "512", "--fmax", "7600",
		"-o", out, filepath.Join(refDir, "mel", "espeak_us_16k.wav")))
	got := readNPY(t, out)
	want := readNPZ(t, filepath.Join(refDir, "mel", "espeak_us_16k.npz"))["mel"]
	if !slices.Equal(got.Shape, want.Shape) {
		t.Fatalf("shape %v, want %v", got.Shape, want.Shape)
	}
}

func TestMelOutDir(t *testing.T) {
	t.Parallel()
	in := t.TempDir()
	// The same audio as a WAV and as a [1, N] .npy array of samples.
	wav := filepath.Join(in, "a.wav")
	data, err := os.ReadFile(helloWAV)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(wav, data, 0o644); err != nil {
		t.Fatal(err)
	}
	clip := readWAV(t, helloWAV)
	arr := writeNPY(t, filepath.Join(in, "b.npy"), npy.Array{Shape: []int{1, len(clip.Samples)}, Data: clip.Samples})

	out := filepath.Join(t.TempDir(), "mels") // created by vocode
	mustSucceed(t, vocode(t, "mel", "--out-dir", out, wav, arr))
	a, b := readNPY(t, filepath.Join(out, "a.npy")), readNPY(t, filepath.Join(out, "b.npy"))
	if !slices.Equal(a.Shape, []int{80, helloFrames}) || !slices.Equal(a.Data, b.Data) {
		t.Fatalf("WAV and .npy input give different mels (shapes %v, %v)", a.Shape, b.Shape)
	}
}

func TestConvertInfoRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st := filepath.Join(dir, "tiny.safetensors")
	mustSucceed(t, vocode(t, "convert", tinyWeights, "--config", tinyConfig, "-o", st))

	r := vocode(t, "info", st)
	mustSucceed(t, r)
	var got vocoder.Config
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("info output is not a config: %v\n%s", err, r.stdout)
	}
	want, err := vocoder.ReadConfigFile(tinyConfig)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("info config\n%+v\nwant\n%+v", got, want)
	}
	var extra struct {
		Parameters int `json:"parameters"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &extra); err != nil {
		t.Fatal(err)
	}
	params := 0
	for _, a := range readNPZ(t, tinyWeights) {
		params += len(a.Data)
	}
	if extra.Parameters != params {
		t.Errorf("parameters %d, want %d", extra.Parameters, params)
	}

	// The converted model synthesises exactly what the .npz does.
	mel, z, _ := inferCase(t, dir, true)
	fromNPZ, fromST := filepath.Join(dir, "npz.npy"), filepath.Join(dir, "st.npy")
	mustSucceed(t, vocode(t, "synth", "--model", tinyWeights, "--noise", z, "-o", fromNPZ, mel))
	mustSucceed(t, vocode(t, "synth", "--model", st, "--noise", z, "-o", fromST, mel))
	a, b := readNPY(t, fromNPZ), readNPY(t, fromST)
	if !slices.Equal(a.Data, b.Data) {
		t.Error("synthesis from the converted model differs from the .npz")
	}
}

func TestConvertMelFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		flags []string
		want  func(c *vocoder.Config)
	}{
		{"defaults without config", nil, func(*vocoder.Config) {}},
		{"override rate and fmax", []string{"--sample-rate", "16000", "--fmax", "7600"}, func(c *vocoder.Config) {
			c.Mel.SampleRate, c.Mel.FMax = 16000, 7600
		}},
		{"override window", []string{"--win", "800", "--fmin", "50"}, func(c *vocoder.Config) {
			c.Mel.Win, c.Mel.FMin = 800, 50
		}},
	}
	base, err := vocoder.ReadConfigFile(tinyConfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "m.safetensors")
			mustSucceed(t, vocode(t, append([]string{"convert", "-o", out, tinyWeights}, tt.flags...)...))
			r := vocode(t, "info", out)
			mustSucceed(t, r)
			var got vocoder.Config
			if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
				t.Fatal(err)
			}
			want := base
			tt.want(&want)
			if got != want {
				t.Errorf("config\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestScore(t *testing.T) {
	t.Parallel()
	for _, frames := range []bool{true, false} {
		t.Run(map[bool]string{true: "frames", false: "no frames"}[frames], func(t *testing.T) {
			args := []string{"score", "--model", tinyWeights, helloWAV}
			if !frames {
				args = append(args, "--frames=false")
			}
			r := vocode(t, args...)
			mustSucceed(t, r)
			var got map[string]any
			if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, r.stdout)
			}
			for _, k := range []string{"loss", "log_s_total", "log_det_w_total", "nll_nats_per_sample", "sigma", "samples", "frames"} {
				if v, ok := got[k].(float64); !ok || math.IsNaN(v) {
					t.Errorf("field %q = %v, want a number", k, got[k])
				}
			}
			if got["frames"] != float64(helloFrames) || got["samples"] != float64(helloSamples/8*8) || got["sigma"] != 1.0 {
				t.Errorf("frames %v, samples %v, sigma %v; want %d, %d, 1", got["frames"], got["samples"], got["sigma"], helloFrames, helloSamples/8*8)
			}
			nll, ok := got["frame_nll"].([]any)
			switch {
			case frames && (!ok || len(nll) != (helloSamples/8*8+255)/256):
				t.Errorf("frame_nll = %v, want %d values", got["frame_nll"], (helloSamples/8*8+255)/256)
			case !frames && got["frame_nll"] != nil:
				t.Errorf("frame_nll present with --frames=false")
			}
		})
	}
}

func TestSynthSeed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mel, _, _ := inferCase(t, dir, true)
	synth := func(name string, flags ...string) []byte {
		t.Helper()
		out := filepath.Join(dir, name+".npy")
		mustSucceed(t, vocode(t, append([]string{"synth", "--model", tinyWeights, "-o", out, mel}, flags...)...))
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	one := synth("one", "--seed", "1")
	def := synth("default")
	two := synth("two", "--seed", "2")
	if !bytes.Equal(one, def) {
		t.Errorf("seed 1 and the default seed %d give different audio", defaultSeed)
	}
	if bytes.Equal(one, two) {
		t.Error("different seeds give the same audio")
	}
	synth("zero", "--sigma", "0", "--seed", "9") // σ = 0: the seed does not matter
	sigma0 := readNPZ(t, filepath.Join(tinyDir, "infer_sigma0.npz"))["audio"]
	checkClose(t, readNPY(t, filepath.Join(dir, "zero.npy")).Data, sigma0.Data, 1e-5, 1e-6)
}

func TestDenoiseMatchesReference(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := readNPZ(t, filepath.Join(tinyDir, "denoiser.npz"))
	in := writeNPY(t, filepath.Join(dir, "in.npy"), c["audio"])
	out := filepath.Join(dir, "out.npy")
	mustSucceed(t, vocode(t, "denoise", "--model", tinyWeights, "--strength", "0.1", "-o", out, in))
	checkClose(t, readNPY(t, out).Data, c["denoised"].Data, 1e-5, 0)
}

func TestOutputLengths(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want int // samples in the output WAV
	}{
		{"denoise", []string{"denoise", "--model", tinyWeights}, helloSamples / 256 * 256},
		{"resynth", []string{"resynth", "--model", tinyWeights, "--seed", "3"}, helloFrames * 256},
		{"resynth denoised", []string{"resynth", "--model", tinyWeights, "--denoise", "0.05"}, helloFrames * 256},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.wav")
			mustSucceed(t, vocode(t, append(tt.args, "-o", out, helloWAV)...))
			c := readWAV(t, out)
			if len(c.Samples) != tt.want || c.SampleRate != 22050 {
				t.Errorf("got %d samples at %d Hz, want %d at 22050 Hz", len(c.Samples), c.SampleRate, tt.want)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	in := t.TempDir()
	mel, z, _ := inferCase(t, in, true)
	m := readNPY(t, mel)
	mel8 := writeNPY(t, filepath.Join(in, "mel8.npy"), npy.Array{Shape: []int{8, helloFrames}, Data: m.Data[:8*helloFrames]})
	nan := slices.Clone(m.Data)
	nan[5*helloFrames+7] = float32(math.NaN())
	melNaN := writeNPY(t, filepath.Join(in, "nan.npy"), npy.Array{Shape: []int{80, helloFrames}, Data: nan})
	mel2 := writeNPY(t, filepath.Join(in, "mel2.npy"), npy.Array{Shape: []int{2, 40, helloFrames}, Data: m.Data})
	zShort := writeNPY(t, filepath.Join(in, "zshort.npy"), npy.Array{Shape: []int{8, 100}, Data: make([]float32, 800)})
	z4 := writeNPY(t, filepath.Join(in, "z4.npy"), npy.Array{Shape: []int{4, 6016}, Data: make([]float32, 4*6016)})
	notWAV := filepath.Join(in, "text.wav")
	if err := os.WriteFile(notWAV, []byte("this is not a WAV file, just some text\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(in, "missing.npy")
	wav16k := filepath.Join(refDir, "mel", "espeak_us_16k.wav")
	short := filepath.Join(refDir, "mel", "short_300.wav")

	tests := []struct {
		name string
		args []string // OUT is replaced by an output path, DIR by an output directory
		code int
		msg  []string // substrings of stderr
	}{
		{"no arguments", nil, exitUsage, []string{"usage"}},
		{"unknown command", []string{"vocalize"}, exitUsage, []string{`unknown command "vocalize"`}},
		{"bad flag", []string{"synth", "--model", tinyWeights, "--bogus", "-o", "OUT.wav", mel}, exitUsage, []string{"vocode: synth:", "-bogus"}},
		{"bad flag value", []string{"synth", "--model", tinyWeights, "--seed", "x", "-o", "OUT.wav", mel}, exitUsage, []string{"-seed"}},
		{"--config without --model", []string{"synth", "--config", tinyConfig, "-o", "OUT.wav", mel}, exitUsage, []string{"--config needs --model"}},
		{"negative sigma", []string{"synth", "--model", tinyWeights, "--sigma", "-1", "-o", "OUT.wav", mel}, exitUsage, []string{"--sigma -1"}},
		{"negative strength", []string{"denoise", "--model", tinyWeights, "--strength", "-0.1", "-o", "OUT.wav", helloWAV}, exitUsage, []string{"--strength"}},
		{"-o and --out-dir", []string{"synth", "--model", tinyWeights, "-o", "OUT.wav", "--out-dir", "DIR", mel}, exitUsage, []string{"mutually exclusive"}},
		{"no output", []string{"synth", "--model", tinyWeights, mel}, exitUsage, []string{"-o"}},
		{"no input", []string{"synth", "--model", tinyWeights, "-o", "OUT.wav"}, exitUsage, []string{"no input"}},
		{"-o with two inputs", []string{"synth", "--model", tinyWeights, "-o", "OUT.wav", mel, mel8}, exitUsage, []string{"--out-dir"}},
		{"bad output extension", []string{"synth", "--model", tinyWeights, "-o", "OUT.mp3", mel}, exitUsage, []string{".mp3", "unsupported extension"}},
		{"--format contradicts -o", []string{"synth", "--model", tinyWeights, "--format", "npy", "-o", "OUT.wav", mel}, exitUsage, []string{"--format npy"}},
		{"unknown --format", []string{"synth", "--model", tinyWeights, "--format", "mp3", "--out-dir", "DIR", mel}, exitUsage, []string{`"mp3"`}},
		{"mel output not npy", []string{"mel", "-o", "OUT.wav", helloWAV}, exitUsage, []string{"want .npy"}},
		{"invalid mel config", []string{"mel", "--fmax", "20000", "-o", "OUT.npy", helloWAV}, exitUsage, []string{"mel front end"}},
		{"convert output extension", []string{"convert", "-o", "OUT.npz", tinyWeights}, exitUsage, []string{".safetensors"}},
		{"score two inputs", []string{"score", "--model", tinyWeights, helloWAV, helloWAV}, exitUsage, []string{"exactly one"}},
		{"score zero sigma", []string{"score", "--model", tinyWeights, "--sigma", "0", helloWAV}, exitUsage, []string{"--sigma 0"}},
		{"info without model", []string{"info"}, exitUsage, []string{"exactly one"}},

		{"missing model", []string{"synth", "--model", filepath.Join(in, "nope.npz"), "-o", "OUT.wav", mel}, exitError, []string{"nope.npz"}},
		{"model with wrong extension", []string{"info", mel}, exitError, []string{".npy"}},
		{"missing config", []string{"info", "--config", filepath.Join(in, "nope.json"), tinyWeights}, exitError, []string{"nope.json"}},
		{"missing mel", []string{"synth", "--model", tinyWeights, "-o", "OUT.wav", missing}, exitError, []string{"missing.npy", "no such file"}},
		{"wrong n_mels", []string{"synth", "--model", tinyWeights, "-o", "OUT.wav", mel8}, exitError, []string{"mel8.npy", "8 channels", "80"}},
		{"NaN in mel", []string{"synth", "--model", tinyWeights, "-o", "OUT.wav", melNaN}, exitError, []string{"nan.npy", "NaN", "mel 5, frame 7"}},
		{"bad mel shape", []string{"synth", "--model", tinyWeights, "-o", "OUT.wav", mel2}, exitError, []string{"[2, 40, 94]"}},
		{"noise of wrong length", []string{"synth", "--model", tinyWeights, "--noise", zShort, "-o", "OUT.wav", mel}, exitError, []string{"noise has 800 values"}},
		{"noise of wrong group", []string{"synth", "--model", tinyWeights, "--noise", z4, "-o", "OUT.wav", mel}, exitError, []string{"[4, 6016]", "n_group is 8"}},
		{"non-WAV input", []string{"denoise", "--model", tinyWeights, "-o", "OUT.wav", notWAV}, exitError, []string{"text.wav", "malformed WAV"}},
		{"non-WAV score", []string{"score", "--model", tinyWeights, notWAV}, exitError, []string{"malformed WAV"}},
		{"unsupported input", []string{"resynth", "--model", tinyWeights, "-o", "OUT.wav", mel + ".flac"}, exitError, []string{".flac"}},
		{"audio npy of wrong shape", []string{"denoise", "--model", tinyWeights, "-o", "OUT.wav", z}, exitError, []string{"[1, 8, 3008]"}},
		{"resynth wrong rate", []string{"resynth", "--model", tinyWeights, "-o", "OUT.wav", wav16k}, exitError, []string{"16000 Hz", "22050 Hz"}},
		{"mel wrong rate", []string{"mel", "-o", "OUT.npy", wav16k}, exitError, []string{"16000 Hz", "--sample-rate 22050 Hz"}},
		{"mel too short", []string{"mel", "-o", "OUT.npy", short}, exitError, []string{"short_300.wav", "too short"}},
		{"convert bad mel override", []string{"convert", "--hop", "100", "-o", "OUT.safetensors", tinyWeights}, exitError, []string{"hop 100"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := t.TempDir()
			args := make([]string, len(tt.args))
			for i, a := range tt.args {
				a = strings.Replace(a, "OUT", filepath.Join(out, "out"), 1)
				args[i] = strings.Replace(a, "DIR", filepath.Join(out, "dir"), 1)
			}
			r := vocode(t, args...)
			checkExit(t, r, tt.code, tt.msg)
			if r.stdout != "" {
				t.Errorf("unexpected stdout:\n%s", r.stdout)
			}
			entries, err := os.ReadDir(out)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				t.Errorf("left behind %s", e.Name())
			}
		})
	}
}

func TestOutDirPartialFailure(t *testing.T) {
	t.Parallel()
	in := t.TempDir()
	mel, _, _ := inferCase(t, in, true)
	m := readNPY(t, mel)
	m.Data[0] = float32(math.Inf(1))
	bad := writeNPY(t, filepath.Join(in, "bad.npy"), m)
	out := filepath.Join(t.TempDir(), "out")
	r := vocode(t, "synth", "--model", tinyWeights, "--out-dir", out, bad, mel)
	if r.code != exitError {
		t.Fatalf("exit status %d, want %d; stderr:\n%s", r.code, exitError, r.stderr)
	}
	for _, s := range []string{"bad.npy", "+Inf", "1 of 2 inputs failed"} {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("stderr does not mention %q:\n%s", s, r.stderr)
		}
	}
	if c := readWAV(t, filepath.Join(out, "mel.wav")); len(c.Samples) != helloFrames*256 {
		t.Errorf("good output has %d samples, want %d", len(c.Samples), helloFrames*256)
	}
	if _, err := os.Stat(filepath.Join(out, "bad.wav")); !os.IsNotExist(err) {
		t.Errorf("output of the failed input: %v", err)
	}
}

func TestOutDirNames(t *testing.T) {
	t.Parallel()
	a, b := t.TempDir(), t.TempDir()
	melA, _, _ := inferCase(t, a, true)
	melB, _, _ := inferCase(t, b, true)
	tests := []struct {
		name  string
		args  []string
		code  int
		files []string // expected in the output directory
	}{
		{"npy format", []string{"resynth", "--format", "npy", helloWAV}, exitOK, []string{"espeak_us_hello.npy"}},
		{"name clash", []string{"synth", melA, melB}, exitUsage, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			r := vocode(t, append(tt.args, "--model", tinyWeights, "--out-dir", dir)...)
			if r.code != tt.code {
				t.Fatalf("exit status %d, want %d; stderr:\n%s", r.code, tt.code, r.stderr)
			}
			var got []string
			entries, _ := os.ReadDir(dir) // missing if nothing was written
			for _, e := range entries {
				got = append(got, e.Name())
			}
			if !slices.Equal(got, tt.files) {
				t.Errorf("output directory holds %v, want %v", got, tt.files)
			}
		})
	}
	t.Run("overwrite input", func(t *testing.T) {
		r := vocode(t, "mel", "--out-dir", a, melA)
		if r.code != exitUsage || !strings.Contains(r.stderr, "overwrite its input") {
			t.Errorf("exit status %d, stderr:\n%s", r.code, r.stderr)
		}
	})
}

func TestCancel(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mel, _, _ := inferCase(t, dir, true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := filepath.Join(dir, "out.wav")
	r := vocodeCtx(t, ctx, "synth", "--model", tinyWeights, "-o", out, mel)
	if r.code != exitError || !strings.Contains(r.stderr, "interrupted") {
		t.Errorf("exit status %d, stderr:\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("output of a cancelled run: %v", err)
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		code int
		want string // substring of stdout
	}{
		{[]string{"help"}, exitOK, "Commands:"},
		{[]string{"--help"}, exitOK, "Commands:"},
		{[]string{"help", "synth"}, exitOK, "usage: vocode synth"},
		{[]string{"synth", "-h"}, exitOK, "-noise"},
		{[]string{"convert", "--help"}, exitOK, "-sample-rate"},
		{[]string{"help", "mel"}, exitOK, "(default 22050)"},
		{[]string{"help", "nope"}, exitUsage, ""},
		{[]string{"help", "mel", "synth"}, exitUsage, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := vocode(t, tt.args...)
			if r.code != tt.code || !strings.Contains(r.stdout, tt.want) {
				t.Errorf("exit status %d (want %d), stdout:\n%s\nstderr:\n%s", r.code, tt.code, r.stdout, r.stderr)
			}
		})
	}
	// Every command documents itself.
	for _, c := range commands() {
		if r := vocode(t, "help", c.name); r.code != exitOK || !strings.Contains(r.stdout, "usage: vocode "+c.name) {
			t.Errorf("help %s: exit status %d, stdout:\n%s", c.name, r.code, r.stdout)
		}
	}
}
