package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/glowvoc/glowvoc/audio"
	"github.com/glowvoc/glowvoc/internal/npy"
	"github.com/glowvoc/glowvoc/melspec"
	"github.com/glowvoc/glowvoc/train"
	"github.com/glowvoc/glowvoc/train/corpus"
	"github.com/glowvoc/glowvoc/vocoder"
)

// The tiny_mel8 reference model, whose fixtures include NVIDIA's training
// checkpoint.
var (
	trainRefDir = filepath.Join(refDir, "waveglow", "tiny_mel8")
	mel8Config  = filepath.Join(trainRefDir, "config.json")
)

// writeTrainBatch writes the audio of tiny_mel8's train.npz ([2, 4000],
// values int16/32768) as two 16-bit WAV files and a filelist naming them,
// and returns the filelist's path and the archive.
func writeTrainBatch(t *testing.T, dir string) (string, map[string]npy.Array) {
	t.Helper()
	a := readNPZ(t, filepath.Join(trainRefDir, "train.npz"))
	T := a["audio"].Shape[1]
	var list strings.Builder
	for b := range a["audio"].Shape[0] {
		name := filepath.Join(dir, "clip"+string(rune('0'+b))+".wav")
		c := audio.Clip{Samples: a["audio"].Data[b*T : (b+1)*T], SampleRate: 22050}
		if err := audio.WriteFile(name, c, audio.PCM16); err != nil {
			t.Fatal(err)
		}
		list.WriteString(name + "\n")
	}
	path := filepath.Join(dir, "train.txt")
	if err := os.WriteFile(path, []byte(list.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, a
}

// readRecords reads a train.jsonl log.
func readRecords(t *testing.T, path string) []train.Record {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []train.Record
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r train.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		recs = append(recs, r)
	}
	return recs
}

// adamTolerance and smallGrad define the comparison with PyTorch after an
// Adam step: |Δ| ≤ adamTolerance, except for elements whose reference
// gradient is below smallGrad in magnitude, where the sign of our
// gradient may differ (README §5's Adam caveat) and only |Δ| ≤ 2·lr is
// required.
const (
	adamTolerance = 1e-6
	smallGrad     = 1e-8
)

// TestTrainResumesNVIDIACheckpoint takes one step from NVIDIA's
// checkpoint.pt on the reference batch, loaded from WAV files by the
// corpus loader, and compares the weights with PyTorch's.
func TestTrainResumesNVIDIACheckpoint(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	list, ref := writeTrainBatch(t, dir)

	// The loader gives back the reference audio exactly, and its mel.
	cfg, err := vocoder.ReadConfigFile(mel8Config)
	if err != nil {
		t.Fatal(err)
	}
	an, err := melspec.NewAnalyzer(cfg.Mel)
	if err != nil {
		t.Fatal(err)
	}
	files, err := corpus.List(list)
	if err != nil {
		t.Fatal(err)
	}
	l, err := corpus.NewLoader(files, an, corpus.Options{BatchSize: 2, SegmentLength: 4000})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := l.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	refMel := ref["mel"]
	nm, F := refMel.Shape[1], refMel.Shape[2]
	for i := range batch.Audio {
		for j, v := range batch.Audio[i] {
			if want := ref["audio"].Data[i*4000+j]; v != want {
				t.Fatalf("clip %d sample %d: %v, want %v", i, j, v, want)
			}
		}
		if batch.Mels[i].NMels != nm || batch.Mels[i].Frames != F {
			t.Fatalf("mel %d is %d×%d, want %d×%d", i, batch.Mels[i].NMels, batch.Mels[i].Frames, nm, F)
		}
		// README §5: log-mel bins above ln(1e-3) within 1e-3, and every
		// bin's exp within 1e-5 of the largest.
		want := refMel.Data[i*nm*F : (i+1)*nm*F]
		var worstLog, worstExp, peak float64
		for j, v := range batch.Mels[i].Data {
			if want[j] > float32(math.Log(1e-3)) {
				worstLog = math.Max(worstLog, math.Abs(float64(v-want[j])))
			}
			worstExp = math.Max(worstExp, math.Abs(math.Exp(float64(v))-math.Exp(float64(want[j]))))
			peak = math.Max(peak, math.Exp(float64(want[j])))
		}
		if worstLog > 1e-3 || worstExp > 1e-5*peak {
			t.Errorf("mel %d: max |Δ| %.3g over bins above ln(1e-3), max |Δexp| %.3g (%.3g of the peak)", i, worstLog, worstExp, worstExp/peak)
		}
		t.Logf("mel %d: max |Δ| %.3g over bins above ln(1e-3), max |Δexp| %.3g of the peak", i, worstLog, worstExp/peak)
	}

	// NVIDIA's train.py names its checkpoints waveglow_<iteration>.
	ckpt := filepath.Join(dir, "waveglow_2")
	b, err := os.ReadFile(filepath.Join(trainRefDir, "checkpoint.pt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ckpt, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "run")
	mustSucceed(t, vocode(t, "train", "--config", mel8Config, "--train-files", list,
		"--resume", ckpt, "--steps", "1",
		"--shuffle=false", "--segment-length", "4000", "--batch-size", "2", "--out", out))

	c, err := train.ReadCheckpoint(filepath.Join(out, "ckpt-00000004.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Iteration != 4 || c.Optimizer.Steps() != 4 {
		t.Errorf("iteration %d, Adam step %d; want 4 and 4 (NVIDIA's iteration 2 done, then one more)", c.Iteration, c.Optimizer.Steps())
	}
	recs := readRecords(t, filepath.Join(out, train.LogName))
	wantLoss := float64(ref["loss"].Data[0])
	if len(recs) != 1 || recs[0].Iteration != 4 || math.Abs(float64(recs[0].Loss)-wantLoss) > 1e-5*math.Abs(wantLoss) {
		t.Errorf("log %+v, want one record of iteration 4 with loss %.9g", recs, wantLoss)
	}

	want := readNPZ(t, filepath.Join(trainRefDir, "after_adam_step_resumed.npz"))
	grads := readNPZ(t, filepath.Join(trainRefDir, "grads.npz"))
	var worst float64
	small, exceptions, total := 0, 0, 0
	for _, p := range c.Model.Params() {
		w, ok := want[p.Name]
		if !ok {
			t.Fatalf("%s: no reference", p.Name)
		}
		for i, v := range p.Value {
			d := math.Abs(float64(v) - float64(w.Data[i]))
			total++
			if math.Abs(float64(grads[p.Name].Data[i])) < smallGrad {
				small++
				if d > adamTolerance {
					exceptions++
				}
				if d > 2*1e-4+adamTolerance {
					t.Errorf("%s[%d]: %v, want %v (gradient %v)", p.Name, i, v, w.Data[i], grads[p.Name].Data[i])
				}
				continue
			}
			worst = math.Max(worst, d)
			if d > adamTolerance {
				t.Errorf("%s[%d]: %v, want %v (|Δ| %.3g)", p.Name, i, v, w.Data[i], d)
			}
		}
	}
	t.Logf("after the step: max |Δ| %.3g over the %d elements with |grad| ≥ %g; %d of the %d others beyond %g", worst, total-small, smallGrad, exceptions, small, adamTolerance)
}

// writeTrainCorpus writes n clips of a voiced test signal at rate Hz
// into dir and a filelist dir/<name>.txt naming them, and returns the
// filelist's path. Lengths vary from 3000 to 9999 samples.
func writeTrainCorpus(t *testing.T, dir, name string, n, rate int) string {
	t.Helper()
	var list strings.Builder
	for i := range n {
		s := make([]float32, 3000+(i*2371)%7000)
		f0 := 100 + 15*float64(i)
		for j := range s {
			ph := 2 * math.Pi * f0 * float64(j) / float64(rate)
			for h := 1; h <= 6; h++ {
				s[j] += float32(0.2 / float64(h) * math.Sin(float64(h)*ph))
			}
		}
		file := filepath.Join(dir, fmt.Sprintf("%s%03d.wav", name, i))
		if err := audio.WriteFile(file, audio.Clip{Samples: s, SampleRate: rate}, audio.PCM16); err != nil {
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

// losses returns the loss and validation NLL columns of a log as exact
// text.
func losses(recs []train.Record) []string {
	var out []string
	for _, r := range recs {
		s := fmt.Sprintf("%d %x %x", r.Iteration, float64(r.Loss), float64(r.GradNorm))
		if r.ValNLL != nil {
			s += fmt.Sprintf(" val %x", float64(*r.ValNLL))
		}
		out = append(out, s)
	}
	return out
}

// TestTrainResume trains 6 iterations in one run, and 3 + 3 with
// --resume in between, and checks that the logs agree bit for bit; then
// exports the model from the checkpoint directory and fine-tunes from
// the export.
func TestTrainResume(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	list := writeTrainCorpus(t, dir, "train", 5, 22050)
	val := writeTrainCorpus(t, dir, "val", 2, 22050)
	common := []string{"train", "--config", mel8Config, "--train-files", list, "--val-files", val,
		"--segment-length", "4000", "--batch-size", "2", "--seed", "3", "--lr", "1e-3",
		"--lr-schedule", "cosine", "--warmup", "2", "--lr-decay-steps", "20", "--checkpoint-every", "2", "--val-every", "2"}
	whole, parts := filepath.Join(dir, "whole"), filepath.Join(dir, "parts")
	mustSucceed(t, vocode(t, append(common, "--out", whole, "--steps", "6")...))
	mustSucceed(t, vocode(t, append(common, "--out", parts, "--steps", "3")...))
	r := vocode(t, "train", "--resume", parts, "--steps", "3")
	mustSucceed(t, r)
	if !strings.Contains(r.stderr, "continuing from "+filepath.Join(parts, "ckpt-00000003.safetensors")) {
		t.Errorf("stderr does not say where the run continues:\n%s", r.stderr)
	}
	want := losses(readRecords(t, filepath.Join(whole, train.LogName)))
	got := losses(readRecords(t, filepath.Join(parts, train.LogName)))
	if strings.Join(got, "\n") != strings.Join(want, "\n") || len(want) != 6 {
		t.Errorf("resumed log:\n%s\nuninterrupted:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, name := range []string{train.PlotName, train.LatestName, "ckpt-00000006.safetensors"} {
		if _, err := os.Stat(filepath.Join(parts, name)); err != nil {
			t.Error(err)
		}
	}

	// A damaged newest checkpoint is passed over for the one before.
	ck6 := filepath.Join(parts, "ckpt-00000006.safetensors")
	if err := os.Truncate(ck6, 1000); err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(dir, "model.safetensors")
	r = vocode(t, "train", "--resume", parts, "--steps", "0", "--export", model)
	mustSucceed(t, r)
	for _, s := range []string{"skipping an unusable checkpoint", ck6, "continuing from " + filepath.Join(parts, "ckpt-00000004.safetensors"), "iteration 4: exported"} {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("stderr does not mention %q:\n%s", s, r.stderr)
		}
	}
	vm, err := vocoder.Load(model, vocoder.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := train.ReadCheckpoint(filepath.Join(whole, "ckpt-00000004.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := c.Model.ExportInference()
	if err != nil {
		t.Fatal(err)
	}
	if vm.Config() != ref.Config() {
		t.Errorf("exported config %+v, want %+v", vm.Config(), ref.Config())
	}
	for name, w := range ref.StateDict() {
		if g := vm.StateDict()[name]; !slices.Equal(g.Data, w.Data) {
			t.Errorf("exported %s differs from the checkpoint's", name)
		}
	}

	// Fine-tuning starts a new run from the exported weights.
	tuned := filepath.Join(dir, "tuned")
	mustSucceed(t, vocode(t, append(common, "--out", tuned, "--steps", "1", "--init-from", model)...))
	if recs := readRecords(t, filepath.Join(tuned, train.LogName)); len(recs) != 1 || recs[0].Iteration != 1 {
		t.Errorf("fine-tuning log %+v", recs)
	}
}

// TestTrainSkipsNonFinite trains on a corpus holding a float WAV with a
// huge sample, whose step overflows: it is skipped and reported.
func TestTrainSkipsNonFinite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	list := writeTrainCorpus(t, dir, "train", 2, 22050)
	bad := filepath.Join(dir, "bad.wav")
	s := make([]float32, 5000)
	s[2500] = 1e30
	if err := audio.WriteFile(bad, audio.Clip{Samples: s, SampleRate: 22050}, audio.Float32); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(list)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(list, append([]byte(bad+"\n"), b...), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	r := vocode(t, "train", "--config", mel8Config, "--train-files", list, "--out", out,
		"--segment-length", "4000", "--batch-size", "1", "--shuffle=false", "--steps", "3")
	mustSucceed(t, r)
	if !strings.Contains(r.stderr, "iteration 1: loss") || !strings.Contains(r.stderr, "step skipped, weights unchanged (files "+bad+")") {
		t.Errorf("stderr does not report the skipped step:\n%s", r.stderr)
	}
	recs := readRecords(t, filepath.Join(out, train.LogName))
	if len(recs) != 3 || !recs[0].Skipped || len(recs[0].Files) != 1 || recs[1].Skipped || recs[2].Skipped {
		t.Errorf("log %+v, want the first step skipped with its file", recs)
	}
	c, err := train.ReadCheckpoint(filepath.Join(out, "ckpt-00000003.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Optimizer.Steps() != 2 {
		t.Errorf("Adam took %d steps, want 2", c.Optimizer.Steps())
	}
}

// TestTrainInterrupt cancels a run once it has logged an iteration: it
// writes a checkpoint of the last completed iteration and reports the
// interruption.
func TestTrainInterrupt(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	list := writeTrainCorpus(t, dir, "train", 3, 22050)
	out := filepath.Join(dir, "out")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if b, err := os.ReadFile(filepath.Join(out, train.LogName)); err == nil && len(b) > 0 {
				cancel()
			}
			time.Sleep(time.Millisecond)
		}
	}()
	r := vocodeCtx(t, ctx, "train", "--config", mel8Config, "--train-files", list, "--out", out,
		"--segment-length", "4000", "--batch-size", "1", "--steps", "500")
	if r.code != exitError || !strings.Contains(r.stderr, "interrupted") {
		t.Fatalf("exit status %d, stderr:\n%s", r.code, r.stderr)
	}
	c, file, _, err := train.OpenCheckpoint(out)
	if err != nil {
		t.Fatal(err)
	}
	recs := readRecords(t, filepath.Join(out, train.LogName))
	if n := int64(len(recs)); c.Iteration != n || recs[n-1].Iteration != n || n >= 500 {
		t.Errorf("checkpoint %s of iteration %d, log of %d records", file, c.Iteration, n)
	}
}

func TestTrainErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	list := writeTrainCorpus(t, dir, "train", 3, 22050)
	list16k := writeTrainCorpus(t, dir, "16k", 3, 16000)
	garbage := filepath.Join(dir, "garbage.safetensors")
	if err := os.WriteFile(garbage, []byte("not a checkpoint"), 0o644); err != nil {
		t.Fatal(err)
	}
	nvidia := filepath.Join(trainRefDir, "checkpoint.pt")
	base := []string{"train", "--config", mel8Config, "--train-files", list, "--segment-length", "4000", "--batch-size", "1"}
	tests := []struct {
		name string
		args []string // OUT is replaced by an output directory
		code int
		msg  []string
	}{
		{"arguments", append(base, "--out", "OUT", "extra"), exitUsage, []string{"no arguments"}},
		{"resume and init-from", append(base, "--out", "OUT", "--resume", nvidia, "--init-from", nvidia), exitUsage, []string{"mutually exclusive"}},
		{"steps 0 without export", append(base, "--steps", "0"), exitUsage, []string{"--export"}},
		{"export extension", append(base, "--steps", "0", "--export", "OUT.npz"), exitUsage, []string{".npz"}},
		{"no config", []string{"train", "--train-files", list, "--out", "OUT"}, exitUsage, []string{"--config is required"}},
		{"no output directory", base, exitUsage, []string{"--out"}},
		{"PyTorch resume without config", []string{"train", "--resume", nvidia, "--out", "OUT"}, exitUsage, []string{"needs --config"}},
		{"bad schedule", append(base, "--out", "OUT", "--lr-schedule", "cosine"), exitUsage, []string{"decay steps"}},
		{"bad segment length", append(base, "--out", "OUT", "--segment-length", "4001"), exitUsage, []string{"segment length 4001"}},
		{"config's training files missing", []string{"train", "--config", mel8Config, "--out", "OUT"}, exitError, []string{"train_files.txt"}},
		{"clip at another rate", append(base, "--out", "OUT", "--train-files", list16k), exitError, []string{"16k00", "sample rate 16000 Hz"}},
		{"garbage checkpoint", []string{"train", "--resume", garbage, "--steps", "0", "--export", "OUT.safetensors"}, exitError, []string{"garbage.safetensors"}},
		{"no checkpoints", []string{"train", "--resume", dir, "--steps", "0", "--export", "OUT.safetensors"}, exitError, []string{"no usable checkpoint"}},
		{"config of another model", append(base, "--config", tinyConfig, "--out", "OUT", "--resume", nvidia), exitError, []string{"checkpoint.pt", "topology"}},
		{"init-from another model", append(base, "--out", "OUT", "--init-from", tinyWeights), exitError, []string{"weights.npz"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			args := make([]string, len(tt.args))
			for i, a := range tt.args {
				args[i] = strings.Replace(a, "OUT", out, 1)
			}
			checkExit(t, vocode(t, args...), tt.code, tt.msg)
		})
	}
}
