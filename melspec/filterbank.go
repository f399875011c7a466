package melspec

import "math"

// Slaney mel scale constants (librosa 0.6.0 hz_to_mel, htk=False).
const (
	melFSp       = 200.0 / 3 // Hz per mel below minLogHz
	melMinLogHz  = 1000.0    // start of the logarithmic region
	melMinLogMel = melMinLogHz / melFSp
)

// melLogStep returns the mel step of the logarithmic region, ln(6.4)/27.
func melLogStep() float64 { return math.Log(6.4) / 27 }

// hzToMel converts a frequency in Hz to the Slaney mel scale.
func hzToMel(f float64) float64 {
	if f >= melMinLogHz {
		return melMinLogMel + math.Log(f/melMinLogHz)/melLogStep()
	}
	return f / melFSp
}

// melToHz converts a Slaney mel value to Hz.
func melToHz(m float64) float64 {
	if m >= melMinLogMel {
		return melMinLogHz * math.Exp(melLogStep()*(m-melMinLogMel))
	}
	return melFSp * m
}

// linspace returns n values evenly spaced from start to stop inclusive,
// computed like numpy.linspace: start + i*step, with the last value set to
// stop exactly.
func linspace(start, stop float64, n int) []float64 {
	y := make([]float64, n)
	if n == 1 {
		y[0] = start
		return y
	}
	step := (stop - start) / float64(n-1)
	for i := range y {
		y[i] = float64(i)*step + start
	}
	y[n-1] = stop
	return y
}

// melFilterbank returns librosa 0.6.0's filters.mel(sr, nFFT, nMels, fMin,
// fMax, htk=False, norm=1) as [nMels × (nFFT/2+1)] row-major float64 values:
// triangular filters between nMels+2 points equally spaced on the Slaney mel
// scale, each scaled to unit area (2 / bandwidth in Hz).
func melFilterbank(c Config) []float64 {
	bins := c.Bins()
	fftFreqs := linspace(0, float64(c.SampleRate)/2, bins)
	melF := linspace(hzToMel(c.FMin), hzToMel(c.FMax), c.NMels+2)
	for i, m := range melF {
		melF[i] = melToHz(m)
	}
	w := make([]float64, c.NMels*bins)
	for i := range c.NMels {
		lowWidth := melF[i+1] - melF[i]
		highWidth := melF[i+2] - melF[i+1]
		enorm := 2 / (melF[i+2] - melF[i])
		row := w[i*bins : (i+1)*bins]
		for k, f := range fftFreqs {
			lower := -(melF[i] - f) / lowWidth
			upper := (melF[i+2] - f) / highWidth
			row[k] = math.Max(0, math.Min(lower, upper)) * enorm
		}
	}
	return w
}
