package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/glowvoc/glowvoc/audio"
)

// synthesize answers POST /synthesize: the mel's audio, whole (with a
// Content-Length) or, with stream=true, streamed as it is produced.
func (s *Server) synthesize(w http.ResponseWriter, r *http.Request) error {
	start := time.Now()
	req, err := s.decodeSynth(r)
	if err != nil {
		return err
	}
	if req.stream {
		return s.synthesizeStream(w, r, req, start)
	}
	ctx := r.Context()
	var samples []float32
	err = s.pool.run(ctx, func() error {
		computeStart := time.Now()
		var err error
		if samples, err = s.model.Synthesize(ctx, req.mel, req.opts); err != nil {
			return fmt.Errorf("synthesize: %w", err)
		}
		if req.denoise > 0 {
			if samples, err = s.model.Denoise(ctx, samples, req.denoise); err != nil {
				return fmt.Errorf("denoise: %w", err)
			}
		}
		s.recordAudio(modeWhole, len(samples), time.Since(computeStart))
		return nil
	})
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := encodeAudio(&buf, req.format, samples, s.rate); err != nil {
		if errors.Is(err, audio.ErrNonFinite) {
			return errorf(http.StatusUnprocessableEntity, "the synthesis of this mel is not finite (%v)", err)
		}
		return err
	}
	setAudioHeaders(w.Header(), req.format, s.rate)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	if _, err := buf.WriteTo(w); err != nil {
		s.logger(ctx).Info("writing the answer failed", "error", err)
	}
	return nil
}

// synthesizeStream answers with audio as SynthesizeStream produces it.
// The status and headers are sent with the first audio, so that anything
// failing before (the deadline while queued, say) still gets a proper
// error answer. A failure after that aborts the response, so that the
// client sees an incomplete transfer rather than a short but valid file.
func (s *Server) synthesizeStream(w http.ResponseWriter, r *http.Request, req *synthRequest, start time.Time) error {
	ctx := r.Context()
	rc := http.NewResponseController(w)
	var enc sampleWriter
	samples := 0
	emit := func(piece []float32) error {
		if enc == nil {
			setAudioHeaders(w.Header(), req.format, s.rate)
			w.Header().Set("X-Accel-Buffering", "no") // ask proxies not to buffer
			w.WriteHeader(http.StatusOK)
			var err error
			if enc, err = newSampleWriter(w, req.format, s.rate); err != nil {
				return err
			}
			s.metrics.firstAudio.Observe(time.Since(start).Seconds())
		}
		if err := enc.Write(piece); err != nil {
			return err
		}
		samples += len(piece)
		return rc.Flush()
	}
	err := s.pool.run(ctx, func() error {
		computeStart := time.Now()
		if err := s.model.SynthesizeStream(ctx, req.mel, s.streamOptions(req.opts), emit); err != nil {
			return fmt.Errorf("streamed synthesis: %w", err)
		}
		s.recordAudio(modeStream, samples, time.Since(computeStart))
		return nil
	})
	if err == nil {
		return nil
	}
	if enc == nil {
		return err // nothing sent yet: answer the error
	}
	if log := s.logger(ctx); errors.Is(ctx.Err(), context.Canceled) {
		log.Info("client went away during the stream", "samples_sent", samples)
	} else {
		log.Error("stream aborted", "error", err, "samples_sent", samples)
	}
	panic(http.ErrAbortHandler)
}

// recordAudio records the production of n samples in compute time d.
func (s *Server) recordAudio(mode string, n int, d time.Duration) {
	if n == 0 {
		return
	}
	sec := float64(n) / float64(s.rate)
	s.metrics.audioSeconds.WithLabelValues(mode).Add(sec)
	s.metrics.rtf.WithLabelValues(mode).Observe(d.Seconds() / sec)
}

// setAudioHeaders sets the Content-Type of format f and the sample rate.
func setAudioHeaders(h http.Header, f outputFormat, rate int) {
	if f == formatPCM {
		h.Set("Content-Type", "application/octet-stream")
		h.Set("X-Sample-Format", "s16le")
	} else {
		h.Set("Content-Type", "audio/wav")
	}
	h.Set("X-Sample-Rate", strconv.Itoa(rate))
}

// wavFormat maps an output format to the audio package's WAV format.
func wavFormat(f outputFormat) audio.Format {
	if f == formatF32 {
		return audio.Float32
	}
	return audio.PCM16
}

// encodeAudio writes samples to w as a whole response body in format f.
func encodeAudio(w io.Writer, f outputFormat, samples []float32, rate int) error {
	if f == formatPCM {
		raw, err := audio.NewRawWriter(w, audio.PCM16)
		if err != nil {
			return err
		}
		return raw.Write(samples)
	}
	return audio.Encode(w, audio.Clip{Samples: samples, SampleRate: rate}, wavFormat(f))
}

// sampleWriter appends samples to a stream.
type sampleWriter interface {
	Write(samples []float32) error
}

// newSampleWriter starts a stream in format f on w: a WAV header of
// unknown length, or nothing for raw PCM.
func newSampleWriter(w io.Writer, f outputFormat, rate int) (sampleWriter, error) {
	if f == formatPCM {
		return audio.NewRawWriter(w, audio.PCM16)
	}
	return audio.NewStreamWriter(w, rate, wavFormat(f))
}
