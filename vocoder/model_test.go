package vocoder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/glowvoc/glowvoc/melspec"
)

func cloneStateDict(sd StateDict) StateDict {
	out := make(StateDict, len(sd))
	for k, t := range sd {
		out[k] = Tensor{Shape: slices.Clone(t.Shape), Data: slices.Clone(t.Data)}
	}
	return out
}

// testMel returns the reference mel of espeak_us_hello cut to frames frames.
func testMel(t *testing.T, m *Model, frames int) melspec.Spectrogram {
	t.Helper()
	c := readNPZ(t, "tiny", "infer_sigma0.6.npz")
	full := melOf(c["mel"], 0)
	if m.cfg.NMels != full.NMels {
		t.Fatalf("test mel has %d channels", full.NMels)
	}
	data := make([]float32, 0, full.NMels*frames)
	for ch := 0; ch < full.NMels; ch++ {
		data = append(data, full.Data[ch*full.Frames:ch*full.Frames+frames]...)
	}
	return melspec.Spectrogram{NMels: full.NMels, Frames: frames, Data: data}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	m := refModel(t, "tiny")
	path := filepath.Join(t.TempDir(), "tiny.safetensors")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Config() != m.Config() {
		t.Errorf("config after round trip %+v, want %+v", got.Config(), m.Config())
	}
	want := m.StateDict()
	for name, tw := range got.StateDict() {
		if !slices.Equal(tw.Data, want[name].Data) || !slices.Equal(tw.Shape, want[name].Shape) {
			t.Errorf("tensor %s changed in the round trip", name)
		}
	}
	// A different mel config in the file survives the round trip.
	cfg := m.Config()
	cfg.Mel.FMax = 7600
	m2, err := New(m.StateDict(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err = Load(path, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Config().Mel.FMax != 7600 {
		t.Errorf("mel fmax %v after round trip, want 7600", got.Config().Mel.FMax)
	}
}

// toOldLayout rewrites an inference state dict in the pre-2019 layout
// (per-layer cond_layers, separate res_layers and skip_layers).
func toOldLayout(sd StateDict, cfg Config) StateDict {
	out := cloneStateDict(sd)
	C, L := cfg.WN.Channels, cfg.WN.Layers
	nc := cfg.NMels * cfg.Group
	for k := 0; k < cfg.Flows; k++ {
		p := fmt.Sprintf("WN.%d.", k)
		cw, cb := out[p+"cond_layer.weight"], out[p+"cond_layer.bias"]
		delete(out, p+"cond_layer.weight")
		delete(out, p+"cond_layer.bias")
		for i := 0; i < L; i++ {
			out[fmt.Sprintf("%scond_layers.%d.weight", p, i)] = Tensor{Shape: []int{2 * C, nc, 1}, Data: cw.Data[2*C*i*nc : 2*C*(i+1)*nc]}
			out[fmt.Sprintf("%scond_layers.%d.bias", p, i)] = Tensor{Shape: []int{2 * C}, Data: cb.Data[2*C*i : 2*C*(i+1)]}
			rw, rb := out[fmt.Sprintf("%sres_skip_layers.%d.weight", p, i)], out[fmt.Sprintf("%sres_skip_layers.%d.bias", p, i)]
			delete(out, fmt.Sprintf("%sres_skip_layers.%d.weight", p, i))
			delete(out, fmt.Sprintf("%sres_skip_layers.%d.bias", p, i))
			if i < L-1 {
				out[fmt.Sprintf("%sres_layers.%d.weight", p, i)] = Tensor{Shape: []int{C, C, 1}, Data: rw.Data[:C*C]}
				out[fmt.Sprintf("%sres_layers.%d.bias", p, i)] = Tensor{Shape: []int{C}, Data: rb.Data[:C]}
				rw.Data, rb.Data = rw.Data[C*C:], rb.Data[C:]
			}
			out[fmt.Sprintf("%sskip_layers.%d.weight", p, i)] = Tensor{Shape: []int{C, C, 1}, Data: rw.Data}
			out[fmt.Sprintf("%sskip_layers.%d.bias", p, i)] = Tensor{Shape: []int{C}, Data: rb.Data}
		}
	}
	return out
}

func TestOldLayoutImport(t *testing.T) {
	m := refModel(t, "tiny")
	old := toOldLayout(m.StateDict(), m.cfg)
	if _, ok := old["WN.0.cond_layer.weight"]; ok {
		t.Fatal("conversion helper left the new layout in place")
	}
	got, err := FromStateDict(old, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Config() != m.Config() {
		t.Fatalf("config %+v, want %+v", got.Config(), m.Config())
	}
	want := m.StateDict()
	for name, tw := range got.StateDict() {
		if !slices.Equal(tw.Data, want[name].Data) {
			t.Errorf("tensor %s differs after old-layout conversion", name)
		}
	}
}

func TestStateDictErrors(t *testing.T) {
	m := refModel(t, "tiny")
	tests := []struct {
		name   string
		mutate func(sd StateDict)
		want   string
	}{
		{"missing tensor", func(sd StateDict) { delete(sd, "WN.1.end.bias") }, "WN.1.end.bias"},
		{"wrong shape", func(sd StateDict) {
			t := sd["WN.2.start.weight"]
			t.Shape = []int{t.Shape[0] * t.Shape[1], 1, 1}
			sd["WN.2.start.weight"] = t
		}, "WN.2.start.weight"},
		{"short data", func(sd StateDict) {
			t := sd["WN.0.end.weight"]
			t.Data = t.Data[:len(t.Data)-1]
			sd["WN.0.end.weight"] = t
		}, "WN.0.end.weight"},
		{"NaN weight", func(sd StateDict) { sd["WN.3.in_layers.1.bias"].Data[2] = float32(math.NaN()) }, "WN.3.in_layers.1.bias"},
		{"extra tensor", func(sd StateDict) { sd["WN.0.extra.weight"] = Tensor{Shape: []int{1}, Data: []float32{1}} }, "WN.0.extra.weight"},
		{"no upsample", func(sd StateDict) { delete(sd, "upsample.weight") }, "upsample.weight"},
		{"singular 1x1", func(sd StateDict) { clear(sd["convinv.1.conv.weight"].Data) }, "convinv.1.conv.weight"},
		{"inconsistent channels", func(sd StateDict) {
			sd["convinv.3.conv.weight"] = Tensor{Shape: []int{4, 4, 1}, Data: make([]float32, 16)}
		}, "convinv.3.conv.weight"},
		{"orphan weight_g", func(sd StateDict) {
			sd["WN.0.start.weight_g"] = Tensor{Shape: []int{8, 1, 1}, Data: make([]float32, 8)}
		}, "weight_v"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sd := cloneStateDict(m.StateDict())
			tc.mutate(sd)
			_, err := FromStateDict(sd, LoadOptions{})
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %q", err, tc.want)
			}
		})
	}
}

func TestConfigMismatch(t *testing.T) {
	m := refModel(t, "tiny")
	cfg := m.Config()
	cfg.WN.Layers = 3
	_, err := FromStateDict(m.StateDict(), LoadOptions{Config: &cfg})
	if err == nil || !strings.Contains(err.Error(), "topology") {
		t.Fatalf("got %v, want a topology mismatch error", err)
	}
}

func TestSynthesizeInputErrors(t *testing.T) {
	m := refModel(t, "tiny")
	good := testMel(t, m, 4)
	nan := melspec.Spectrogram{NMels: good.NMels, Frames: good.Frames, Data: slices.Clone(good.Data)}
	nan.Data[5] = float32(math.Inf(1))
	tests := []struct {
		name string
		mel  melspec.Spectrogram
		opts SynthesizeOptions
		want string
	}{
		{"wrong n_mels", melspec.Spectrogram{NMels: 8, Frames: 4, Data: make([]float32, 32)}, SynthesizeOptions{}, "80"},
		{"no frames", melspec.Spectrogram{NMels: 80}, SynthesizeOptions{}, "no frames"},
		{"short data", melspec.Spectrogram{NMels: 80, Frames: 4, Data: make([]float32, 10)}, SynthesizeOptions{}, ""},
		{"inf in mel", nan, SynthesizeOptions{}, "mel"},
		{"negative sigma", good, SynthesizeOptions{Sigma: -1}, "sigma"},
		{"NaN sigma", good, SynthesizeOptions{Sigma: math.NaN()}, "sigma"},
		{"noise wrong length", good, SynthesizeOptions{Noise: make([]float32, 7)}, "noise"},
		{"noise NaN", good, SynthesizeOptions{Noise: append(make([]float32, 8*4*32-1), float32(math.NaN()))}, "noise"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.Synthesize(context.Background(), tc.mel, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestSeededSynthesis(t *testing.T) {
	m := refModel(t, "tiny")
	mel := testMel(t, m, 10)
	synth := func(seed uint64) []float32 {
		a, err := m.Synthesize(context.Background(), mel, SynthesizeOptions{Sigma: 0.6, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	a, b, c := synth(7), synth(7), synth(8)
	if len(a) != m.Samples(10) {
		t.Fatalf("%d samples, want %d", len(a), m.Samples(10))
	}
	if !slices.Equal(a, b) {
		t.Error("same seed gave different audio")
	}
	if slices.Equal(a, c) {
		t.Error("different seeds gave the same audio")
	}
	// Concurrent calls on one model give the same result as sequential ones.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			got, err := m.Synthesize(context.Background(), mel, SynthesizeOptions{Sigma: 0.6, Seed: seed})
			if err != nil {
				errs <- err
				return
			}
			if want := map[uint64][]float32{7: a, 8: c}[seed]; !slices.Equal(got, want) {
				errs <- fmt.Errorf("seed %d: concurrent synthesis differs", seed)
			}
		}(uint64(7 + i%2))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestCancellation(t *testing.T) {
	m := refModel(t, "tiny")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	mel := testMel(t, m, 10)
	if _, err := m.Synthesize(ctx, mel, SynthesizeOptions{Sigma: 0.6}); !errors.Is(err, context.Canceled) {
		t.Errorf("Synthesize with a cancelled context: %v", err)
	}
	if _, err := m.Forward(ctx, make([]float32, 2560), mel); !errors.Is(err, context.Canceled) {
		t.Errorf("Forward with a cancelled context: %v", err)
	}
}

// TestRoundTrip checks that Forward inverts Synthesize: the flow is
// bijective for a fixed mel.
func TestRoundTrip(t *testing.T) {
	for _, name := range []string{"tiny", "small"} {
		t.Run(name, func(t *testing.T) {
			m := refModel(t, name)
			mel := testMel(t, m, 12)
			z := make([]float32, m.Samples(mel.Frames))
			FillNoise(z, 3, 0.6)
			audio, err := m.Synthesize(context.Background(), mel, SynthesizeOptions{Noise: z})
			if err != nil {
				t.Fatal(err)
			}
			r, err := m.Forward(context.Background(), audio, mel)
			if err != nil {
				t.Fatal(err)
			}
			closeTo(t, "forward(infer(z))", r.Z, z, 0, 1e-5)
		})
	}
}

func TestScore(t *testing.T) {
	m := refModel(t, "tiny")
	c := readNPZ(t, "tiny", "denoiser.npz")
	audio := c["audio"].Data[:6001] // not a multiple of n_group: trimmed
	s, err := m.Score(context.Background(), audio, 1)
	if err != nil {
		t.Fatal(err)
	}
	if s.Samples != 6000 {
		t.Errorf("scored %d samples, want 6000", s.Samples)
	}
	mel, err := m.Analyzer().Mel(audio)
	if err != nil {
		t.Fatal(err)
	}
	r, err := m.Forward(context.Background(), audio[:6000], mel)
	if err != nil {
		t.Fatal(err)
	}
	relClose(t, "loss", s.Loss, Loss([]*ForwardResult{r}, 1), 1e-12)
	relClose(t, "nll", s.NLLNatsPerSample, s.Loss+0.5*math.Log(2*math.Pi), 1e-12)
	// The per-frame values average (weighted by samples) to the total.
	var sum float64
	for i, v := range s.FrameNLL {
		n := 256
		if i == len(s.FrameNLL)-1 {
			n = 6000 - 256*i
		}
		sum += v * float64(n)
	}
	relClose(t, "mean frame NLL", sum/6000, s.NLLNatsPerSample, 1e-9)
	if want := (6000 + 255) / 256; len(s.FrameNLL) != want {
		t.Errorf("%d frame values, want %d", len(s.FrameNLL), want)
	}
	for _, sigma := range []float64{0, -1, math.Inf(1), math.NaN()} {
		if _, err := m.Score(context.Background(), audio, sigma); err == nil {
			t.Errorf("sigma %v accepted", sigma)
		}
	}
	if _, err := m.Score(context.Background(), audio[:100], 1); err == nil {
		t.Error("100 samples (shorter than half a window) accepted")
	}
}

func TestConfigValidate(t *testing.T) {
	base := refModel(t, "tiny").Config()
	tests := []struct {
		name   string
		mutate func(c *Config)
	}{
		{"odd group", func(c *Config) { c.Group = 7 }},
		{"even kernel", func(c *Config) { c.WN.KernelSize = 2 }},
		{"no flows", func(c *Config) { c.Flows = 0 }},
		{"too many early outputs", func(c *Config) { c.EarlySize = 4; c.Flows = 8 }},
		{"mel channels differ", func(c *Config) { c.Mel.NMels = 40 }},
		{"hop not multiple of group", func(c *Config) { c.Mel.Hop = 100 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.mutate(&c)
			if err := c.Validate(); err == nil {
				t.Errorf("config %+v accepted", c)
			}
		})
	}
	if err := base.Validate(); err != nil {
		t.Errorf("reference config rejected: %v", err)
	}
}

func TestInferenceFLOPs(t *testing.T) {
	universal := Config{NMels: 80, Flows: 12, Group: 8, EarlyEvery: 4, EarlySize: 2,
		WN: WNConfig{Layers: 8, Channels: 256, KernelSize: 3}, UpsampleKernel: 1024, Mel: melspec.DefaultConfig()}
	// ../shared/DESIGN.md: about 224 GMAC per second of audio, and 894
	// GFLOP for a 172-frame (2 s) mel.
	if got := universal.InferenceFLOPs(172) / 1e9; math.Abs(got-894) > 10 {
		t.Errorf("universal, 172 frames: %.1f GFLOP, want about 894", got)
	}
	// The small model runs fused conditioning: about half the nominal work
	// (the 1x1 conv on upsampled input costs 640 MACs per output, the fused
	// transposed conv 320, and the upsampling goes).
	fused, nominal := refModel(t, "small").InferenceFLOPs(172), refModel(t, "small").Config().InferenceFLOPs(172)
	if r := fused / nominal; r < 0.45 || r > 0.6 {
		t.Errorf("small, fused: %.2f GFLOP, %.2f of the nominal %.2f", fused/1e9, r, nominal/1e9)
	}
	// Doubling the frames doubles the work.
	small := refModel(t, "small").Config()
	if a, b := small.InferenceFLOPs(10), small.InferenceFLOPs(20); math.Abs(b/a-2) > 1e-12 {
		t.Errorf("FLOPs not linear in frames: %v, %v", a, b)
	}
}

func TestReadNative(t *testing.T) {
	m := refModel(t, "tiny_mel8")
	path := filepath.Join(t.TempDir(), "m.safetensors")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Read(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if got.Config() != m.Config() {
		t.Errorf("config %+v, want %+v", got.Config(), m.Config())
	}
	if _, err := Read(bytes.NewReader(b[:len(b)/2]), int64(len(b)/2)); err == nil {
		t.Error("truncated model accepted")
	}
}
