package train

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/glowvoc/glowvoc/audio"
)

// writeCorpus writes n clips of a voiced test signal (harmonics with
// vibrato, plus noise) at 22050 Hz into dir/wavs and a filelist
// dir/<name>.txt naming them, and returns the filelist's path. Clip
// lengths vary from 3000 to 9999 samples, so some are shorter than a
// 4000-sample segment.
func writeCorpus(t testing.TB, dir, name string, n int) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "wavs"), 0o755); err != nil {
		t.Fatal(err)
	}
	var list strings.Builder
	for i := range n {
		r := rand.New(rand.NewPCG(uint64(i), 42))
		s := make([]float32, 3000+(i*2371)%7000)
		f0 := 100 + 15*float64(i)
		for j := range s {
			tt := float64(j) / 22050
			ph := 2 * math.Pi * f0 * (tt + 0.002*math.Sin(2*math.Pi*5*tt))
			v := 0.01 * r.NormFloat64()
			for h := 1; h <= 6; h++ {
				v += 0.2 / float64(h) * math.Sin(float64(h)*ph)
			}
			s[j] = float32(v)
		}
		file := filepath.Join(dir, "wavs", fmt.Sprintf("%s%03d.wav", name, i))
		if err := audio.WriteFile(file, audio.Clip{Samples: s, SampleRate: 22050}, audio.PCM16); err != nil {
			t.Fatal(err)
		}
		list.WriteString(file + "\n")
	}
	path := filepath.Join(dir, name+".txt")
	if err := os.WriteFile(path, []byte(list.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// testRun returns the settings of the small runs of these tests: batches
// of two 4000-sample segments, a checkpoint and a validation every 2
// iterations, a warmup and a cosine schedule (so that the learning rate
// changes every step).
func testRun(trainFiles, valFiles string) RunConfig {
	r := DefaultRunConfig()
	r.TrainFiles, r.ValFiles = trainFiles, valFiles
	r.BatchSize, r.SegmentLength, r.Seed = 2, 4000, 7
	r.CheckpointEvery, r.ValEvery = 2, 2
	r.Schedule = Schedule{Kind: ScheduleCosine, Warmup: 2, DecaySteps: 10, MinLR: 1e-5}
	r.LearningRate = 1e-3
	return r
}

// newTestSession starts a session in dir from c, failing the test on
// error; the session is closed at the end of the test.
func newTestSession(t *testing.T, c *Checkpoint, dir string) *Session {
	t.Helper()
	s, err := NewSession(c, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// freshCheckpoint returns the start of a new tiny_mel8 run.
func freshCheckpoint(t *testing.T, run RunConfig) *Checkpoint {
	t.Helper()
	m, err := New(refConfig(t, "tiny_mel8"), 1)
	if err != nil {
		t.Fatal(err)
	}
	return &Checkpoint{Model: m, Run: run}
}

// sameRecords compares logs bit for bit, ignoring the step times.
func sameRecords(t *testing.T, got, want []Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i := range got {
		if g, w := recordString(got[i]), recordString(want[i]); g != w {
			t.Errorf("record %d:\n got %s\nwant %s", i, g, w)
		}
	}
}

// recordString formats r without its step time, every float exactly.
func recordString(r Record) string {
	val := func(f *Float) string {
		if f == nil {
			return "-"
		}
		return fmt.Sprintf("%x", float64(*f))
	}
	return fmt.Sprintf("iteration %d epoch %d loss %x grad_norm %x lr %x skipped %v files %q val_nll %s val_loss %s",
		r.Iteration, r.Epoch, float64(r.Loss), float64(r.GradNorm), r.LR, r.Skipped, r.Files, val(r.ValNLL), val(r.ValLoss))
}

// TestResumeIsExact trains 6 iterations in one go, and 3 + 3 with a
// resume from the checkpoint directory in between: the losses, gradient
// norms, learning rates, validation NLLs and final weights are
// bit-identical. The 5-clip corpus gives 2 batches per epoch, so the runs
// cross epoch boundaries.
func TestResumeIsExact(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	run := testRun(writeCorpus(t, data, "train", 5), writeCorpus(t, data, "val", 2))
	ctx := context.Background()

	dirA := filepath.Join(t.TempDir(), "a")
	a := newTestSession(t, freshCheckpoint(t, run), dirA)
	if err := a.Train(ctx, 6); err != nil {
		t.Fatal(err)
	}
	want, _, err := readLog(filepath.Join(dirA, LogName), math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}

	dirB := filepath.Join(t.TempDir(), "b")
	b := newTestSession(t, freshCheckpoint(t, run), dirB)
	if err := b.Train(ctx, 3); err != nil {
		t.Fatal(err)
	}
	b.Close()
	c, file, skipped, err := OpenCheckpoint(dirB)
	if err != nil || len(skipped) > 0 || filepath.Base(file) != "ckpt-00000003.safetensors" {
		t.Fatalf("OpenCheckpoint: %v, %s, skipped %v", err, file, skipped)
	}
	b = newTestSession(t, c, dirB)
	if err := b.Train(ctx, 3); err != nil {
		t.Fatal(err)
	}
	got, _, err := readLog(filepath.Join(dirB, LogName), math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	sameRecords(t, got, want)
	for i, r := range want {
		if hasVal := r.ValNLL != nil; hasVal != (r.Iteration%2 == 0) {
			t.Errorf("record %d: %s", i, recordString(r))
		} else if hasVal && float64(*r.ValNLL-*r.ValLoss) != gaussNorm(1) {
			t.Errorf("record %d: val_nll − val_loss = %v, want ½·ln(2π)", i, *r.ValNLL-*r.ValLoss)
		}
	}
	if epochs := []int{want[0].Epoch, want[5].Epoch}; !slices.Equal(epochs, []int{0, 2}) {
		t.Errorf("epochs of the first and last batch %v, want [0 2]", epochs)
	}
	ca, cb := a.Checkpoint(), b.Checkpoint()
	for i, p := range ca.Model.Params() {
		if !slices.Equal(p.Value, cb.Model.Params()[i].Value) {
			t.Errorf("%s differs after the resumed run", p.Name)
		}
	}
	sa, sb := ca.Optimizer.State(), cb.Optimizer.State()
	if sa.Steps != 6 || sb.Steps != 6 || ca.Position != cb.Position {
		t.Errorf("Adam steps %d and %d, positions %+v and %+v", sa.Steps, sb.Steps, ca.Position, cb.Position)
	}
	for name, m := range sa.ExpAvg {
		if !slices.Equal(m, sb.ExpAvg[name]) || !slices.Equal(sa.ExpAvgSq[name], sb.ExpAvgSq[name]) {
			t.Errorf("Adam moments of %s differ", name)
		}
	}

	// Resuming from an earlier checkpoint drops the later records from
	// the log and, at the next checkpoint, the later checkpoints.
	b.Close()
	c, err = ReadCheckpoint(filepath.Join(dirB, "ckpt-00000004.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	b = newTestSession(t, c, dirB)
	if err := b.Train(ctx, 1); err != nil {
		t.Fatal(err)
	}
	got, _, err = readLog(filepath.Join(dirB, LogName), math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	sameRecords(t, got, want[:5])
	if its, err := checkpointFiles(dirB); err != nil || !slices.Equal(its, []int64{3, 4, 5}) {
		t.Errorf("checkpoints %v (%v), want [3 4 5]", its, err)
	}
	if _, err := os.Stat(filepath.Join(dirB, PlotName)); err != nil {
		t.Error(err)
	}
}

// TestSkipNonFinite trains on a corpus with a clip whose huge samples
// (finite, in a float WAV) overflow the gradient: that step is skipped and
// reported with the file, and changes nothing.
func TestSkipNonFinite(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	list := writeCorpus(t, data, "train", 3)
	bad := filepath.Join(data, "bad.wav")
	s := make([]float32, 5000)
	for i := range s {
		s[i] = float32(0.1 * math.Sin(float64(i)/10))
	}
	s[2500] = 1e30
	if err := audio.WriteFile(bad, audio.Clip{Samples: s, SampleRate: 22050}, audio.Float32); err != nil {
		t.Fatal(err)
	}
	files, err := os.ReadFile(list)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(files), "\n")
	lines = slices.Insert(lines, 1, bad+"\n")
	if err := os.WriteFile(list, []byte(strings.Join(lines, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	run := testRun(list, "")
	run.BatchSize, run.Shuffle = 1, false
	sess := newTestSession(t, freshCheckpoint(t, run), t.TempDir())
	var msgs []string
	sess.Logf = func(format string, args ...any) { msgs = append(msgs, fmt.Sprintf(format, args...)) }
	var recs []Record
	sess.OnStep = func(r Record) { recs = append(recs, r) }
	ctx := context.Background()
	if err := sess.Train(ctx, 1); err != nil {
		t.Fatal(err)
	}
	before := sess.trainer.Model.StateDict()
	if err := sess.Train(ctx, 1); err != nil {
		t.Fatal(err)
	}
	for name, p := range before {
		if !slices.Equal(p.Data, sess.trainer.Model.Param(name).Value) {
			t.Errorf("%s changed in the skipped step", name)
		}
	}
	if err := sess.Train(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || recs[0].Skipped || !recs[1].Skipped || recs[2].Skipped || !slices.Equal(recs[1].Files, []string{bad}) {
		t.Fatalf("records %+v, want the second skipped with file %s", recs, bad)
	}
	if !math.IsNaN(float64(recs[1].GradNorm)) && !math.IsInf(float64(recs[1].GradNorm), 0) {
		t.Errorf("skipped step's gradient norm %v", recs[1].GradNorm)
	}
	if n := sess.trainer.Optimizer.Steps(); n != 2 || sess.Iteration() != 3 {
		t.Errorf("Adam steps %d, iterations %d; want 2 and 3", n, sess.Iteration())
	}
	if !slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(m, "skipped") && strings.Contains(m, bad) }) {
		t.Errorf("messages %q do not report the skipped step with its file", msgs)
	}
}

func TestNewSessionErrors(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	list := writeCorpus(t, data, "train", 3)
	wrongRate := filepath.Join(data, "16k.wav")
	if err := audio.WriteFile(wrongRate, audio.Clip{Samples: make([]float32, 8000), SampleRate: 16000}, audio.PCM16); err != nil {
		t.Fatal(err)
	}
	wrongList := filepath.Join(data, "wrong.txt")
	if err := os.WriteFile(wrongList, []byte(wrongRate+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	used := t.TempDir()
	s := newTestSession(t, freshCheckpoint(t, testRun(list, "")), used)
	if _, err := s.Save(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(r *RunConfig)
		dir  string
		want string
	}{
		{"no training files", func(r *RunConfig) { r.TrainFiles = "" }, "", "no training files"},
		{"fewer clips than a batch", func(r *RunConfig) { r.BatchSize = 4 }, "", "fewer than one batch"},
		{"segment not a multiple of n_group", func(r *RunConfig) { r.SegmentLength = 4001 }, "", "segment length 4001"},
		{"validation clip at another rate", func(r *RunConfig) { r.ValFiles = wrongList }, "", "16k.wav: sample rate 16000 Hz"},
		{"bad schedule", func(r *RunConfig) { r.Schedule.Kind = "linear" }, "", `"linear"`},
		{"directory of another run", func(*RunConfig) {}, used, "already holds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := testRun(list, "")
			tt.edit(&run)
			dir := tt.dir
			if dir == "" {
				dir = t.TempDir()
			}
			s, err := NewSession(freshCheckpoint(t, run), dir)
			if err == nil {
				s.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}
