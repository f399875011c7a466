package torchfile

import (
	"archive/zip"
	"bytes"
	"path/filepath"
	"reflect"
	"testing"
)

const (
	refDir     = "../../testdata/reference/waveglow/tiny_mel8"
	fixtureDir = "../../testdata/torch"
)

// checkTensors compares a checkpoint's names (in order) and tensors (bit for
// bit) with an npz archive.
func checkTensors(t *testing.T, ck *Checkpoint, npz string) {
	t.Helper()
	want := readNPZ(t, npz)
	if len(ck.Names) != len(want) || len(ck.Tensors) != len(want) {
		t.Fatalf("%d names, %d tensors, want %d", len(ck.Names), len(ck.Tensors), len(want))
	}
	for i, w := range want {
		if ck.Names[i] != w.name {
			t.Fatalf("Names[%d] = %q, want %q", i, ck.Names[i], w.name)
		}
		if err := equalTensor(ck.Tensors[w.name], w); err != nil {
			t.Errorf("%s: %v", w.name, err)
		}
	}
}

func TestLoadReferenceCheckpoints(t *testing.T) {
	attrs := map[string]any{
		"n_flows":                   4,
		"n_group":                   8,
		"n_early_every":             2,
		"n_early_size":              2,
		"n_remaining_channels":      6,
		"WN.0.n_layers":             2,
		"WN.0.n_channels":           8,
		"upsample.kernel_size":      []int{1024},
		"upsample.stride":           []int{256},
		"WN.1.in_layers.1.dilation": []int{2},
	}
	for _, name := range []string{"checkpoint.pt", "checkpoint_legacy_cuda.pt"} {
		t.Run(name, func(t *testing.T) {
			ck, err := Load(filepath.Join(refDir, name))
			if err != nil {
				t.Fatal(err)
			}
			checkTensors(t, ck, filepath.Join(refDir, "weights_wn.npz"))
			if ck.Iteration != 2 || ck.LearningRate != 1e-4 {
				t.Errorf("iteration %d, learning rate %v, want 2, 1e-4", ck.Iteration, ck.LearningRate)
			}
			if _, ok := ck.Tensors["WN.0.start.weight"]; ok {
				t.Error("stale weight attribute of a weight-normed conv returned as a tensor")
			}
			for k, v := range attrs {
				if !reflect.DeepEqual(ck.Attributes[k], v) {
					t.Errorf("Attributes[%q] = %#v, want %#v", k, ck.Attributes[k], v)
				}
			}
			opt := ck.Optimizer
			if opt == nil {
				t.Fatal("no optimizer state")
			}
			if opt.LR != 1e-4 || opt.Beta1 != 0.9 || opt.Beta2 != 0.999 || opt.Eps != 1e-8 || opt.WeightDecay != 0 || opt.AMSGrad {
				t.Errorf("hyperparameters %+v", *opt)
			}
			adam := make(map[string]npyArray)
			for _, a := range readNPZ(t, filepath.Join(refDir, "adam_state.npz")) {
				adam[a.name] = a
			}
			if len(adam) != 2*len(ck.Names)+1 || len(opt.Step) != len(ck.Names) {
				t.Fatalf("%d steps for %d parameters and %d adam_state.npz arrays", len(opt.Step), len(ck.Names), len(adam))
			}
			for _, n := range ck.Names {
				if opt.Step[n] != float64(adam["step"].data[0]) {
					t.Errorf("Step[%s] = %v, want %v", n, opt.Step[n], adam["step"].data[0])
				}
				if err := equalTensor(opt.ExpAvg[n], adam[n+".exp_avg"]); err != nil {
					t.Errorf("%s.exp_avg: %v", n, err)
				}
				if err := equalTensor(opt.ExpAvgSq[n], adam[n+".exp_avg_sq"]); err != nil {
					t.Errorf("%s.exp_avg_sq: %v", n, err)
				}
			}
		})
	}
}

func TestLoadStateDicts(t *testing.T) {
	for _, tc := range []struct{ file, npz string }{
		{filepath.Join(refDir, "state_dict.pt"), filepath.Join(refDir, "weights.npz")},
		{filepath.Join(fixtureDir, "state_dict_fp16.pt"), filepath.Join(fixtureDir, "state_dict_fp16.expected.npz")},
		{filepath.Join(fixtureDir, "tensors_misc.pt"), filepath.Join(fixtureDir, "tensors_misc.expected.npz")},
	} {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			ck, err := Load(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			checkTensors(t, ck, tc.npz)
			if ck.Optimizer != nil || ck.Iteration != 0 || ck.LearningRate != 0 || len(ck.Attributes) != 0 {
				t.Errorf("state dict has training state: %d %v %v %v", ck.Iteration, ck.LearningRate, ck.Optimizer, ck.Attributes)
			}
		})
	}
}

func TestLoadOldLayoutLegacy(t *testing.T) {
	ck, err := Load(filepath.Join(fixtureDir, "old_layout_legacy.pt"))
	if err != nil {
		t.Fatal(err)
	}
	checkTensors(t, ck, filepath.Join(fixtureDir, "old_layout_legacy.expected.npz"))
	if ck.Iteration != 7 || ck.LearningRate != 0.001 {
		t.Errorf("iteration %d, learning rate %v, want 7, 0.001", ck.Iteration, ck.LearningRate)
	}
	for _, name := range []string{"WN.0.cond_layers.1.weight_g", "WN.3.res_layers.0.weight_v", "WN.2.skip_layers.1.bias"} {
		if _, ok := ck.Tensors[name]; !ok {
			t.Errorf("no tensor %s", name)
		}
	}
	if ck.Attributes["n_flows"] != 4 || ck.Attributes["WN.3.n_channels"] != 4 {
		t.Errorf("attributes n_flows %v, WN.3.n_channels %v", ck.Attributes["n_flows"], ck.Attributes["WN.3.n_channels"])
	}
	// The Adam state is keyed by id(param) with Python-int steps, stored in
	// reverse order; make_fixtures.py sets exp_avg = p/2 and exp_avg_sq = p².
	opt := ck.Optimizer
	if opt == nil {
		t.Fatal("no optimizer state")
	}
	if opt.LR != 0.001 || opt.Beta1 != 0.9 || opt.Beta2 != 0.999 || opt.Eps != 1e-8 {
		t.Errorf("hyperparameters %+v", *opt)
	}
	for _, name := range ck.Names {
		p := ck.Tensors[name].Data
		m, v := opt.ExpAvg[name].Data, opt.ExpAvgSq[name].Data
		if opt.Step[name] != 5 || len(m) != len(p) || len(v) != len(p) {
			t.Fatalf("%s: step %v, %d/%d moments for %d values", name, opt.Step[name], len(m), len(v), len(p))
		}
		for i, x := range p {
			if m[i] != x*0.5 || v[i] != x*x {
				t.Fatalf("%s[%d]: exp_avg %v, exp_avg_sq %v for parameter %v", name, i, m[i], v[i], x)
			}
		}
	}
}

func TestLoadTensor(t *testing.T) {
	want := readNPZ(t, filepath.Join(fixtureDir, "mels.expected.npz"))
	if len(want) != 3 {
		t.Fatalf("%d expected mels", len(want))
	}
	for _, w := range want {
		t.Run(w.name, func(t *testing.T) {
			got, err := LoadTensor(filepath.Join(fixtureDir, w.name))
			if err != nil {
				t.Fatal(err)
			}
			if err := equalTensor(got, w); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestLoadWrongKind(t *testing.T) {
	if _, err := Load(filepath.Join(fixtureDir, "mel_batched.pt")); err == nil {
		t.Error("Load of a single tensor succeeded")
	}
	if _, err := LoadTensor(filepath.Join(refDir, "state_dict.pt")); err == nil {
		t.Error("LoadTensor of a state dict succeeded")
	}
	if _, err := Load(filepath.Join(fixtureDir, "no_such_file.pt")); err == nil {
		t.Error("Load of a missing file succeeded")
	}
}

// TestLoadVariants rewrites the pickles of the reference files into the other
// layouts torch.save produces: a bare module, {'state_dict': ...} and
// {'model': state dict}.
func TestLoadVariants(t *testing.T) {
	wrap := func(key string) func([]byte) []byte {
		return func(pkl []byte) []byte {
			// {key: <original object>, 'iteration': 5}; the original pickle
			// starts with PROTO 2 and ends with STOP.
			p := new(pk).op("\x80\x02}").str(key)
			p.Write(pkl[2 : len(pkl)-1])
			p.op("s").str("iteration").op("K\x05s.")
			return p.Bytes()
		}
	}
	for _, tc := range []struct {
		name, file, pickle string
		edit               func([]byte) []byte
		want               string
		iteration          int
	}{
		{"module", "checkpoint.pt", "checkpoint/data.pkl", func(pkl []byte) []byte {
			// Drop the checkpoint dict and return the WaveGlow module,
			// memoized in slot 3.
			return append(bytes.Clone(pkl[:len(pkl)-1]), "0h\x03."...)
		}, "weights_wn.npz", 0},
		{"state_dict entry", "state_dict.pt", "state_dict/data.pkl", wrap("state_dict"), "weights.npz", 5},
		{"model entry", "state_dict.pt", "state_dict/data.pkl", wrap("model"), "weights.npz", 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var members []zipMember
			for _, m := range readZip(t, filepath.Join(refDir, tc.file)) {
				if m.name == tc.pickle {
					m.data = tc.edit(m.data)
				}
				members = append(members, m)
			}
			file := writeZip(t, members, zip.Store, nil)
			ck, err := LoadReader(bytes.NewReader(file), int64(len(file)))
			if err != nil {
				t.Fatal(err)
			}
			checkTensors(t, ck, filepath.Join(refDir, tc.want))
			if ck.Iteration != tc.iteration || ck.Optimizer != nil {
				t.Errorf("iteration %d, optimizer %v", ck.Iteration, ck.Optimizer)
			}
		})
	}
}
