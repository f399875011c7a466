package train

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/glowvoc/glowvoc/internal/torchfile"
	"github.com/glowvoc/glowvoc/train/corpus"
)

// trainedCheckpoint returns a tiny_mel8 checkpoint at iteration it whose
// Adam state has taken two steps on random gradients.
func trainedCheckpoint(t *testing.T, it int64) *Checkpoint {
	t.Helper()
	m := refModel(t, "tiny_mel8")
	a := NewAdam(m.Params(), 1e-3)
	r := rand.New(rand.NewPCG(uint64(it), 1))
	for range 2 {
		for _, p := range m.Params() {
			for i := range p.Grad {
				p.Grad[i] = float32(r.NormFloat64())
			}
		}
		if err := a.Update(m.Params()); err != nil {
			t.Fatal(err)
		}
	}
	run := testRun("/corpus/train.txt", "/corpus/val.txt")
	return &Checkpoint{Model: m, Optimizer: a, Run: run, Iteration: it, Position: corpus.Position{Epoch: 3, Index: 4}}
}

// sameCheckpoint compares two checkpoints exactly.
func sameCheckpoint(t *testing.T, got, want *Checkpoint) {
	t.Helper()
	if got.Iteration != want.Iteration || got.Position != want.Position || got.Run != want.Run || got.Model.Config() != want.Model.Config() {
		t.Errorf("got iteration %d, position %+v, run %+v, config %+v;\nwant %d, %+v, %+v, %+v",
			got.Iteration, got.Position, got.Run, got.Model.Config(), want.Iteration, want.Position, want.Run, want.Model.Config())
	}
	for i, p := range want.Model.Params() {
		if q := got.Model.Params()[i]; q.Name != p.Name || !slices.Equal(q.Value, p.Value) {
			t.Errorf("parameter %d: %s differs from %s", i, q.Name, p.Name)
		}
	}
	if (got.Optimizer == nil) != (want.Optimizer == nil) {
		t.Fatalf("optimizer %v, want %v", got.Optimizer != nil, want.Optimizer != nil)
	}
	if want.Optimizer == nil {
		return
	}
	gs, ws := got.Optimizer.State(), want.Optimizer.State()
	if gs.LR != ws.LR || gs.Beta1 != ws.Beta1 || gs.Beta2 != ws.Beta2 || gs.Eps != ws.Eps || gs.Steps != ws.Steps {
		t.Errorf("Adam %+v %+v %+v %+v %d, want %+v %+v %+v %+v %d", gs.LR, gs.Beta1, gs.Beta2, gs.Eps, gs.Steps, ws.LR, ws.Beta1, ws.Beta2, ws.Eps, ws.Steps)
	}
	for name, m := range ws.ExpAvg {
		if !slices.Equal(gs.ExpAvg[name], m) || !slices.Equal(gs.ExpAvgSq[name], ws.ExpAvgSq[name]) {
			t.Errorf("Adam moments of %s differ", name)
		}
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fresh := trainedCheckpoint(t, 0)
	fresh.Optimizer = nil
	for _, c := range []*Checkpoint{trainedCheckpoint(t, 12), fresh} {
		path := filepath.Join(dir, "c.safetensors")
		if err := c.WriteFile(path); err != nil {
			t.Fatal(err)
		}
		got, err := ReadCheckpoint(path)
		if err != nil {
			t.Fatal(err)
		}
		sameCheckpoint(t, got, c)
	}
}

// TestReadCheckpointCorrupt checks that damaged files are refused with a
// clear error.
func TestReadCheckpointCorrupt(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "c.safetensors")
	c := trainedCheckpoint(t, 5)
	if err := c.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(dir, "model.safetensors")
	vm, err := c.Model.ExportInference()
	if err != nil {
		t.Fatal(err)
	}
	if err := vm.Save(model); err != nil {
		t.Fatal(err)
	}
	flipped := slices.Clone(good)
	flipped[len(flipped)-1000] ^= 0x10
	tests := []struct {
		name string
		data []byte // nil: the file at path as is
		file string
		want string
	}{
		{"truncated", good[:len(good)/2], "", "c.safetensors"},
		{"garbage", []byte("not a checkpoint at all, just some text\n"), "", "c.safetensors"},
		{"flipped bit", flipped, "", "checksum"},
		{"empty", []byte{}, "", "c.safetensors"},
		{"inference model", nil, model, "not a glowvoc training checkpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := tt.file
			if file == "" {
				file = filepath.Join(t.TempDir(), "c.safetensors")
				if err := os.WriteFile(file, tt.data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := ReadCheckpoint(file)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

// TestCheckpointDirectory saves a series of checkpoints, checks the
// pruning and the latest pointer, and that OpenCheckpoint passes over
// unusable newest files to the newest usable one.
func TestCheckpointDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".ckpt-00000009.safetensors.tmp-123"), []byte("left by a kill"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, checkpointName(50)), []byte("a later run's"), 0o644); err != nil {
		t.Fatal(err)
	}
	cks := map[int64]*Checkpoint{}
	for _, it := range []int64{10, 20, 30, 40} {
		cks[it] = trainedCheckpoint(t, it)
		path, err := SaveCheckpoint(dir, cks[it], 3)
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(dir, checkpointName(it)); path != want {
			t.Errorf("saved to %s, want %s", path, want)
		}
		latest, err := os.ReadFile(filepath.Join(dir, LatestName))
		if err != nil || string(latest) != checkpointName(it)+"\n" {
			t.Errorf("latest %q (%v) after saving iteration %d", latest, err, it)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{checkpointName(20), checkpointName(30), checkpointName(40), LatestName}; !slices.Equal(names, want) {
		t.Errorf("directory holds %q, want %q", names, want)
	}

	truncate := func(it int64) {
		p := filepath.Join(dir, checkpointName(it))
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, fi.Size()/3); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name        string
		damage      func()
		want        int64 // 0: no usable checkpoint
		wantSkipped int
	}{
		{"intact", func() {}, 40, 0},
		{"newest truncated", func() { truncate(40) }, 30, 1},
		{"latest names a missing file", func() {
			if err := os.WriteFile(filepath.Join(dir, LatestName), []byte("ckpt-00000099.safetensors\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, 30, 2},
		{"no latest", func() {
			if err := os.Remove(filepath.Join(dir, LatestName)); err != nil {
				t.Fatal(err)
			}
		}, 30, 2},
		{"garbage everywhere", func() {
			for _, it := range []int64{20, 30} {
				if err := os.WriteFile(filepath.Join(dir, checkpointName(it)), []byte("garbage"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}, 0, 4},
	}
	for _, st := range steps {
		st.damage()
		c, file, skipped, err := OpenCheckpoint(dir)
		if len(skipped) != st.wantSkipped {
			t.Errorf("%s: skipped %v, want %d", st.name, skipped, st.wantSkipped)
		}
		if st.want == 0 {
			if err == nil || !strings.Contains(err.Error(), "no usable checkpoint") {
				t.Errorf("%s: got %s, %v; want no usable checkpoint", st.name, file, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if file != filepath.Join(dir, checkpointName(st.want)) {
			t.Errorf("%s: read %s, want iteration %d", st.name, file, st.want)
		}
		sameCheckpoint(t, c, cks[st.want])
	}
	if _, _, _, err := OpenCheckpoint(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing directory: %v", err)
	}
}

// TestFromTorch continues NVIDIA's checkpoint.pt: the weights of
// weights_wn.npz, the moments of adam_state.npz, and iteration 2 done
// (counting from 0), so 3 iterations.
func TestFromTorch(t *testing.T) {
	t.Parallel()
	tc, err := torchfile.Load(filepath.Join(refDir("tiny_mel8"), "checkpoint.pt"))
	if err != nil {
		t.Fatal(err)
	}
	run := DefaultRunConfig()
	c, err := FromTorch(tc, refConfig(t, "tiny_mel8"), run)
	if err != nil {
		t.Fatal(err)
	}
	if c.Iteration != 3 || c.Optimizer.Steps() != 3 || c.Run != run {
		t.Errorf("iteration %d, Adam step %d, run %+v", c.Iteration, c.Optimizer.Steps(), c.Run)
	}
	weights := readNPZ(t, "tiny_mel8", "weights_wn.npz")
	adam := readNPZ(t, "tiny_mel8", "adam_state.npz")
	s := c.Optimizer.State()
	for _, p := range c.Model.Params() {
		if !slices.Equal(p.Value, weights[p.Name].Data) {
			t.Errorf("%s differs from weights_wn.npz", p.Name)
		}
		if !slices.Equal(s.ExpAvg[p.Name], adam[p.Name+".exp_avg"].Data) || !slices.Equal(s.ExpAvgSq[p.Name], adam[p.Name+".exp_avg_sq"].Data) {
			t.Errorf("Adam moments of %s differ from adam_state.npz", p.Name)
		}
	}
	tc.Optimizer = nil
	if _, err := FromTorch(tc, refConfig(t, "tiny_mel8"), run); err == nil || !strings.Contains(err.Error(), "no Adam optimizer state") {
		t.Errorf("checkpoint without optimizer: %v", err)
	}
}
