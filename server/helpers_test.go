package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glowvoc/glowvoc/audio"
	"github.com/glowvoc/glowvoc/melspec"
	"github.com/glowvoc/glowvoc/server"
	"github.com/glowvoc/glowvoc/vocoder"
)

// models caches the reference models by name: loading the 80-mel one
// takes seconds under the race detector.
var models = struct {
	sync.Mutex
	byName map[string]*vocoder.Model
}{byName: map[string]*vocoder.Model{}}

// referenceModel returns the reference model of testdata/reference/waveglow/name.
func referenceModel(t testing.TB, name string) *vocoder.Model {
	t.Helper()
	models.Lock()
	defer models.Unlock()
	if m := models.byName[name]; m != nil {
		return m
	}
	m, err := vocoder.Load(filepath.Join("..", "testdata", "reference", "waveglow", name, "weights.npz"), vocoder.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	models.byName[name] = m
	return m
}

// testModel returns the tiny reference model with 8 mel channels
// ("tiny_mel8"): "tiny" with an upsampling layer a hundred times cheaper,
// which keeps these tests fast under the race detector.
func testModel(t testing.TB) *vocoder.Model { return referenceModel(t, "tiny_mel8") }

// speechMel returns the first frames frames of the mel of the bundled
// speech sample, computed with m's front end.
func speechMel(t testing.TB, m *vocoder.Model, frames int) melspec.Spectrogram {
	t.Helper()
	clip, err := audio.DecodeFile(filepath.Join("samples", "hello.wav"))
	if err != nil {
		t.Fatal(err)
	}
	full, err := m.Analyzer().Mel(clip.Samples)
	if err != nil {
		t.Fatal(err)
	}
	if frames > full.Frames {
		t.Fatalf("the sample has only %d frames", full.Frames)
	}
	mel := melspec.Spectrogram{NMels: full.NMels, Frames: frames, Data: make([]float32, full.NMels*frames)}
	for c := 0; c < full.NMels; c++ {
		copy(mel.Data[c*frames:(c+1)*frames], full.Data[c*full.Frames:])
	}
	return mel
}

// melRows returns mel in the [n_mels][frames] layout of JSON requests.
func melRows(mel melspec.Spectrogram) [][]float32 {
	rows := make([][]float32, mel.NMels)
	for m := range rows {
		rows[m] = mel.Data[m*mel.Frames : (m+1)*mel.Frames]
	}
	return rows
}

// melJSON returns a JSON request body for mel with extra fields.
func melJSON(t testing.TB, mel melspec.Spectrogram, extra map[string]any) []byte {
	t.Helper()
	body := map[string]any{"mel": melRows(mel)}
	for k, v := range extra {
		body[k] = v
	}
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// logBuffer collects a server's log output; safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testServer is a running server on a loopback port.
type testServer struct {
	*server.Server
	url      string
	logs     *logBuffer
	shutdown context.CancelFunc // starts the shutdown
	stopped  chan struct{}      // closed when Serve has returned
	err      error              // Serve's result, once stopped
	checked  bool               // whether the test has called stop
}

// stop shuts the server down and returns Serve's result. The cleanup
// that start registers checks the result unless the test called stop.
func (ts *testServer) stop(t testing.TB) error {
	t.Helper()
	ts.checked = true
	ts.shutdown()
	select {
	case <-ts.stopped:
		return ts.err
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not shut down")
		return nil
	}
}

// start runs a server for model with cfg on a loopback port, not warmed
// up, and shuts it down at the end of the test.
func start(t testing.TB, model server.Vocoder, cfg server.Config, opts server.ServeOptions) *testServer {
	t.Helper()
	logs := &logBuffer{}
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := server.New(model, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{Server: srv, url: "http://" + ln.Addr().String(), logs: logs, shutdown: cancel, stopped: make(chan struct{})}
	if opts.ShutdownTimeout == 0 {
		opts.ShutdownTimeout = 10 * time.Second
	}
	go func() {
		ts.err = srv.Serve(ctx, ln, opts)
		close(ts.stopped)
	}()
	t.Cleanup(func() {
		checked := ts.checked
		if err := ts.stop(t); err != nil && !checked {
			t.Errorf("shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return ts
}

// ready starts a server as start does and warms it up.
func ready(t testing.TB, model server.Vocoder, cfg server.Config) *testServer {
	t.Helper()
	ts := start(t, model, cfg, server.ServeOptions{})
	if err := ts.Warm(context.Background()); err != nil {
		t.Fatal(err)
	}
	return ts
}

// do sends a request and returns the response with its body read.
func do(t testing.TB, method, url, contentType string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// apiError decodes a JSON error body.
func apiError(t testing.TB, resp *http.Response, body []byte) string {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error answer has Content-Type %q: %s", ct, body)
	}
	var e struct {
		Error     string `json:"error"`
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	if e.Error == "" || e.RequestID != resp.Header.Get("X-Request-Id") {
		t.Fatalf("error body %s lacks a message or the request id %q", body, resp.Header.Get("X-Request-Id"))
	}
	return e.Error
}

// metric returns the value of the Prometheus sample whose line starts with
// prefix (name and labels), or an error if there is none.
func metric(t testing.TB, ts *testServer, prefix string) (float64, error) {
	t.Helper()
	_, body := do(t, http.MethodGet, ts.url+"/metrics", "", nil)
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, prefix+" "); ok {
			var v float64
			if err := json.Unmarshal([]byte(rest), &v); err != nil {
				return 0, err
			}
			return v, nil
		}
	}
	return 0, errors.New("no sample " + prefix)
}

// waitFor polls cond every 10 ms until it holds, failing after 20 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// gate wraps a model: each Synthesize, SynthesizeStream and Score call
// reports on started, then waits until it receives from release (a send
// lets one call through, closing it all of them) or its context ends, and
// then calls the model with that context; the model's error is sent on
// finished.
type gate struct {
	server.Vocoder
	started  chan struct{}
	release  chan struct{}
	finished chan error
}

func newGate(m server.Vocoder) *gate {
	return &gate{Vocoder: m, started: make(chan struct{}, 16), release: make(chan struct{}), finished: make(chan error, 16)}
}

// wait holds a call as described on gate.
func (g *gate) wait(ctx context.Context) {
	g.started <- struct{}{}
	select {
	case <-g.release:
	case <-ctx.Done():
	}
}

func (g *gate) Synthesize(ctx context.Context, mel melspec.Spectrogram, opts vocoder.SynthesizeOptions) ([]float32, error) {
	g.wait(ctx)
	a, err := g.Vocoder.Synthesize(ctx, mel, opts)
	g.finished <- err
	return a, err
}

func (g *gate) SynthesizeStream(ctx context.Context, mel melspec.Spectrogram, opts vocoder.StreamOptions, emit func([]float32) error) error {
	g.wait(ctx)
	err := g.Vocoder.SynthesizeStream(ctx, mel, opts, emit)
	g.finished <- err
	return err
}

func (g *gate) Score(ctx context.Context, samples []float32, sigma float64) (*vocoder.Score, error) {
	g.wait(ctx)
	s, err := g.Vocoder.Score(ctx, samples, sigma)
	g.finished <- err
	return s, err
}
