// Package server is glowvoc's HTTP service: chatbot voice channels POST mel
// spectrograms to /synthesize and get speech back, whole or streamed as it
// is produced. It also scores audio with the model's exact log-likelihood
// (/score), computes mel spectrograms (/mel), reports health, readiness
// and Prometheus metrics, and serves a small page for people to try it.
//
// A Server bounds its work: at most Config.Workers syntheses run at once,
// at most Config.QueueSize more requests wait, and beyond that requests are
// answered 429 with a Retry-After estimate. Bodies and frame counts are
// capped (413), every request has a deadline (503 when it passes), and a
// client that goes away cancels its synthesis. Errors are JSON objects
// {"error": "...", "request_id": "..."}.
//
// The service is stateless: any number of replicas can run behind a load
// balancer, and a request with a given seed gives the same samples on any
// of them.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/glowvoc/glowvoc/melspec"
	"github.com/glowvoc/glowvoc/vocoder"
)

// Defaults for the zero values of Config's limits.
const (
	DefaultMaxBodyBytes   = 16 << 20
	DefaultMaxFrames      = 4096 // 47.5 s of audio at 22050 Hz, hop 256
	DefaultRequestTimeout = 60 * time.Second
)

// Request defaults, the same as `vocode synth`.
const (
	DefaultSigma = 0.6
	DefaultSeed  = 1
	// DefaultScoreSigma is the latent standard deviation /score assumes:
	// the one WaveGlow is trained with.
	DefaultScoreSigma = 1.0
	// MaxSigma is the largest sigma a request may ask for (NVIDIA uses 0.6
	// to 1): far larger values only overflow the model to non-finite
	// audio.
	MaxSigma = 10.0
)

// Vocoder is the model a Server serves. *vocoder.Model implements it; it
// must be safe for concurrent use and honour ctx.
type Vocoder interface {
	Config() vocoder.Config
	Analyzer() *melspec.Analyzer
	Samples(frames int) int
	Synthesize(ctx context.Context, mel melspec.Spectrogram, opts vocoder.SynthesizeOptions) ([]float32, error)
	SynthesizeStream(ctx context.Context, mel melspec.Spectrogram, opts vocoder.StreamOptions, emit func(audio []float32) error) error
	Denoise(ctx context.Context, audio []float32, strength float64) ([]float32, error)
	Score(ctx context.Context, audio []float32, sigma float64) (*vocoder.Score, error)
}

// Config sets a Server's identity, limits and streaming chunk sizes.
// Zero values mean the defaults given with each field.
type Config struct {
	// ModelName identifies the model in /v1/models and the page.
	// Default "waveglow".
	ModelName string
	// Workers is the number of requests computed at once. Default
	// runtime.GOMAXPROCS(0).
	Workers int
	// QueueSize is the number of further requests that may wait for a
	// worker (or still be uploading); beyond it requests get 429. Zero
	// means no request waits.
	QueueSize int
	// MaxBodyBytes caps request bodies (413 beyond). Default
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxFrames caps the mel frames of a request, or the frames a WAV
	// input would have (413 beyond). Default DefaultMaxFrames.
	MaxFrames int
	// RequestTimeout is the deadline of each request, from its arrival to
	// the end of its response, streamed or not (503 if it passes before the
	// response starts). Default DefaultRequestTimeout.
	RequestTimeout time.Duration
	// StreamChunkFrames and StreamFirstChunkFrames set the chunk sizes of
	// streamed synthesis (vocoder.StreamOptions); 0 means the vocoder's
	// defaults. A smaller first chunk gives earlier audio.
	StreamChunkFrames, StreamFirstChunkFrames int
	// WarmDenoiser makes Warm also compute the denoiser's bias spectrum,
	// so that the first request with denoise > 0 does not pay for it.
	WarmDenoiser bool
	// Logger receives structured logs. Default slog.Default().
	Logger *slog.Logger
}

// withDefaults returns c with zero values replaced by defaults, or an error
// for a negative value.
func (c Config) withDefaults() (Config, error) {
	if c.Workers < 0 || c.QueueSize < 0 || c.MaxBodyBytes < 0 || c.MaxFrames < 0 || c.RequestTimeout < 0 ||
		c.StreamChunkFrames < 0 || c.StreamFirstChunkFrames < 0 {
		return c, errors.New("server config: negative limit")
	}
	if c.ModelName == "" {
		c.ModelName = "waveglow"
	}
	if c.Workers == 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxFrames == 0 {
		c.MaxFrames = DefaultMaxFrames
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// Server states, in the order a server goes through them.
const (
	stateStarting int32 = iota // model loaded, not warmed up
	stateReady                 // answering /readyz with 200
	stateDraining              // shutting down: /readyz answers 503
)

// Server is the vocoder service, an http.Handler. Create it with New.
type Server struct {
	model   Vocoder
	cfg     Config
	rate    int // the model's sample rate
	log     *slog.Logger
	metrics *metrics
	pool    *pool
	page    []byte // the rendered page at /
	state   atomic.Int32
	handler http.Handler
}

// New returns a Server for model. It is not ready (/readyz answers 503)
// until Warm has run.
func New(model Vocoder, cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{
		model: model,
		cfg:   cfg,
		rate:  model.Config().Mel.SampleRate,
		log:   cfg.Logger,
	}
	s.pool = newPool(cfg.Workers, cfg.QueueSize)
	s.metrics = newMetrics(s.pool)
	if s.page, err = renderPage(s.cfg.ModelName, model.Config()); err != nil {
		return nil, err
	}
	s.handler = s.routes()
	return s, nil
}

// routes builds the router.
func (s *Server) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(s.requestID, s.observe, s.recoverPanics, middleware.GetHead)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, http.StatusNotFound, "no route "+r.URL.Path)
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on "+r.URL.Path)
	})

	r.Get("/", s.servePage)
	r.Get("/samples/{name}", s.serveSample)
	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.Get("/v1/models", s.models)
	r.Method(http.MethodGet, "/metrics", s.metrics.handler())

	r.Group(func(r chi.Router) {
		r.Use(s.deadline, s.admit, s.limitBody)
		r.Post("/synthesize", s.handle(s.synthesize))
		r.Post("/score", s.handle(s.score))
		r.Post("/mel", s.handle(s.mel))
	})
	return r
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// Warm runs one tiny synthesis, through the streaming path so that the
// stream chunk settings are checked too (and, with Config.WarmDenoiser,
// computes the denoiser's bias), so that the first request does not pay
// for first-use costs; then it marks the server ready. It does not mark a
// server that is already shutting down.
func (s *Server) Warm(ctx context.Context) error {
	start := time.Now()
	cfg := s.model.Config()
	const frames = 4 // 1024 samples: long enough for the denoiser's STFT
	mel := melspec.Spectrogram{NMels: cfg.NMels, Frames: frames, Data: make([]float32, cfg.NMels*frames)}
	for i := range mel.Data {
		mel.Data[i] = -6 // a quiet but not silent log-mel
	}
	var audio []float32
	err := s.model.SynthesizeStream(ctx, mel, s.streamOptions(vocoder.SynthesizeOptions{Sigma: DefaultSigma, Seed: DefaultSeed}),
		func(piece []float32) error {
			audio = append(audio, piece...)
			return nil
		})
	if err != nil {
		return fmt.Errorf("warm-up synthesis: %w", err)
	}
	if s.cfg.WarmDenoiser {
		if _, err := s.model.Denoise(ctx, audio, 0.01); err != nil {
			return fmt.Errorf("warm-up denoiser: %w", err)
		}
	}
	if s.state.CompareAndSwap(stateStarting, stateReady) {
		s.log.Info("ready", "model", s.cfg.ModelName, "warm_up", time.Since(start).Round(time.Millisecond),
			"workers", s.cfg.Workers, "queue", s.cfg.QueueSize)
	}
	return nil
}

// streamOptions returns the options of a streamed synthesis.
func (s *Server) streamOptions(o vocoder.SynthesizeOptions) vocoder.StreamOptions {
	return vocoder.StreamOptions{
		SynthesizeOptions: o,
		ChunkFrames:       s.cfg.StreamChunkFrames,
		FirstChunkFrames:  s.cfg.StreamFirstChunkFrames,
	}
}

// drain marks the server as shutting down: /readyz answers 503 from now on.
func (s *Server) drain() { s.state.Store(stateDraining) }

// healthz answers GET /healthz: the process is alive and serving HTTP.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers GET /readyz: 200 once the model is warm, 503 before and
// while shutting down, so that load balancers route only to ready replicas.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	switch s.state.Load() {
	case stateReady:
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	case stateStarting:
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "warming up"})
	default:
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "shutting down"})
	}
}

// modelInfo is one entry of GET /v1/models.
type modelInfo struct {
	ID         string         `json:"id"`
	SampleRate int            `json:"sample_rate"`
	NMels      int            `json:"n_mels"`
	HopLength  int            `json:"hop_length"`
	Config     vocoder.Config `json:"config"`
}

// models answers GET /v1/models with the loaded model's configuration in
// NVIDIA's config.json layout.
func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	cfg := s.model.Config()
	writeJSON(w, http.StatusOK, map[string][]modelInfo{"models": {{
		ID:         s.cfg.ModelName,
		SampleRate: cfg.Mel.SampleRate,
		NMels:      cfg.NMels,
		HopLength:  cfg.Mel.Hop,
		Config:     cfg,
	}}})
}
