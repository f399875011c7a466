package server

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/glowvoc/glowvoc/internal/npy"
	"github.com/glowvoc/glowvoc/melspec"
	"github.com/glowvoc/glowvoc/vocoder"
)

// Media types of POST /synthesize bodies.
const (
	mediaJSON = "application/json"
	mediaNPY  = "application/x-npy"
	mediaRaw  = "application/octet-stream"
)

// outputFormat is how synthesised audio is answered.
type outputFormat int

const (
	formatWAV outputFormat = iota // 16-bit PCM WAV
	formatF32                     // 32-bit float WAV
	formatPCM                     // raw 16-bit little-endian PCM
)

// parseFormat parses the format option: "wav", "f32" or "pcm".
func parseFormat(s string) (outputFormat, error) {
	switch s {
	case "wav":
		return formatWAV, nil
	case "f32":
		return formatF32, nil
	case "pcm":
		return formatPCM, nil
	}
	return 0, errorf(http.StatusBadRequest, "format %q: want wav, f32 or pcm", s)
}

// synthRequest is a decoded POST /synthesize.
type synthRequest struct {
	mel     melspec.Spectrogram
	opts    vocoder.SynthesizeOptions
	denoise float64
	format  outputFormat
	stream  bool
}

// options are the settings a request may give as query parameters or as
// fields of a JSON body; nil means not given.
type options struct {
	Sigma   *float64 `json:"sigma"`
	Seed    *uint64  `json:"seed"`
	Denoise *float64 `json:"denoise"`
	Format  *string  `json:"format"`
	Stream  *bool    `json:"stream"`
}

// jsonRequest is the JSON body of POST /synthesize.
type jsonRequest struct {
	// Mel is in Tacotron2's [n_mels][frames] layout.
	Mel [][]float32 `json:"mel"`
	options
}

// decodeSynth decodes and checks a POST /synthesize request: the mel in
// the body (its Content-Type says how it is encoded) and the options in
// the query or a JSON body.
func (s *Server) decodeSynth(r *http.Request) (*synthRequest, error) {
	q := r.URL.Query()
	opts, err := queryOptions(q)
	if err != nil {
		return nil, err
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var mel melspec.Spectrogram
	switch mt {
	case mediaJSON:
		var body options
		if mel, body, err = decodeJSONMel(r.Body); err == nil {
			err = opts.merge(body)
		}
	case mediaNPY:
		mel, err = decodeNPYMel(r.Body, int(s.cfg.MaxBodyBytes))
	case mediaRaw:
		mel, err = decodeRawMel(r.Body, q)
	default:
		return nil, errorf(http.StatusUnsupportedMediaType,
			"Content-Type %q: want %s, %s or %s (raw little-endian float32, with the n_mels query parameter)",
			r.Header.Get("Content-Type"), mediaJSON, mediaNPY, mediaRaw)
	}
	if err != nil {
		return nil, err
	}
	if err := s.checkMel(mel); err != nil {
		return nil, err
	}
	return opts.resolve(mel)
}

// checkMel checks a decoded mel against the model and the frame limit.
func (s *Server) checkMel(mel melspec.Spectrogram) error {
	if want := s.model.Config().NMels; mel.NMels != want {
		return errorf(http.StatusBadRequest, "mel has %d channels (n_mels), the model expects %d", mel.NMels, want)
	}
	if mel.Frames < 1 {
		return errorf(http.StatusBadRequest, "mel has no frames")
	}
	if mel.Frames > s.cfg.MaxFrames {
		return errorf(http.StatusRequestEntityTooLarge, "mel has %d frames, more than the limit of %d", mel.Frames, s.cfg.MaxFrames)
	}
	if err := mel.Validate(); err != nil { // names the first NaN/Inf by mel and frame
		return errorf(http.StatusBadRequest, "invalid mel: %s", strings.TrimPrefix(err.Error(), "melspec: invalid spectrogram: "))
	}
	return nil
}

// resolve applies the defaults to o, checks the values and returns the
// request for mel.
func (o options) resolve(mel melspec.Spectrogram) (*synthRequest, error) {
	req := &synthRequest{
		mel:     mel,
		opts:    vocoder.SynthesizeOptions{Sigma: DefaultSigma, Seed: DefaultSeed},
		denoise: 0,
		format:  formatWAV,
	}
	if o.Sigma != nil {
		req.opts.Sigma = *o.Sigma
	}
	if o.Seed != nil {
		req.opts.Seed = *o.Seed
	}
	if o.Denoise != nil {
		req.denoise = *o.Denoise
	}
	if o.Stream != nil {
		req.stream = *o.Stream
	}
	if o.Format != nil {
		f, err := parseFormat(*o.Format)
		if err != nil {
			return nil, err
		}
		req.format = f
	}
	if err := checkNonNegative("sigma", req.opts.Sigma); err != nil {
		return nil, err
	}
	if req.opts.Sigma > MaxSigma {
		return nil, errorf(http.StatusBadRequest, "sigma %v must be at most %v", req.opts.Sigma, MaxSigma)
	}
	if err := checkNonNegative("denoise", req.denoise); err != nil {
		return nil, err
	}
	if req.stream && req.denoise > 0 {
		return nil, errorf(http.StatusBadRequest, "denoise is not available with stream=true: the denoiser works on the whole utterance")
	}
	return req, nil
}

// checkNonNegative returns a 400 error unless v is finite and >= 0.
func checkNonNegative(name string, v float64) error {
	if !(v >= 0) || math.IsInf(v, 0) {
		return errorf(http.StatusBadRequest, "%s %v must be finite and non-negative", name, v)
	}
	return nil
}

// queryOptions parses the options given as query parameters.
func queryOptions(q url.Values) (options, error) {
	var o options
	parseSeed := func(s string) (uint64, error) { return strconv.ParseUint(s, 10, 64) }
	parseString := func(s string) (string, error) { return s, nil }
	err := cmp.Or(
		queryParam(q, "sigma", &o.Sigma, parseFloat),
		queryParam(q, "seed", &o.Seed, parseSeed),
		queryParam(q, "denoise", &o.Denoise, parseFloat),
		queryParam(q, "format", &o.Format, parseString),
		queryParam(q, "stream", &o.Stream, strconv.ParseBool),
	)
	return o, err
}

// queryParam parses query parameter name, if present, into a new *dst.
func queryParam[T any](q url.Values, name string, dst **T, parse func(string) (T, error)) error {
	if !q.Has(name) {
		return nil
	}
	v, err := parse(q.Get(name))
	if err != nil {
		return errorf(http.StatusBadRequest, "query parameter %s=%q is not valid", name, q.Get(name))
	}
	*dst = &v
	return nil
}

// parseFloat parses a float64.
func parseFloat(s string) (float64, error) { return strconv.ParseFloat(s, 64) }

// merge adds the options given in a JSON body to those of the query. An
// option given in both places is an error, whatever the values.
func (o *options) merge(body options) error {
	return cmp.Or(
		mergeOption("sigma", &o.Sigma, body.Sigma),
		mergeOption("seed", &o.Seed, body.Seed),
		mergeOption("denoise", &o.Denoise, body.Denoise),
		mergeOption("format", &o.Format, body.Format),
		mergeOption("stream", &o.Stream, body.Stream),
	)
}

// mergeOption sets *dst to v if v was given; both given is an error.
func mergeOption[T any](name string, dst **T, v *T) error {
	if v == nil {
		return nil
	}
	if *dst != nil {
		return errorf(http.StatusBadRequest, "%s is given both as a query parameter and in the body", name)
	}
	*dst = v
	return nil
}

// bodyError returns err, an error reading or decoding a body of kind what,
// as a 400 error naming the problem, unless it is a failure to read the
// body at all (too large, timed out), which classify answers.
func bodyError(what string, err error) error {
	var tooBig *http.MaxBytesError
	var netErr net.Error
	if errors.As(err, &tooBig) || errors.As(err, &netErr) {
		return err
	}
	msg := err.Error()
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		msg = "empty body"
	case errors.Is(err, io.ErrUnexpectedEOF):
		msg = "body ends early"
	case errors.As(err, &syntax):
		msg = fmt.Sprintf("malformed at byte %d: %v", syntax.Offset, strings.TrimPrefix(msg, "json: "))
	case errors.As(err, &typ):
		msg = fmt.Sprintf("field %s: %s is not a valid %s", typ.Field, typ.Value, typ.Type)
	default:
		msg = strings.TrimPrefix(msg, "json: ")
	}
	return errorf(http.StatusBadRequest, "%s: %s", what, msg)
}

// decodeJSONMel decodes a JSON body: {"mel": [[...], ...]} and options.
func decodeJSONMel(body io.Reader) (melspec.Spectrogram, options, error) {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	var req jsonRequest
	if err := dec.Decode(&req); err != nil {
		return melspec.Spectrogram{}, options{}, bodyError("JSON body", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			err = errors.New("data after the JSON object")
		}
		return melspec.Spectrogram{}, options{}, bodyError("JSON body", err)
	}
	if len(req.Mel) == 0 {
		return melspec.Spectrogram{}, options{}, errorf(http.StatusBadRequest, `JSON body: "mel" is missing or empty`)
	}
	nMels, frames := len(req.Mel), len(req.Mel[0])
	data := make([]float32, 0, nMels*frames)
	for m, row := range req.Mel {
		if len(row) != frames {
			return melspec.Spectrogram{}, options{}, errorf(http.StatusBadRequest,
				"JSON body: mel row %d has %d frames, row 0 has %d", m, len(row), frames)
		}
		data = append(data, row...)
	}
	return melspec.Spectrogram{NMels: nMels, Frames: frames, Data: data}, req.options, nil
}

// decodeNPYMel decodes an .npy body of shape [n_mels, frames] or
// [1, n_mels, frames].
func decodeNPYMel(body io.Reader, maxElements int) (melspec.Spectrogram, error) {
	br := bufio.NewReader(body)
	a, err := npy.Read(br, maxElements)
	if err != nil {
		return melspec.Spectrogram{}, bodyError("npy body", err)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		if err == nil {
			err = errors.New("data after the array")
		}
		return melspec.Spectrogram{}, bodyError("npy body", err)
	}
	shape := a.Shape
	if len(shape) == 3 && shape[0] == 1 {
		shape = shape[1:]
	}
	if len(shape) != 2 {
		return melspec.Spectrogram{}, errorf(http.StatusBadRequest,
			"npy body: shape %v, want [n_mels, frames] or [1, n_mels, frames]", a.Shape)
	}
	return melspec.Spectrogram{NMels: shape[0], Frames: shape[1], Data: a.Data}, nil
}

// decodeRawMel decodes a body of little-endian float32 values in
// [n_mels][frames] order, n_mels given as a query parameter.
func decodeRawMel(body io.Reader, q url.Values) (melspec.Spectrogram, error) {
	if !q.Has("n_mels") {
		return melspec.Spectrogram{}, errorf(http.StatusBadRequest, "raw float32 bodies need the n_mels query parameter")
	}
	nMels, err := strconv.Atoi(q.Get("n_mels"))
	if err != nil || nMels < 1 {
		return melspec.Spectrogram{}, errorf(http.StatusBadRequest, "query parameter n_mels=%q is not a positive integer", q.Get("n_mels"))
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return melspec.Spectrogram{}, bodyError("raw body", err)
	}
	if len(b)%(4*nMels) != 0 {
		return melspec.Spectrogram{}, errorf(http.StatusBadRequest,
			"raw body of %d bytes is not a whole number of frames of %d float32 values", len(b), nMels)
	}
	data := make([]float32, len(b)/4)
	for i := range data {
		data[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return melspec.Spectrogram{NMels: nMels, Frames: len(data) / nMels, Data: data}, nil
}
