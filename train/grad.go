package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/glowvoc/glowvoc/melspec"
)

// Example is one training item: an audio segment and the mel spectrogram
// computed from it (NVIDIA's Mel2Samp pairs a segment_length segment with
// its own mel, segment_length/hop + 1 frames).
type Example struct {
	Mel   melspec.Spectrogram
	Audio []float32
}

// Gradients evaluates NVIDIA's WaveGlowLoss with noise level sigma on the
// batch and sets every parameter's Grad to the loss's gradient; it returns
// the loss. The loss is
//
//	(Σz²/(2σ²) − Σ log s − Σ_k columns·log|det W_k|) / N
//
// summed over the batch, N being the number of latent elements (the total
// audio samples). Each item's audio length must be a positive multiple of
// the group size, covered by its mel: at most (Frames−1)·Hop +
// UpsampleKernel samples. Items may differ in length.
//
// A non-finite loss or gradient is returned as it is, not as an error:
// callers decide (Trainer.Step skips such steps).
func (m *Model) Gradients(ctx context.Context, batch []Example, sigma float64) (float64, error) {
	return m.run(ctx, batch, sigma, true)
}

// Loss evaluates the loss of Gradients without computing gradients (the
// parameters' Grad are left alone), e.g. on validation data.
func (m *Model) Loss(ctx context.Context, batch []Example, sigma float64) (float64, error) {
	return m.run(ctx, batch, sigma, false)
}

// checkBatch validates a batch and returns its total column count.
func (m *Model) checkBatch(batch []Example, sigma float64) (int, error) {
	if len(batch) == 0 {
		return 0, errors.New("train: empty batch")
	}
	if !(sigma > 0) || math.IsInf(sigma, 0) {
		return 0, fmt.Errorf("train: sigma %v must be positive and finite", sigma)
	}
	cfg := m.cfg
	cols := 0
	for i, ex := range batch {
		if ex.Mel.NMels != cfg.NMels {
			return 0, fmt.Errorf("train: item %d: mel has %d channels, the model %d", i, ex.Mel.NMels, cfg.NMels)
		}
		if ex.Mel.Frames < 1 {
			return 0, fmt.Errorf("train: item %d: mel has no frames", i)
		}
		if err := ex.Mel.Validate(); err != nil {
			return 0, fmt.Errorf("train: item %d: %w", i, err)
		}
		T := len(ex.Audio)
		if T == 0 || T%cfg.Group != 0 {
			return 0, fmt.Errorf("train: item %d: audio length %d must be a positive multiple of n_group %d", i, T, cfg.Group)
		}
		if maxLen := (ex.Mel.Frames-1)*cfg.Mel.Hop + cfg.UpsampleKernel; T > maxLen {
			return 0, fmt.Errorf("train: item %d: audio has %d samples, more than the %d that %d mel frames cover", i, T, maxLen, ex.Mel.Frames)
		}
		for j, v := range ex.Audio {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return 0, fmt.Errorf("train: item %d: audio sample %d is not finite", i, j)
			}
		}
		cols += T / cfg.Group
	}
	return cols, nil
}

// run evaluates the loss of batch and, with grad, its gradients.
func (m *Model) run(ctx context.Context, batch []Example, sigma float64, grad bool) (float64, error) {
	cols, err := m.checkBatch(batch, sigma)
	if err != nil {
		return 0, err
	}
	if err := m.prepare(); err != nil {
		return 0, err
	}
	N := float64(cols * m.cfg.Group)
	dzScale, invN := float32(1/(sigma*sigma*N)), float32(1/N)

	nw := min(max(m.opts.Workers, 1), len(batch))
	for len(m.workers) < nw {
		m.workers = append(m.workers, &worker{})
	}
	store := grad && !m.opts.Recompute
	tapes := 1
	if store {
		tapes = m.cfg.Flows
	}
	zz := make([]float64, len(batch))
	logS := make([]float64, len(batch))
	// Worker i takes items i, i+nw, ...: a fixed assignment, so the
	// gradient sums are the same on every run.
	process := func(wi int) error {
		w := m.workers[wi]
		if grad {
			if w.acc == nil {
				w.acc = newGradAcc(m)
			}
			clear(w.acc.buf)
		}
		for b := wi; b < len(batch); b += nw {
			if err := ctx.Err(); err != nil {
				return err
			}
			ex := batch[b]
			w.resize(m, len(ex.Audio)/m.cfg.Group, ex.Mel.Frames, tapes, grad)
			w.forward(m, ex, store)
			zz[b], logS[b] = w.zz, w.logS
			if grad {
				w.backward(m, ex, store, dzScale, invN)
			}
		}
		return nil
	}
	if nw == 1 {
		err = process(0)
	} else {
		errs := make([]error, nw)
		var wg sync.WaitGroup
		for wi := 0; wi < nw; wi++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[wi] = process(wi)
			}()
		}
		wg.Wait()
		for _, e := range errs {
			if e != nil {
				err = e
				break
			}
		}
	}
	if err != nil {
		return 0, err
	}

	var sumZZ, sumLogS, sumLogDet float64
	for b := range batch {
		sumZZ += zz[b]
		sumLogS += logS[b]
	}
	for _, fw := range m.wts.flows {
		sumLogDet += fw.logDet
	}
	loss := (sumZZ/(2*sigma*sigma) - sumLogS - float64(cols)*sumLogDet) / N
	if grad {
		acc := m.workers[0].acc
		reduce(acc.buf, m.workers[1:nw])
		m.setGrads(acc)
	}
	return loss, nil
}

// setGrads converts the summed accumulator into the parameters' Grad,
// adding the log-determinant terms of the 1x1 convolutions.
func (m *Model) setGrads(acc *gradAcc) {
	cfg := m.cfg
	C, L, K := cfg.WN.Channels, cfg.WN.Layers, cfg.WN.KernelSize
	nc := cfg.NMels * cfg.Group
	copy(m.upW.Grad, acc.upW)
	copy(m.upB.Grad, acc.upB)
	// d(−columns·Σ log|det W|/N)/dW = −(columns/N)·W⁻ᵀ, columns/N = 1/Group.
	logDetScale := -1 / float64(cfg.Group)
	scratch := m.wts.scratch
	for k := range m.flows {
		f, g, fw := &m.flows[k], &acc.flows[k], &m.wts.flows[k]
		for i := 0; i < L; i++ {
			// Taps [K][C × 2C] (transposed) back to the weight's [2C, C, K].
			dw := grow(scratch, 2*C*C*K)
			for j := 0; j < K; j++ {
				tap := g.inWT[i][j*2*C*C:]
				for in := 0; in < C; in++ {
					for o := 0; o < 2*C; o++ {
						dw[(o*C+in)*K+j] = tap[in*2*C+o]
					}
				}
			}
			weightNormBackward(f.in[i], dw)
			copy(f.in[i].bias.Grad, g.inB[i])
			copy(f.cond.bias.Grad[2*C*i:2*C*(i+1)], g.inB[i])
			weightNormBackward(f.resSkip[i], g.rsW[i])
			copy(f.resSkip[i].bias.Grad, g.rsB[i])
			scratch = dw
		}
		weightNormBackward(f.start, g.startW)
		copy(f.start.bias.Grad, g.startB)
		copy(f.endW.Grad, g.endW)
		copy(f.endB.Grad, g.endB)
		dw := grow(scratch, nc*2*C*L)
		transpose(dw, nc, g.condWT, 2*C*L, nc, 2*C*L)
		weightNormBackward(f.cond, dw)
		scratch = dw
		for i, v := range g.convW {
			f.convinv.Grad[i] = float32(float64(v) + logDetScale*fw.wInvT[i])
		}
	}
	m.wts.scratch = scratch
}

// reduce adds the accumulators of workers into sum, element by element in
// worker order (so the result does not depend on the number of threads),
// split over up to GOMAXPROCS goroutines.
func reduce(sum []float32, workers []*worker) {
	if len(workers) == 0 {
		return
	}
	parts := max(1, min(runtime.GOMAXPROCS(0), len(sum)>>16))
	var wg sync.WaitGroup
	for p := range parts {
		lo, hi := len(sum)*p/parts, len(sum)*(p+1)/parts
		wg.Add(1)
		go func() {
			defer wg.Done()
			dst := sum[lo:hi]
			for _, w := range workers {
				for i, v := range w.acc.buf[lo:hi] {
					dst[i] += v
				}
			}
		}()
	}
	wg.Wait()
}
