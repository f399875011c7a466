package float16

import (
	"math"
	"testing"
)

// TestToFloat32Exhaustive checks every finite binary16 value against the
// formula (-1)^s · 2^(e-15) · (1 + f/1024), or 2^-14 · f/1024 for
// subnormals, and the special values.
func TestToFloat32Exhaustive(t *testing.T) {
	for h := range 1 << 16 {
		exp, frac := h>>10&0x1f, h&0x3ff
		got := ToFloat32(uint16(h))
		if exp == 0x1f {
			switch {
			case frac == 0 && !math.IsInf(float64(got), 1-2*(h>>15)):
				t.Fatalf("%#04x = %v, want infinity", h, got)
			case frac != 0 && !math.IsNaN(float64(got)):
				t.Fatalf("%#04x = %v, want NaN", h, got)
			}
			continue
		}
		var want float64
		if exp == 0 {
			want = math.Ldexp(float64(frac)/1024, -14)
		} else {
			want = math.Ldexp(1+float64(frac)/1024, exp-15)
		}
		if h>>15 != 0 {
			want = -want
		}
		if math.Float32bits(got) != math.Float32bits(float32(want)) {
			t.Fatalf("%#04x = %v, want %v", h, got, want)
		}
	}
}

func TestBFloat16ToFloat32(t *testing.T) {
	for _, v := range []float32{0, 1, -2.5, 3.140625, float32(math.Inf(-1))} {
		if got := BFloat16ToFloat32(uint16(math.Float32bits(v) >> 16)); got != v {
			t.Errorf("bfloat16 of %v = %v", v, got)
		}
	}
}
