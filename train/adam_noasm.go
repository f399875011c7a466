//go:build noasm || !amd64

package train

// update applies the step to parameter values p with gradients g and
// moments m and v, all of the same length; see updateGo.
func (h *adamScalars) update(p, g, m, v []float32) { h.updateGo(p, g, m, v) }
