//go:build !noasm

package train

import "golang.org/x/sys/cpu"

// hasAVX2FMA reports whether adamAVX2 can run.
var hasAVX2FMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// update applies the step to parameter values p with gradients g and
// moments m and v, all of the same length: eight at a time with the AVX2
// kernel when the CPU has it, the rest with updateGo. Both round
// identically.
func (h *adamScalars) update(p, g, m, v []float32) {
	body := 0
	if hasAVX2FMA {
		body = len(p) &^ 7
	}
	if body > 0 {
		g, m, v := g[:body], m[:body], v[:body]
		adamAVX2(&p[0], &g[0], &m[0], &v[0], body, h)
	}
	h.updateGo(p[body:], g[body:], m[body:], v[body:])
}

// adamAVX2 is updateGo for n a positive multiple of 8. It needs AVX2 and
// FMA.
//
//go:noescape
func adamAVX2(p, grad, m, v *float32, n int, h *adamScalars)
