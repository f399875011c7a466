package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func TestGatedActivation(t *testing.T) {
	tests := []struct{ channels, n int }{
		{0, 5}, {1, 1}, {3, 7}, {16, 33},
		{64, 1030}, // split over goroutines
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("c%d_n%d", tt.channels, tt.n), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(tt.channels), uint64(tt.n)))
			size := tt.channels * tt.n
			pre := randSlice(rng, 2*size)
			for i := range pre {
				pre[i] *= 30 // reach the saturated ends of tanh and σ
			}
			if size > 2 {
				pre[0], pre[size] = 100, -100 // e^100 must not break σ
				pre[1], pre[size+1] = -100, 100
			}
			got := make([]float32, size)
			GatedActivation(got, pre, tt.channels, tt.n)
			for i, g := range got {
				x, y := float64(pre[i]), float64(pre[size+i])
				want := float32(math.Tanh(x) * (1 / (1 + math.Exp(-y))))
				if math.Abs(float64(g-want)) > 0x1p-24*math.Abs(float64(want)) {
					t.Fatalf("dst[%d] = %v, want %v (filter %v, gate %v)", i, g, want, x, y)
				}
			}
			// In place, over the filter rows.
			GatedActivation(pre, pre, tt.channels, tt.n)
			for i, g := range got {
				if pre[i] != g {
					t.Fatalf("in place: dst[%d] = %v, want %v", i, pre[i], g)
				}
			}
		})
	}
}

func TestTanhSigmoid(t *testing.T) {
	impls := []struct {
		name string
		f    func(t, s, a, filter, gate []float32)
	}{{"dispatched", TanhSigmoid}, {"portable", tanhSigmoidGo}}
	for _, impl := range impls {
		for _, n := range []int{0, 1, 7, 8, 9, 100, 1029} {
			t.Run(fmt.Sprintf("%s/n%d", impl.name, n), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(n), 7))
				filter, gate := randSlice(rng, n), randSlice(rng, n)
				for i := range filter {
					filter[i] *= 30 // reach the saturated ends
					gate[i] *= 30
				}
				special := []float32{0, float32(math.Copysign(0, -1)), 1e-30, -1e-7, 100, -100, 1e30, -1e30}
				for i := 0; i < n && i < len(special); i++ {
					filter[i], gate[n-1-i] = special[i], special[i]
				}
				th, sg, a := make([]float32, n), make([]float32, n), make([]float32, n)
				impl.f(th, sg, a, filter, gate)
				for i := range filter {
					wantT := math.Tanh(float64(filter[i]))
					wantS := 1 / (1 + math.Exp(-float64(gate[i])))
					if ulpError(th[i], wantT) > 0.501 || math.Signbit(float64(th[i])) != math.Signbit(wantT) {
						t.Fatalf("t[%d] = %v, want %v (filter %v)", i, th[i], wantT, filter[i])
					}
					if ulpError(sg[i], wantS) > 0.501 {
						t.Fatalf("s[%d] = %v, want %v (gate %v)", i, sg[i], wantS, gate[i])
					}
					if a[i] != th[i]*sg[i] {
						t.Fatalf("a[%d] = %v, want t·s = %v", i, a[i], th[i]*sg[i])
					}
				}
			})
		}
	}
}

func TestGatedActivationBias(t *testing.T) {
	for _, tt := range []struct{ channels, n int }{{1, 1}, {3, 7}, {5, 9}, {64, 1030}} {
		t.Run(fmt.Sprintf("c%d_n%d", tt.channels, tt.n), func(t *testing.T) {
			size := tt.channels * tt.n
			pre := make([]float32, 2*size)
			for i := range pre {
				pre[i] = float32(i%13)/3 - 2
			}
			bias := make([]float32, 2*tt.channels)
			for i := range bias {
				bias[i] = float32(i)/4 - 1
			}
			want := append([]float32(nil), pre...)
			AddBias(want, 2*tt.channels, tt.n, tt.n, bias)
			GatedActivation(want, want, tt.channels, tt.n)
			got := make([]float32, size)
			GatedActivationBias(got, pre, tt.channels, tt.n, bias)
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("dst[%d] = %v, want %v", i, got[i], want[i])
				}
			}
		})
	}
}

func TestAddBias(t *testing.T) {
	tests := []struct{ m, n, ldc int }{
		{0, 3, 3}, {1, 1, 1}, {3, 4, 4}, {5, 7, 9},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("m%d_n%d_ldc%d", tt.m, tt.n, tt.ldc), func(t *testing.T) {
			c := make([]float32, tt.m*tt.ldc)
			for i := range c {
				c[i] = float32(i)
			}
			bias := make([]float32, tt.m)
			for i := range bias {
				bias[i] = float32(100 * (i + 1))
			}
			AddBias(c, tt.m, tt.n, tt.ldc, bias)
			for i := 0; i < tt.m; i++ {
				for j := 0; j < tt.ldc; j++ {
					want := float32(i*tt.ldc + j)
					if j < tt.n {
						want += bias[i]
					}
					if got := c[i*tt.ldc+j]; got != want {
						t.Errorf("c[%d,%d] = %v, want %v", i, j, got, want)
					}
				}
			}
		})
	}
}

// BenchmarkGatedActivation measures one WN layer's activation of the
// universal model (256 channels, one second of audio), on the dispatched
// path and the portable one.
func BenchmarkGatedActivation(b *testing.B) {
	const channels, n = 256, 2756
	rng := rand.New(rand.NewPCG(5, 6))
	pre := randSlice(rng, 2*channels*n)
	for i := range pre {
		pre[i] *= 4
	}
	dst := make([]float32, channels*n)
	for _, impl := range []struct {
		name string
		f    func(dst, filter, gate []float32, fb, gb float32)
	}{{"dispatch", gated}, {"portable", gatedGo}} {
		b.Run(impl.name, func(b *testing.B) {
			for b.Loop() {
				impl.f(dst, pre[:channels*n], pre[channels*n:], 0, 0)
			}
			b.ReportMetric(float64(b.N)*channels*n/b.Elapsed().Seconds()/1e6, "Mvalues/s")
		})
	}
}

// BenchmarkExp measures Exp on the dispatched path and the portable one.
func BenchmarkExp(b *testing.B) {
	const n = 1 << 16
	rng := rand.New(rand.NewPCG(7, 8))
	src := randSlice(rng, n)
	dst := make([]float32, n)
	for _, impl := range []struct {
		name string
		f    func(dst, src []float32)
	}{{"dispatch", exp}, {"portable", expGo}} {
		b.Run(impl.name, func(b *testing.B) {
			for b.Loop() {
				impl.f(dst, src)
			}
			b.ReportMetric(float64(b.N)*n/b.Elapsed().Seconds()/1e6, "Mvalues/s")
		})
	}
}
