package melspec

import (
	"math"
	"strings"
	"testing"
)

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	want := Config{SampleRate: 22050, NFFT: 1024, Hop: 256, Win: 1024, NMels: 80, FMin: 0, FMax: 8000}
	if c != want {
		t.Fatalf("DefaultConfig() = %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if got := c.Bins(); got != 513 {
		t.Errorf("Bins() = %d, want 513", got)
	}
}

func TestConfigFrames(t *testing.T) {
	c := DefaultConfig()
	for _, tc := range []struct{ n, want int }{
		{600, 3}, {24047, 94}, {68161, 267}, {22050, 87}, {255, 1}, {256, 2}, {-1, 0},
	} {
		if got := c.Frames(tc.n); got != tc.want {
			t.Errorf("Frames(%d) = %d, want %d", tc.n, got, tc.want)
		}
	}
	if got := (Config{}).Frames(1000); got != 0 {
		t.Errorf("zero Config: Frames(1000) = %d, want 0", got)
	}
}

func TestConfigValidate(t *testing.T) {
	mod := func(f func(*Config)) Config {
		c := DefaultConfig()
		f(&c)
		return c
	}
	for _, tc := range []struct {
		name string
		c    Config
		want string // substring of the error; "" means valid
	}{
		{"default", DefaultConfig(), ""},
		{"16k", Config{SampleRate: 16000, NFFT: 512, Hop: 128, Win: 512, NMels: 80, FMax: 7600}, ""},
		{"short window", mod(func(c *Config) { c.Win = 800 }), ""},
		{"fmax at nyquist", mod(func(c *Config) { c.FMax = 11025 }), ""},
		{"zero rate", mod(func(c *Config) { c.SampleRate = 0 }), "sample rate 0"},
		{"zero nfft", mod(func(c *Config) { c.NFFT = 0 }), "NFFT 0"},
		{"odd nfft", mod(func(c *Config) { c.NFFT, c.Win = 1023, 1023 }), "NFFT 1023 is odd"},
		{"huge nfft", mod(func(c *Config) { c.NFFT = 1 << 20 }), "exceeds the limit"},
		{"negative hop", mod(func(c *Config) { c.Hop = -256 }), "hop -256"},
		{"zero window", mod(func(c *Config) { c.Win = 0 }), "window length 0"},
		{"window > nfft", mod(func(c *Config) { c.Win = 2048 }), "window length 2048 exceeds NFFT 1024"},
		{"zero mels", mod(func(c *Config) { c.NMels = 0 }), "mel channels 0"},
		{"huge mels", mod(func(c *Config) { c.NMels = 1 << 20 }), "exceeds the limit"},
		{"negative fmin", mod(func(c *Config) { c.FMin = -1 }), "FMin -1 is negative"},
		{"nan fmin", mod(func(c *Config) { c.FMin = math.NaN() }), "FMin NaN"},
		{"inf fmax", mod(func(c *Config) { c.FMax = math.Inf(1) }), "FMax +Inf"},
		{"fmax above nyquist", mod(func(c *Config) { c.FMax = 12000 }), "Nyquist"},
		{"fmin = fmax", mod(func(c *Config) { c.FMin = 8000 }), "FMin 8000 is not below FMax 8000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			_, aerr := NewAnalyzer(tc.c)
			if tc.want == "" {
				if err != nil || aerr != nil {
					t.Fatalf("Validate: %v, NewAnalyzer: %v; want no error", err, aerr)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate: %v, want an error containing %q", err, tc.want)
			}
			if aerr == nil {
				t.Fatal("NewAnalyzer accepted an invalid config")
			}
		})
	}
}
