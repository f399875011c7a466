package weights

import (
	"context"
	"math"
	"testing"

	"github.com/glowvoc/glowvoc/melspec"
	"github.com/glowvoc/glowvoc/vocoder"
)

func TestDefault(t *testing.T) {
	m, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	cfg := m.Config()
	if cfg.NMels != 80 || cfg.Mel != melspec.DefaultConfig() {
		t.Errorf("bundled model config %+v: want 80 mels and WaveGlow's front end", cfg)
	}
	// It synthesises finite audio of the expected length.
	mel := melspec.Spectrogram{NMels: 80, Frames: 8, Data: make([]float32, 80*8)}
	for i := range mel.Data {
		mel.Data[i] = -6
	}
	audio, err := m.Synthesize(context.Background(), mel, vocoder.SynthesizeOptions{Sigma: 0.6, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(audio) != 8*256 {
		t.Fatalf("%d samples, want %d", len(audio), 8*256)
	}
	for i, v := range audio {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("sample %d is %v", i, v)
		}
	}
}
