//go:build !noasm

package nn

// gated sets dst[i] = tanh(filter[i]+fb)·σ(gate[i]+gb) with the AVX2
// kernel when the CPU has it; see gatedGo.
func gated(dst, filter, gate []float32, fb, gb float32) {
	if !hasAVX2FMA {
		gatedGo(dst, filter, gate, fb, gb)
		return
	}
	n := len(dst)
	filter, gate = filter[:n], gate[:n]
	body := n &^ 7
	if body > 0 {
		gatedAVX2(&dst[0], &filter[0], &gate[0], body, fb, gb)
	}
	if body == n {
		return
	}
	// The last one to seven values go through the kernel too, padded, so
	// every value is computed the same way.
	var f, g [8]float32
	copy(f[:], filter[body:])
	copy(g[:], gate[body:])
	gatedAVX2(&f[0], &f[0], &g[0], 8, fb, gb)
	copy(dst[body:], f[:])
}

// exp sets dst[i] = e^src[i] with the AVX2 kernel when the CPU has it; see
// expGo. len(dst) == len(src).
func exp(dst, src []float32) {
	if !hasAVX2FMA {
		expGo(dst, src)
		return
	}
	n := len(dst)
	src = src[:n]
	body := n &^ 7
	if body > 0 {
		expAVX2(&dst[0], &src[0], body)
	}
	if body == n {
		return
	}
	var t [8]float32
	copy(t[:], src[body:])
	expAVX2(&t[0], &t[0], 8)
	copy(dst[body:], t[:])
}

// gatedAVX2 sets dst[i] = tanh(filter[i]+fb)·σ(gate[i]+gb) for i < n, a
// positive multiple of 8, in float64 rounded once. dst may be filter. It
// needs AVX2 and FMA.
//
//go:noescape
func gatedAVX2(dst, filter, gate *float32, n int, fb, gb float32)

// expAVX2 sets dst[i] = e^src[i] for i < n, a positive multiple of 8, in
// float64 rounded once. dst may be src. It needs AVX2 and FMA.
//
//go:noescape
func expAVX2(dst, src *float32, n int)

// tanhSigmoid sets t[i] = tanh(filter[i]), s[i] = σ(gate[i]) and a[i] =
// t[i]·s[i] with the AVX2 kernel when the CPU has it; see tanhSigmoidGo.
func tanhSigmoid(t, s, a, filter, gate []float32) {
	if !hasAVX2FMA {
		tanhSigmoidGo(t, s, a, filter, gate)
		return
	}
	n := len(filter)
	t, s, a, gate = t[:n], s[:n], a[:n], gate[:n]
	body := n &^ 7
	if body > 0 {
		tanhSigmoidAVX2(&t[0], &s[0], &a[0], &filter[0], &gate[0], body)
	}
	if body == n {
		return
	}
	var f, g, tt, ss, aa [8]float32
	copy(f[:], filter[body:])
	copy(g[:], gate[body:])
	tanhSigmoidAVX2(&tt[0], &ss[0], &aa[0], &f[0], &g[0], 8)
	copy(t[body:], tt[:])
	copy(s[body:], ss[:])
	copy(a[body:], aa[:])
}

// tanhSigmoidAVX2 is tanhSigmoid for n a positive multiple of 8. It needs
// AVX2 and FMA.
//
//go:noescape
func tanhSigmoidAVX2(t, s, a, filter, gate *float32, n int)
