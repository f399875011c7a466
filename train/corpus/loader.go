package corpus

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/glowvoc/glowvoc/audio"
	"github.com/glowvoc/glowvoc/melspec"
)

// Batch is one training batch: equal-length audio segments and their mel
// spectrograms, with the files they came from.
type Batch struct {
	Audio [][]float32
	Mels  []melspec.Spectrogram
	Files []string
	// Next is the loader's position after this batch: a loader sought to
	// it continues with the batch that followed this one.
	Next Position
}

// Position is a point in a loader's sequence of batches.
type Position struct {
	Epoch int `json:"epoch"`
	Index int `json:"index"` // clips of the epoch already used
}

// Options configure a Loader.
type Options struct {
	BatchSize     int
	SegmentLength int // samples per segment (NVIDIA's segment_length)
	Seed          uint64
	// Shuffle takes the clips in a new random order every epoch; without
	// it they are taken in list order.
	Shuffle bool
}

// Loader cuts clips into batches of segments, as NVIDIA's mel2samp.py
// does: a clip at least SegmentLength long yields one segment starting at
// a uniformly random offset (a clip exactly that long is used whole), a
// shorter one is zero-padded at the end; the mel is computed from the
// segment. The incomplete last batch of an epoch is dropped (drop_last).
//
// The sequence is a pure function of the files, the options and the seed:
// each epoch's order and each segment's offset are drawn from generators
// seeded by (seed, epoch) and (seed, epoch, index), so a Position is all
// it takes to resume exactly. A Loader is not safe for concurrent use.
type Loader struct {
	files []string
	an    *melspec.Analyzer
	opts  Options
	pos   Position
	order []int // clip order of pos.Epoch
}

// NewLoader returns a loader over files, which must be at the sample rate
// of an's configuration, with mels from an.
func NewLoader(files []string, an *melspec.Analyzer, opts Options) (*Loader, error) {
	switch {
	case opts.BatchSize < 1:
		return nil, fmt.Errorf("batch size %d must be positive", opts.BatchSize)
	case opts.SegmentLength <= an.Config().NFFT/2:
		return nil, fmt.Errorf("segment length %d must exceed half the FFT size, %d", opts.SegmentLength, an.Config().NFFT/2)
	case len(files) < opts.BatchSize:
		return nil, fmt.Errorf("%d files are fewer than one batch of %d", len(files), opts.BatchSize)
	}
	l := &Loader{files: files, an: an, opts: opts}
	l.Seek(Position{})
	return l, nil
}

// Seek moves the loader to p.
func (l *Loader) Seek(p Position) {
	l.pos = p
	l.order = l.order[:0]
	for i := range l.files {
		l.order = append(l.order, i)
	}
	if l.opts.Shuffle {
		r := rand.New(rand.NewPCG(l.opts.Seed, uint64(p.Epoch)))
		r.Shuffle(len(l.order), func(i, j int) { l.order[i], l.order[j] = l.order[j], l.order[i] })
	}
}

// Position returns where the loader is.
func (l *Loader) Position() Position { return l.pos }

// Next loads the next batch.
func (l *Loader) Next(ctx context.Context) (Batch, error) {
	if l.pos.Index+l.opts.BatchSize > len(l.files) {
		l.Seek(Position{Epoch: l.pos.Epoch + 1})
	}
	var b Batch
	for i := 0; i < l.opts.BatchSize; i++ {
		if err := ctx.Err(); err != nil {
			return Batch{}, err
		}
		file := l.files[l.order[l.pos.Index]]
		seg, mel, err := l.segment(file, l.pos)
		if err != nil {
			return Batch{}, err
		}
		b.Audio = append(b.Audio, seg)
		b.Mels = append(b.Mels, mel)
		b.Files = append(b.Files, file)
		l.pos.Index++
	}
	b.Next = l.pos
	return b, nil
}

// segment loads one clip and cuts the segment for position p.
func (l *Loader) segment(file string, p Position) ([]float32, melspec.Spectrogram, error) {
	clip, err := audio.DecodeFile(file)
	if err != nil {
		return nil, melspec.Spectrogram{}, err
	}
	if rate := l.an.Config().SampleRate; clip.SampleRate != rate {
		return nil, melspec.Spectrogram{}, fmt.Errorf("%s: sample rate %d Hz, the model's is %d Hz (resample the corpus, e.g. sox in.wav -r %d out.wav)", file, clip.SampleRate, rate, rate)
	}
	n := l.opts.SegmentLength
	seg := make([]float32, n)
	if len(clip.Samples) >= n {
		r := rand.New(rand.NewPCG(l.opts.Seed^0x7365676d656e74, uint64(p.Epoch)<<32|uint64(p.Index))) // "segment"
		start := r.IntN(len(clip.Samples) - n + 1)
		copy(seg, clip.Samples[start:])
	} else {
		copy(seg, clip.Samples)
	}
	mel, err := l.an.Mel(seg)
	if err != nil {
		return nil, melspec.Spectrogram{}, fmt.Errorf("%s: %w", file, err)
	}
	return seg, mel, nil
}

// Prefetch loads batches from l in the background, up to depth ahead, so
// that loading overlaps training. Receive from the returned channel; a
// failed load is delivered as an error and ends the stream. Cancel ctx to
// stop it. l must not be used by anything else meanwhile.
func Prefetch(ctx context.Context, l *Loader, depth int) <-chan Result {
	ch := make(chan Result, depth)
	go func() {
		defer close(ch)
		for {
			b, err := l.Next(ctx)
			select {
			case ch <- Result{Batch: b, Err: err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return ch
}

// Result is a batch or the error that ended a Prefetch stream.
type Result struct {
	Batch Batch
	Err   error
}
