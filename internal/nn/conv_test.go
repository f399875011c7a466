package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func TestDilatedConv(t *testing.T) {
	tests := []struct{ taps, cout, cin, n, dilation int }{
		{1, 3, 2, 5, 1}, {3, 4, 5, 30, 1}, {3, 8, 6, 50, 4}, {5, 7, 3, 41, 2},
	}
	for _, tt := range tests {
		for _, acc := range []bool{false, true} {
			t.Run(fmt.Sprintf("taps%d_cout%d_cin%d_n%d_dil%d_acc%v", tt.taps, tt.cout, tt.cin, tt.n, tt.dilation, acc), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(tt.taps), uint64(tt.n)))
				pad := tt.taps / 2 * tt.dilation
				col0, ldx, ldy := pad+2, tt.n+2*pad+5, tt.n+3
				w := randSlice(rng, tt.taps*tt.cout*tt.cin)
				x := randSlice(rng, tt.cin*ldx)
				y := randSlice(rng, tt.cout*ldy)
				want := append([]float32(nil), y...)
				for o := 0; o < tt.cout; o++ {
					for s := 0; s < tt.n; s++ {
						var sum float64
						if acc {
							sum = float64(want[o*ldy+s])
						}
						for j := 0; j < tt.taps; j++ {
							for i := 0; i < tt.cin; i++ {
								sum += float64(w[(j*tt.cout+o)*tt.cin+i]) * float64(x[i*ldx+col0+s+(j-tt.taps/2)*tt.dilation])
							}
						}
						want[o*ldy+s] = float32(sum)
					}
				}
				DilatedConv(y, ldy, w, tt.taps, tt.cout, tt.cin, x, ldx, col0, tt.n, tt.dilation, acc)
				for i := range y {
					if math.Abs(float64(y[i]-want[i])) > 1e-5 {
						t.Fatalf("y[%d] = %v, want %v", i, y[i], want[i])
					}
				}
			})
		}
	}
}

// convTransposeRef is the textbook transposed convolution.
func convTransposeRef(y []float32, outLen int, w, bias []float32, cin, cout, kernel, stride int, x []float32, frames int) {
	for o := 0; o < cout; o++ {
		acc := make([]float64, outLen)
		for s := range acc {
			acc[s] = float64(bias[o])
		}
		for t := 0; t < frames; t++ {
			for k := 0; k < kernel; k++ {
				s := stride*t + k
				if s >= outLen {
					break
				}
				for i := 0; i < cin; i++ {
					acc[s] += float64(w[(o*kernel+k)*cin+i]) * float64(x[i*frames+t])
				}
			}
		}
		for s, v := range acc {
			y[o*outLen+s] = float32(v)
		}
	}
}

func TestConvTranspose1d(t *testing.T) {
	tests := []struct{ cin, cout, kernel, stride, frames, outLen int }{
		{1, 1, 1, 1, 1, 1},
		{3, 2, 8, 4, 5, 16},                   // trimmed like the vocoder's upsampler
		{4, 3, 16, 4, 70, 70*4 + 12},          // more frames than one chunk, full length
		{5, 2, 12, 3, 40, 40 * 3},             // kernel not a multiple of stride
		{2, 3, 4, 8, convTransposeChunk, 200}, // gaps between frames
		{2, 1, 6, 3, 70, 70*3 + 3},            // frames over the scratch: chunked
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("cin%d_cout%d_k%d_s%d_f%d_out%d", tt.cin, tt.cout, tt.kernel, tt.stride, tt.frames, tt.outLen), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(tt.kernel), uint64(tt.frames)))
			w := randSlice(rng, tt.cout*tt.kernel*tt.cin)
			bias := randSlice(rng, tt.cout)
			x := randSlice(rng, tt.cin*tt.frames)
			got := make([]float32, tt.cout*tt.outLen)
			want := make([]float32, len(got))
			scratch := make([]float32, ConvTranspose1dScratch(tt.cout, tt.kernel))
			ConvTranspose1d(got, tt.outLen, w, bias, tt.cin, tt.cout, tt.kernel, tt.stride, x, tt.frames, scratch)
			convTransposeRef(want, tt.outLen, w, bias, tt.cin, tt.cout, tt.kernel, tt.stride, x, tt.frames)
			for i := range got {
				if math.Abs(float64(got[i]-want[i])) > 1e-5 {
					t.Fatalf("y[%d] = %v, want %v", i, got[i], want[i])
				}
			}
		})
	}
}

// BenchmarkConvTranspose1d measures the universal model's mel upsampler
// over one second of audio (86 frames).
func BenchmarkConvTranspose1d(b *testing.B) {
	const cin, cout, kernel, stride, frames = 80, 80, 1024, 256, 86
	outLen := frames * stride
	rng := rand.New(rand.NewPCG(9, 9))
	w := randSlice(rng, cout*kernel*cin)
	bias := randSlice(rng, cout)
	x := randSlice(rng, cin*frames)
	y := make([]float32, cout*outLen)
	scratch := make([]float32, ConvTranspose1dScratch(cout, kernel))
	for b.Loop() {
		ConvTranspose1d(y, outLen, w, bias, cin, cout, kernel, stride, x, frames, scratch)
	}
	b.ReportMetric(2*float64(cout*kernel*cin*frames)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
