package vocoder

import (
	"context"
	"fmt"
	"math"

	"github.com/glowvoc/glowvoc/melspec"
)

// StreamOptions configures chunked synthesis. Zero values select the
// defaults documented on each field.
type StreamOptions struct {
	SynthesizeOptions

	// FirstChunkFrames is the length of the first chunk in mel frames
	// (default 16: about 0.19 s of audio at 22.05 kHz), kept short so the
	// first audio arrives quickly.
	FirstChunkFrames int
	// ChunkFrames is the length of every later chunk (default 96).
	ChunkFrames int
	// ContextFrames is how many extra mel frames each chunk sees on either
	// side and then discards (default: the model's receptive field, at
	// most 16 frames). With the receptive field covered, chunked audio
	// equals whole-utterance audio to float rounding.
	ContextFrames int
	// CrossfadeFrames is the length of the raised-cosine cross-fade at
	// each join (default 2 frames). Must not exceed ContextFrames and half
	// of the smallest chunk.
	CrossfadeFrames int
}

// ReceptiveFrames returns the number of mel frames on either side of a
// sample that can influence it: the WN dilations of every flow plus the
// upsampling kernel.
func (m *Model) ReceptiveFrames() int {
	c := m.cfg
	cols := c.Flows * ((1 << c.WN.Layers) - 1) * (c.WN.KernelSize - 1) / 2
	return (cols*c.Group+c.Mel.Hop-1)/c.Mel.Hop + (c.UpsampleKernel+c.Mel.Hop-1)/c.Mel.Hop
}

func (m *Model) streamDefaults(o StreamOptions) (StreamOptions, error) {
	if o.FirstChunkFrames == 0 {
		o.FirstChunkFrames = 16
	}
	if o.ChunkFrames == 0 {
		o.ChunkFrames = 96
	}
	if o.ContextFrames == 0 {
		o.ContextFrames = min(m.ReceptiveFrames(), 16)
	}
	if o.CrossfadeFrames == 0 {
		o.CrossfadeFrames = min(2, o.ContextFrames)
	}
	switch {
	case o.FirstChunkFrames < 1 || o.ChunkFrames < 1:
		return o, fmt.Errorf("chunk lengths %d and %d must be positive", o.FirstChunkFrames, o.ChunkFrames)
	case o.ContextFrames < 0 || o.CrossfadeFrames < 0:
		return o, fmt.Errorf("context %d and cross-fade %d must not be negative", o.ContextFrames, o.CrossfadeFrames)
	case o.CrossfadeFrames > o.ContextFrames:
		return o, fmt.Errorf("cross-fade of %d frames exceeds the context of %d", o.CrossfadeFrames, o.ContextFrames)
	case 2*o.CrossfadeFrames > min(o.FirstChunkFrames, o.ChunkFrames):
		return o, fmt.Errorf("cross-fade of %d frames is more than half a chunk", o.CrossfadeFrames)
	}
	return o, nil
}

// SynthesizeStream synthesises mel chunk by chunk and calls emit with
// consecutive pieces of audio as soon as each is final; the pieces
// concatenate to Samples(mel.Frames) samples. Each chunk is synthesised
// with ContextFrames of extra mel on both sides and the same latent noise
// the whole utterance would use (so a seed means the same thing as in
// Synthesize), and neighbouring chunks are joined with a raised-cosine
// cross-fade. A mel no longer than the first chunk gives exactly
// Synthesize's output. emit's slice is only valid during the call; an
// error from emit stops the synthesis and is returned.
func (m *Model) SynthesizeStream(ctx context.Context, mel melspec.Spectrogram, opts StreamOptions, emit func(audio []float32) error) error {
	opts, err := m.streamDefaults(opts)
	if err != nil {
		return err
	}
	w := m.workspace()
	defer m.release(w)
	if err := m.latent(w, mel, opts.SynthesizeOptions); err != nil { // checks mel too
		return err
	}
	z := w.z
	F, hop, G := mel.Frames, m.cfg.Mel.Hop, m.cfg.Group
	if F <= opts.FirstChunkFrames {
		w.audio = grow(w.audio, m.Samples(F))
		if err := m.synthesize(ctx, w, mel, z, w.audio); err != nil {
			return err
		}
		return emit(w.audio)
	}
	cols := len(z) / G
	fade := opts.CrossfadeFrames * hop
	half := fade / 2
	w.ramp = grow(w.ramp, fade) // weight of the later chunk across the join
	ramp := w.ramp
	for i := range ramp {
		ramp[i] = float32(0.5 - 0.5*math.Cos(math.Pi*(float64(i)+0.5)/float64(fade)))
	}
	tail := w.tail[:0] // the previous chunk's audio over the current join
	joined := false    // whether tail holds a join's audio
	// The longest chunk: a join is never closer to the end than a cross-fade.
	maxChunk := min(F, max(opts.FirstChunkFrames, opts.ChunkFrames)+opts.CrossfadeFrames+2*opts.ContextFrames)
	w.audio = grow(w.audio, m.Samples(maxChunk))
	w.subZ = grow(w.subZ, m.Samples(maxChunk))
	w.subMel = grow(w.subMel, mel.NMels*maxChunk)
	subZ, subData := w.subZ, w.subMel
	for start := 0; start < F; {
		end := min(F, start+opts.ChunkFrames)
		if start == 0 {
			end = opts.FirstChunkFrames
		}
		if F-end < opts.CrossfadeFrames {
			end = F // no join closer to the end than a cross-fade
		}
		lo, hi := max(0, start-opts.ContextFrames), min(F, end+opts.ContextFrames)
		sub := subMel(subData, mel, lo, hi)
		subCols := (hi - lo) * hop / G
		for j := 0; j < G; j++ {
			copy(subZ[j*subCols:(j+1)*subCols], z[j*cols+lo*hop/G:])
		}
		audio := w.audio[:m.Samples(hi-lo)]
		if err := m.synthesize(ctx, w, sub, subZ[:G*subCols], audio); err != nil {
			return err
		}
		// Sample s of the utterance is audio[s-off].
		off := lo * hop
		from := start * hop
		if joined {
			mixed := audio[from-half-off : from+half-off]
			for i := range mixed {
				mixed[i] = tail[i] + ramp[i]*(mixed[i]-tail[i])
			}
			from -= half
		}
		to := end * hop
		if end < F {
			to -= half
			tail = append(tail[:0], audio[to-off:to+fade-off]...)
			w.tail, joined = tail, true
		}
		if err := emit(audio[from-off : to-off]); err != nil {
			return err
		}
		start = end
	}
	return nil
}

// subMel returns frames [lo, hi) of mel, stored in buf.
func subMel(buf []float32, mel melspec.Spectrogram, lo, hi int) melspec.Spectrogram {
	n := hi - lo
	out := melspec.Spectrogram{NMels: mel.NMels, Frames: n, Data: buf[:mel.NMels*n]}
	for c := 0; c < mel.NMels; c++ {
		copy(out.Data[c*n:(c+1)*n], mel.Data[c*mel.Frames+lo:])
	}
	return out
}
