package nn

import (
	"math"
	"runtime"
	"sync"
)

// GatedActivation computes WaveNet's gated activation
//
//	dst[c, t] = tanh(pre[c, t]) · σ(pre[channels+c, t]),  σ(x) = 1/(1+e^(−x)),
//
// for c < channels and t < n. pre is a row-major [2·channels × n] buffer
// (filter rows first, then gate rows) and dst a row-major [channels × n]
// one. dst may be the filter rows of pre itself (pre[:channels*n]) but must
// not otherwise overlap pre. The functions are evaluated in float64 and
// rounded once, so each result is within one ulp of the exact value.
// Large calls are split over up to runtime.GOMAXPROCS(0) goroutines.
func GatedActivation(dst, pre []float32, channels, n int) {
	size := channels * n
	gatedRows(dst[:size], pre[:size], pre[size:2*size], channels, n, nil)
}

// GatedActivationBias is GatedActivation with a bias added to each row of
// pre first, fusing the bias pass into the activation:
//
//	dst[c, t] = tanh(pre[c, t] + bias[c]) · σ(pre[channels+c, t] + bias[channels+c]).
//
// The sums are rounded to float32, as a separate AddBias would round them.
// bias has 2·channels values.
func GatedActivationBias(dst, pre []float32, channels, n int, bias []float32) {
	size := channels * n
	gatedRows(dst[:size], pre[:size], pre[size:2*size], channels, n, bias[:2*channels])
}

// minGatedValues is the fewest values a goroutine of a split gated
// activation gets (about 0.1 ms of work).
const minGatedValues = 1 << 15

// gatedRows runs the gated activation over rows×n values, split by rows
// over goroutines when large. bias is nil or holds the rows filter biases
// followed by the rows gate biases.
func gatedRows(dst, filter, gate []float32, rows, n int, bias []float32) {
	workers := min(runtime.GOMAXPROCS(0), rows*n/minGatedValues, rows)
	if workers <= 1 {
		p := gatedPart{dst: dst, filter: filter, gate: gate, rows: rows, n: n}
		if bias != nil {
			p.fb, p.gb = bias[:rows], bias[rows:]
		}
		p.apply()
		return
	}
	f := getFan[gatedPart](&gatedFanPool)
	chunk := ceilDiv(rows, workers)
	for lo := 0; lo < rows; lo += chunk {
		hi := min(lo+chunk, rows)
		p := gatedPart{wg: &f.wg, dst: dst[lo*n : hi*n], filter: filter[lo*n : hi*n], gate: gate[lo*n : hi*n], rows: hi - lo, n: n}
		if bias != nil {
			p.fb, p.gb = bias[lo:hi], bias[rows+lo:rows+hi]
		}
		f.parts = append(f.parts, p)
	}
	runFan(&gatedFanPool, f)
}

// gatedPart is one goroutine's rows of a gated activation.
type gatedPart struct {
	wg                *sync.WaitGroup
	dst, filter, gate []float32
	rows, n           int
	fb, gb            []float32 // per-row filter and gate biases, or nil
}

func (p *gatedPart) run() {
	p.apply()
	p.wg.Done()
}

// apply computes the part's rows.
func (p *gatedPart) apply() {
	if p.fb == nil {
		gated(p.dst, p.filter, p.gate, 0, 0)
		return
	}
	for r := 0; r < p.rows; r++ {
		row := r * p.n
		gated(p.dst[row:row+p.n], p.filter[row:row+p.n], p.gate[row:row+p.n], p.fb[r], p.gb[r])
	}
}

// gatedFanPool holds the state of split gated activations.
var gatedFanPool = sync.Pool{New: func() any { return new(fan[gatedPart]) }}

// gatedGo is the portable gated activation: dst[i] = tanh(filter[i]+fb) ·
// σ(gate[i]+gb), each sum rounded to float32, the functions evaluated in
// float64. The slices have equal lengths; dst may be filter.
func gatedGo(dst, filter, gate []float32, fb, gb float32) {
	filter = filter[:len(dst)]
	gate = gate[:len(dst)]
	for i := range dst {
		x, y := float64(filter[i]+fb), float64(gate[i]+gb)
		dst[i] = float32(math.Tanh(x) * (1 / (1 + math.Exp(-y))))
	}
}

// TanhSigmoid evaluates the two halves of the gated activation separately,
// as its gradient needs them:
//
//	t[i] = tanh(filter[i]),  s[i] = σ(gate[i]),  a[i] = t[i]·s[i],
//
// for i < len(filter). tanh and σ are evaluated in float64 and rounded
// once; a is the float32 product of the rounded values. t, s, a and gate
// must be at least as long as filter; the outputs must not overlap the
// inputs or each other.
func TanhSigmoid(t, s, a, filter, gate []float32) {
	tanhSigmoid(t, s, a, filter, gate)
}

// tanhSigmoidGo is the portable TanhSigmoid.
func tanhSigmoidGo(t, s, a, filter, gate []float32) {
	n := len(filter)
	t, s, a, gate = t[:n], s[:n], a[:n], gate[:n]
	for i, f := range filter {
		tv := float32(math.Tanh(float64(f)))
		sv := float32(1 / (1 + math.Exp(-float64(gate[i]))))
		t[i], s[i], a[i] = tv, sv, tv*sv
	}
}

// Exp sets dst[i] = e^src[i] for i < len(src), evaluated in float64 and
// rounded once (within one ulp; +Inf above about 88.72, 0 below about
// −103.97). dst must be at least as long as src; it may be src itself but
// must not otherwise overlap it.
func Exp(dst, src []float32) {
	exp(dst[:len(src)], src)
}

// expGo is the portable Exp.
func expGo(dst, src []float32) {
	src = src[:len(dst)]
	for i, v := range src {
		dst[i] = float32(math.Exp(float64(v)))
	}
}

// AddBias adds bias[i] to every element of row i of the m×n row-major
// matrix c with row stride ldc.
func AddBias(c []float32, m, n, ldc int, bias []float32) {
	checkMatrix("C", m, n, c, ldc)
	for i, v := range bias[:m] {
		row := c[i*ldc : i*ldc+n]
		for j := range row {
			row[j] += v
		}
	}
}
