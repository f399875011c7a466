package server

import (
	"bytes"
	"fmt"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/glowvoc/glowvoc/audio"
	"github.com/glowvoc/glowvoc/internal/npy"
	"github.com/glowvoc/glowvoc/melspec"
	"github.com/glowvoc/glowvoc/vocoder"
)

// decodeWAV reads a WAV body and checks it against the model's sample
// rate, the mel front end's minimum length and the frame limit.
func (s *Server) decodeWAV(r *http.Request) ([]float32, error) {
	clip, err := audio.Decode(r.Body)
	if err != nil {
		return nil, bodyError("WAV body", err)
	}
	mc := s.model.Config().Mel
	if clip.SampleRate != mc.SampleRate {
		return nil, errorf(http.StatusBadRequest, "WAV sample rate is %d Hz, the model expects %d Hz (resample it first)",
			clip.SampleRate, mc.SampleRate)
	}
	n := len(clip.Samples)
	if frames := mc.Frames(n); frames > s.cfg.MaxFrames {
		return nil, errorf(http.StatusRequestEntityTooLarge, "WAV of %d samples makes %d frames, more than the limit of %d",
			n, frames, s.cfg.MaxFrames)
	}
	if n <= mc.NFFT/2 {
		return nil, errorf(http.StatusBadRequest, "WAV of %d samples is too short: it needs more than %d", n, mc.NFFT/2)
	}
	return clip.Samples, nil
}

// score answers POST /score: the exact log-likelihood of a WAV under the
// model (vocoder.Score as JSON). The sigma query parameter is the latent
// standard deviation assumed (default DefaultScoreSigma).
func (s *Server) score(w http.ResponseWriter, r *http.Request) error {
	sigma := DefaultScoreSigma
	if q := r.URL.Query(); q.Has("sigma") {
		v, err := strconv.ParseFloat(q.Get("sigma"), 64)
		if err != nil || !(v > 0) || v > MaxSigma {
			return errorf(http.StatusBadRequest, "query parameter sigma=%q must be a number in (0, %v]", q.Get("sigma"), MaxSigma)
		}
		sigma = v
	}
	samples, err := s.decodeWAV(r)
	if err != nil {
		return err
	}
	var sc *vocoder.Score
	err = s.pool.run(r.Context(), func() error {
		var err error
		if sc, err = s.model.Score(r.Context(), samples, sigma); err != nil {
			return fmt.Errorf("score: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !finiteScore(sc) {
		return errorf(http.StatusUnprocessableEntity, "the log-likelihood of this audio is not finite under sigma %v", sigma)
	}
	writeJSON(w, http.StatusOK, sc)
	return nil
}

// finiteScore reports whether every number of sc is finite (and so can be
// written as JSON).
func finiteScore(sc *vocoder.Score) bool {
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	ok := finite(sc.Loss) && finite(sc.LogSTotal) && finite(sc.LogDetWTotal) && finite(sc.NLLNatsPerSample)
	for _, v := range sc.FrameNLL {
		ok = ok && finite(v)
	}
	return ok
}

// melJSON is the JSON answer of POST /mel: the same shape POST
// /synthesize accepts.
type melJSON struct {
	Mel [][]float32 `json:"mel"`
}

// mel answers POST /mel: the log-mel spectrogram of a WAV with the model's
// front end, as .npy of shape [n_mels, frames] or, with format=json or
// Accept: application/json, as {"mel": [[...], ...]}.
func (s *Server) mel(w http.ResponseWriter, r *http.Request) error {
	asJSON, err := wantJSON(r)
	if err != nil {
		return err
	}
	samples, err := s.decodeWAV(r)
	if err != nil {
		return err
	}
	var mel melspec.Spectrogram
	err = s.pool.run(r.Context(), func() error {
		var err error
		if mel, err = s.model.Analyzer().Mel(samples); err != nil {
			return fmt.Errorf("mel: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	w.Header().Set("X-Sample-Rate", strconv.Itoa(s.rate))
	if asJSON {
		rows := make([][]float32, mel.NMels)
		for m := range rows {
			rows[m] = mel.Data[m*mel.Frames : (m+1)*mel.Frames]
		}
		writeJSON(w, http.StatusOK, melJSON{Mel: rows})
		return nil
	}
	var buf bytes.Buffer
	if err := npy.Write(&buf, npy.Array{Shape: []int{mel.NMels, mel.Frames}, Data: mel.Data}); err != nil {
		return fmt.Errorf("encoding the mel: %w", err)
	}
	w.Header().Set("Content-Type", mediaNPY)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	buf.WriteTo(w)
	return nil
}

// wantJSON reports whether POST /mel should answer JSON: format=json, or
// no format and an Accept header naming application/json (but not .npy).
func wantJSON(r *http.Request) (bool, error) {
	if q := r.URL.Query(); q.Has("format") {
		switch q.Get("format") {
		case "json":
			return true, nil
		case "npy":
			return false, nil
		}
		return false, errorf(http.StatusBadRequest, "format %q: want npy or json", q.Get("format"))
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		switch mt, _, _ := mime.ParseMediaType(part); mt {
		case mediaNPY:
			return false, nil
		case mediaJSON:
			return true, nil
		}
	}
	return false, nil
}
