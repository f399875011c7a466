package train

import (
	"encoding/json"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestFloatJSON(t *testing.T) {
	t.Parallel()
	for _, f := range []float64{0, -5.75, 1e-300, math.NaN(), math.Inf(1), math.Inf(-1)} {
		b, err := json.Marshal(Float(f))
		if err != nil {
			t.Fatal(err)
		}
		var back Float
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		finite := !math.IsNaN(f) && !math.IsInf(f, 0)
		if finite && float64(back) != f || !finite && (string(b) != "null" || !math.IsNaN(float64(back))) {
			t.Errorf("%v → %s → %v", f, b, back)
		}
	}
}

// TestReadLog checks that a log cut short by a crash, or holding records
// after the resumed iteration, is trimmed.
func TestReadLog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var recs []Record
	for i := int64(1); i <= 5; i++ {
		recs = append(recs, Record{Iteration: i, Loss: Float(-float64(i))})
	}
	path := filepath.Join(dir, LogName)
	if err := writeLog(path, recs); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"iteration": 6, "loss": -6.0, "grad_`); err != nil {
		t.Fatal(err)
	}
	f.Close()
	tests := []struct {
		upTo        int64
		n           int
		wantDropped bool
	}{
		{math.MaxInt64, 5, true},
		{3, 3, true},
		{0, 0, true},
	}
	for _, tt := range tests {
		got, dropped, err := readLog(path, tt.upTo)
		if err != nil || len(got) != tt.n || dropped != tt.wantDropped {
			t.Errorf("up to %d: %d records, dropped %v, %v; want %d, %v", tt.upTo, len(got), dropped, err, tt.n, tt.wantDropped)
		}
	}
	if err := writeLog(path, recs); err != nil {
		t.Fatal(err)
	}
	if got, dropped, err := readLog(path, 5); err != nil || len(got) != 5 || dropped || got[4].Loss != -5 {
		t.Errorf("complete log: %+v, dropped %v, %v", got, dropped, err)
	}
	if got, dropped, err := readLog(filepath.Join(dir, "none.jsonl"), 5); err != nil || len(got) != 0 || dropped {
		t.Errorf("missing log: %v, %v, %v", got, dropped, err)
	}
}

// TestWriteLossPlot draws a long log (binned) with skipped steps and
// validation points and checks that the result is a PNG image.
func TestWriteLossPlot(t *testing.T) {
	t.Parallel()
	var recs []Record
	for i := int64(1); i <= 2500; i++ {
		r := Record{Iteration: i, Loss: Float(-6 * (1 - math.Exp(-float64(i)/400)))}
		if i%700 == 0 {
			r.Loss, r.Skipped = Float(math.NaN()), true
		}
		if i%250 == 0 {
			v := r.Loss + 0.3
			r.ValLoss = &v
		}
		recs = append(recs, r)
	}
	path := filepath.Join(t.TempDir(), PlotName)
	for _, n := range []int{0, 10, len(recs)} {
		if err := WriteLossPlot(path, recs[:n]); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() < 600 || b.Dy() < 300 {
		t.Errorf("image is %v", b)
	}
}
