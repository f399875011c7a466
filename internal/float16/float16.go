// Package float16 widens the 16-bit floating-point formats found in model
// and array files (IEEE 754 binary16, and bfloat16) to float32, exactly.
package float16

import "math"

// ToFloat32 converts IEEE 754 binary16 bits to float32 exactly; NaN
// payloads are kept.
func ToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN, keeping the payload.
		return math.Float32frombits(sign | 0x7f800000 | frac<<13)
	case exp != 0: // Normal: rebias the exponent from 15 to 127.
		return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
	case frac == 0: // Signed zero.
		return math.Float32frombits(sign)
	default: // Subnormal: frac·2^-24, exact in float32.
		v := float32(frac) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	}
}

// BFloat16ToFloat32 converts bfloat16 bits (the top half of a float32) to
// float32 exactly.
func BFloat16ToFloat32(h uint16) float32 {
	return math.Float32frombits(uint32(h) << 16)
}
