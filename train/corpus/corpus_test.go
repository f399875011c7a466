package corpus

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/glowvoc/glowvoc/audio"
	"github.com/glowvoc/glowvoc/melspec"
)

// writeClip writes a WAV of n samples of a tone identified by id.
func writeClip(t *testing.T, path string, n, rate, id int) {
	t.Helper()
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(0.3 * math.Sin(float64(i)*0.01*float64(id+1)))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := audio.WriteFile(path, audio.Clip{Samples: s, SampleRate: rate}, audio.PCM16); err != nil {
		t.Fatal(err)
	}
}

func TestList(t *testing.T) {
	dir := t.TempDir()
	for i, name := range []string{"b.wav", "a.wav", "sub/c.WAV"} {
		writeClip(t, filepath.Join(dir, "wavs", name), 100, 22050, i)
	}
	if err := os.WriteFile(filepath.Join(dir, "wavs", "notes.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	wav := func(names ...string) []string {
		var out []string
		for _, n := range names {
			out = append(out, filepath.Join(dir, "wavs", n))
		}
		return out
	}
	tests := []struct {
		name, source string
		want         []string
		err          string
	}{
		{"directory", filepath.Join(dir, "wavs"), wav("a.wav", "b.wav", "sub/c.WAV"), ""},
		{"filelist", write("train.txt", "# comment\nwavs/b.wav\n\n  wavs/a.wav|some text\n"), wav("b.wav", "a.wav"), ""},
		{"metadata.csv", write("metadata.csv", "b|Hello.|Hello.\na|Two, \"quoted\"|Two\n"), wav("b.wav", "a.wav"), ""},
		{"missing file", write("bad.txt", "wavs/a.wav\nwavs/zzz.wav\n"), nil, "zzz.wav"},
		{"empty", write("empty.txt", "\n# nothing\n"), nil, "no WAV files"},
		{"no source", filepath.Join(dir, "nope.txt"), nil, "nope.txt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := List(tc.source)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, %v; want an error mentioning %q", got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// testCorpus writes clips of the given lengths and returns their paths.
func testCorpus(t *testing.T, lengths ...int) []string {
	dir := t.TempDir()
	var files []string
	for i, n := range lengths {
		p := filepath.Join(dir, string(rune('a'+i))+".wav")
		writeClip(t, p, n, 22050, i)
		files = append(files, p)
	}
	return files
}

func analyzer(t *testing.T) *melspec.Analyzer {
	an, err := melspec.NewAnalyzer(melspec.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return an
}

func collect(t *testing.T, l *Loader, n int) []Batch {
	t.Helper()
	var out []Batch
	for i := 0; i < n; i++ {
		b, err := l.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func sameBatches(a, b []Batch) bool {
	return slices.EqualFunc(a, b, func(x, y Batch) bool {
		return slices.Equal(x.Files, y.Files) && x.Next == y.Next &&
			slices.EqualFunc(x.Audio, y.Audio, slices.Equal[[]float32])
	})
}

func TestLoaderSegments(t *testing.T) {
	const seg = 4000
	files := testCorpus(t, seg, 9000, 1500, 6000)
	l, err := NewLoader(files, analyzer(t), Options{BatchSize: 2, SegmentLength: seg, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	bs := collect(t, l, 3) // 2 batches per epoch, then the second epoch
	if !slices.Equal(bs[0].Files, files[:2]) || !slices.Equal(bs[1].Files, files[2:]) || !slices.Equal(bs[2].Files, files[:2]) {
		t.Fatalf("unshuffled order: %q %q %q", bs[0].Files, bs[1].Files, bs[2].Files)
	}
	clip := func(i int) []float32 {
		c, err := audio.DecodeFile(files[i])
		if err != nil {
			t.Fatal(err)
		}
		return c.Samples
	}
	// A clip exactly one segment long is used whole.
	if !slices.Equal(bs[0].Audio[0], clip(0)) {
		t.Error("exact-length clip not used whole")
	}
	// A longer clip yields a contiguous segment of it.
	long := clip(1)
	found := false
	for s := 0; s+seg <= len(long) && !found; s++ {
		found = slices.Equal(bs[0].Audio[1], long[s:s+seg])
	}
	if !found {
		t.Error("segment of the long clip is not a contiguous piece of it")
	}
	// A short clip is zero-padded.
	short := bs[1].Audio[0]
	if !slices.Equal(short[:1500], clip(2)) || slices.ContainsFunc(short[1500:], func(v float32) bool { return v != 0 }) {
		t.Error("short clip not zero-padded at the end")
	}
	// Mels are those of the segments: seg/hop + 1 frames.
	an := analyzer(t)
	for _, b := range bs {
		for i, a := range b.Audio {
			want, err := an.Mel(a)
			if err != nil {
				t.Fatal(err)
			}
			if b.Mels[i].Frames != seg/256+1 || !slices.Equal(b.Mels[i].Data, want.Data) {
				t.Errorf("mel of %s is not the mel of its segment", b.Files[i])
			}
		}
	}
	// Another epoch draws other offsets.
	if slices.Equal(bs[0].Audio[1], bs[2].Audio[1]) {
		t.Error("the long clip's offset repeated across epochs")
	}
}

func TestLoaderResume(t *testing.T) {
	files := testCorpus(t, 5000, 7000, 6000, 8000, 4500)
	for _, shuffle := range []bool{false, true} {
		opts := Options{BatchSize: 2, SegmentLength: 4096, Seed: 42, Shuffle: shuffle}
		l, err := NewLoader(files, analyzer(t), opts)
		if err != nil {
			t.Fatal(err)
		}
		whole := collect(t, l, 7)
		r, _ := NewLoader(files, analyzer(t), opts)
		r.Seek(whole[2].Next)
		if rest := collect(t, r, 4); !sameBatches(rest, whole[3:]) {
			t.Errorf("shuffle=%v: resumed sequence differs", shuffle)
		}
		again, _ := NewLoader(files, analyzer(t), opts)
		if !sameBatches(collect(t, again, 7), whole) {
			t.Errorf("shuffle=%v: sequence not deterministic", shuffle)
		}
		// Prefetching yields the same sequence.
		p, _ := NewLoader(files, analyzer(t), opts)
		ctx, cancel := context.WithCancel(context.Background())
		ch := Prefetch(ctx, p, 2)
		var pre []Batch
		for range 7 {
			res := <-ch
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			pre = append(pre, res.Batch)
		}
		cancel()
		if !sameBatches(pre, whole) {
			t.Errorf("shuffle=%v: prefetched sequence differs", shuffle)
		}
	}
}

func TestLoaderShuffle(t *testing.T) {
	files := testCorpus(t, 5000, 5000, 5000, 5000, 5000, 5000)
	l, err := NewLoader(files, analyzer(t), Options{BatchSize: 3, SegmentLength: 4096, Seed: 9, Shuffle: true})
	if err != nil {
		t.Fatal(err)
	}
	bs := collect(t, l, 4)
	e0 := append(slices.Clone(bs[0].Files), bs[1].Files...)
	e1 := append(slices.Clone(bs[2].Files), bs[3].Files...)
	if slices.Equal(e0, e1) {
		t.Error("two epochs in the same order")
	}
	for _, e := range [][]string{e0, e1} {
		s := slices.Clone(e)
		slices.Sort(s)
		if !slices.Equal(s, files) {
			t.Errorf("epoch %q is not a permutation of the corpus", e)
		}
	}
}

func TestLoaderErrors(t *testing.T) {
	files := testCorpus(t, 5000, 5000)
	an := analyzer(t)
	for _, opts := range []Options{
		{BatchSize: 0, SegmentLength: 4000},
		{BatchSize: 3, SegmentLength: 4000},
		{BatchSize: 1, SegmentLength: 100},
	} {
		if _, err := NewLoader(files, an, opts); err == nil {
			t.Errorf("options %+v accepted", opts)
		}
	}
	// A clip at another sample rate is an error naming the file.
	odd := filepath.Join(t.TempDir(), "odd.wav")
	writeClip(t, odd, 5000, 16000, 0)
	l, err := NewLoader([]string{files[0], odd}, an, Options{BatchSize: 2, SegmentLength: 4000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Next(context.Background()); err == nil || !strings.Contains(err.Error(), "odd.wav") || !strings.Contains(err.Error(), "16000") {
		t.Errorf("got %v, want an error naming odd.wav and its rate", err)
	}
}
