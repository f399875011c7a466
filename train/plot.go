package train

import (
	"fmt"
	"image/color"
	"io"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/glowvoc/glowvoc/internal/atomicfile"
)

// maxPlotPoints bounds the points of the training-loss line: longer logs
// are averaged over runs of consecutive iterations.
const maxPlotPoints = 1000

// WriteLossPlot draws the training loss of recs (skipped steps left out)
// and their validation loss (Record.ValLoss, the same scale) against the
// iteration, and writes the figure atomically as a PNG file at path. The
// training loss is drawn twice: as logged (thin, light) and as a centred
// moving average over a twentieth of the run (thick). Lines of more than
// 1000 points are averaged over runs of consecutive iterations.
func WriteLossPlot(path string, recs []Record) error {
	p := plot.New()
	p.Title.Text = "WaveGlow training"
	p.X.Label.Text = "iteration"
	p.Y.Label.Text = "loss (nats per sample)"
	p.Add(plotter.NewGrid())

	var train, val plotter.XYs
	for _, r := range recs {
		if l := float64(r.Loss); !r.Skipped && !math.IsNaN(l) && !math.IsInf(l, 0) {
			train = append(train, plotter.XY{X: float64(r.Iteration), Y: l})
		}
		if r.ValLoss != nil {
			if v := float64(*r.ValLoss); !math.IsNaN(v) && !math.IsInf(v, 0) {
				val = append(val, plotter.XY{X: float64(r.Iteration), Y: v})
			}
		}
	}
	smooth := movingAverage(train, len(train)/20)
	if per := (len(train) + maxPlotPoints - 1) / maxPlotPoints; per > 1 {
		train, smooth = binMeans(train, per), binMeans(smooth, per)
	}
	lines := []struct {
		xys    plotter.XYs
		label  string
		color  color.RGBA
		width  float64
		points bool
	}{
		{train, "training loss", color.RGBA{R: 158, G: 202, B: 225, A: 255}, 0.75, false},
		{smooth, "training loss, moving average", color.RGBA{R: 8, G: 81, B: 156, A: 255}, 2, false},
		{val, "validation loss", color.RGBA{R: 214, G: 39, B: 40, A: 255}, 1.5, true},
	}
	for _, ln := range lines {
		if len(ln.xys) == 0 {
			continue
		}
		l, pts, err := plotter.NewLinePoints(ln.xys)
		if err != nil {
			return fmt.Errorf("loss plot: %w", err)
		}
		l.Color, l.Width = ln.color, vg.Points(ln.width)
		if ln.points {
			pts.Color = ln.color
			p.Add(l, pts)
			p.Legend.Add(ln.label, l, pts)
		} else {
			p.Add(l)
			p.Legend.Add(ln.label, l)
		}
	}
	p.Legend.Top = true
	p.Legend.XOffs = -vg.Points(10)
	wt, err := p.WriterTo(8*vg.Inch, 4.5*vg.Inch, "png")
	if err != nil {
		return fmt.Errorf("loss plot: %w", err)
	}
	return atomicfile.WriteFile(path, 0o644, func(w io.Writer) error {
		_, err := wt.WriteTo(w)
		return err
	})
}

// movingAverage returns the centred moving average of the Y values over
// windows of 2·half+1 points, narrowed symmetrically near the ends (so
// that a trend does not bend there).
func movingAverage(xys plotter.XYs, half int) plotter.XYs {
	sums := make([]float64, len(xys)+1)
	for i, xy := range xys {
		sums[i+1] = sums[i] + xy.Y
	}
	out := make(plotter.XYs, len(xys))
	for i, xy := range xys {
		h := min(half, i, len(xys)-1-i)
		out[i] = plotter.XY{X: xy.X, Y: (sums[i+h+1] - sums[i-h]) / float64(2*h+1)}
	}
	return out
}

// binMeans replaces each run of per consecutive points by their mean.
func binMeans(xys plotter.XYs, per int) plotter.XYs {
	var out plotter.XYs
	for i := 0; i < len(xys); i += per {
		run := xys[i:min(i+per, len(xys))]
		var m plotter.XY
		for _, xy := range run {
			m.X += xy.X
			m.Y += xy.Y
		}
		n := float64(len(run))
		out = append(out, plotter.XY{X: m.X / n, Y: m.Y / n})
	}
	return out
}
