package server_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/glowvoc/glowvoc/melspec"
	"github.com/glowvoc/glowvoc/server"
	"github.com/glowvoc/glowvoc/vocoder"
)

// result is an HTTP exchange done in the background.
type result struct {
	status int
	body   []byte
	header http.Header
}

// goPost sends a POST /synthesize with a JSON body in the background.
func goPost(t *testing.T, ctx context.Context, url string, body []byte) <-chan result {
	t.Helper()
	out := make(chan result, 1)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			out <- result{status: -1, body: []byte(err.Error())}
			return
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		out <- result{status: resp.StatusCode, body: buf.Bytes(), header: resp.Header}
	}()
	return out
}

// within returns what ch delivers, failing the test after 20 s.
func within[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// TestBusy checks the bounded pool: with one worker and one queue place,
// a third concurrent request gets 429 with Retry-After, and the first two
// complete.
func TestBusy(t *testing.T) {
	t.Parallel()
	m := testModel(t)
	g := newGate(m)
	ts := start(t, g, server.Config{Workers: 1, QueueSize: 1}, server.ServeOptions{})
	body := melJSON(t, speechMel(t, m, 4), nil)
	url := ts.url + "/synthesize"

	first := goPost(t, context.Background(), url, body)
	within(t, g.started, "the first synthesis")
	second := goPost(t, context.Background(), url, body)
	waitFor(t, "the second request to queue", func() bool {
		v, err := metric(t, ts, "glowvoc_queue_depth")
		return err == nil && v == 1
	})
	if v, err := metric(t, ts, "glowvoc_workers_busy"); err != nil || v != 1 {
		t.Errorf("workers busy %v (%v), want 1", v, err)
	}
	for range 3 {
		resp, b := do(t, http.MethodPost, url, "application/json", body)
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("status %d beyond capacity: %s", resp.StatusCode, b)
		}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
			t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
		}
		apiError(t, resp, b)
	}
	close(g.release)
	for i, ch := range []<-chan result{first, second} {
		if r := within(t, ch, "an answer"); r.status != http.StatusOK {
			t.Errorf("request %d: status %d: %s", i, r.status, r.body)
		}
	}
	if v, err := metric(t, ts, `glowvoc_http_requests_total{code="429",method="POST",route="/synthesize"}`); err != nil || v != 3 {
		t.Errorf("429s counted %v (%v), want 3", v, err)
	}
}

// TestClientGoneCancels checks that a client disconnecting cancels its
// synthesis through the vocoder, frees the worker and is recorded as 499.
func TestClientGoneCancels(t *testing.T) {
	t.Parallel()
	m := testModel(t)
	for _, stream := range []bool{false, true} {
		t.Run("stream="+strconv.FormatBool(stream), func(t *testing.T) {
			g := newGate(m)
			ts := start(t, g, server.Config{Workers: 1}, server.ServeOptions{})
			ctx, cancel := context.WithCancel(context.Background())
			answer := goPost(t, ctx, ts.url+"/synthesize?stream="+strconv.FormatBool(stream), melJSON(t, speechMel(t, m, 4), nil))
			within(t, g.started, "the synthesis")
			cancel()
			// The gate lets the call through once the request's context
			// ends; the real vocoder must then stop with that error.
			if err := within(t, g.finished, "the vocoder to return"); !errors.Is(err, context.Canceled) {
				t.Errorf("vocoder returned %v, want context.Canceled", err)
			}
			if r := within(t, answer, "the client"); r.status != -1 {
				t.Errorf("client got status %d", r.status)
			}
			waitFor(t, "the 499 to be recorded", func() bool {
				v, err := metric(t, ts, `glowvoc_http_requests_total{code="499",method="POST",route="/synthesize"}`)
				return err == nil && v == 1
			})
			if v, err := metric(t, ts, "glowvoc_workers_busy"); err != nil || v != 0 {
				t.Errorf("workers busy %v (%v) after the cancellation", v, err)
			}
		})
	}
}

// TestDeadline checks that a request running past the deadline, or
// waiting for a worker past it, is answered 503 and its synthesis stops.
func TestDeadline(t *testing.T) {
	t.Parallel()
	m := testModel(t)
	g := newGate(m)
	ts := start(t, g, server.Config{Workers: 1, QueueSize: 1, RequestTimeout: 300 * time.Millisecond}, server.ServeOptions{})
	body := melJSON(t, speechMel(t, m, 4), nil)
	running := goPost(t, context.Background(), ts.url+"/synthesize", body)
	within(t, g.started, "the synthesis")
	queued := goPost(t, context.Background(), ts.url+"/synthesize?stream=true", body)
	for name, ch := range map[string]<-chan result{"running": running, "queued": queued} {
		r := within(t, ch, "an answer")
		if r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), "deadline exceeded") {
			t.Errorf("%s request: status %d: %s", name, r.status, r.body)
		}
	}
	if err := within(t, g.finished, "the vocoder to return"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("vocoder returned %v, want context.DeadlineExceeded", err)
	}
}

// panicky panics in Synthesize.
type panicky struct{ server.Vocoder }

func (panicky) Synthesize(context.Context, melspec.Spectrogram, vocoder.SynthesizeOptions) ([]float32, error) {
	panic("index out of range [7] with length 7")
}

// TestPanicRecovered checks that a panic becomes a logged 500 and the
// server keeps serving.
func TestPanicRecovered(t *testing.T) {
	t.Parallel()
	m := testModel(t)
	ts := start(t, panicky{m}, server.Config{Workers: 1}, server.ServeOptions{})
	body := melJSON(t, speechMel(t, m, 4), nil)
	for range 2 { // the worker was given back: the second request runs too
		resp, b := do(t, http.MethodPost, ts.url+"/synthesize", "application/json", body)
		if resp.StatusCode != http.StatusInternalServerError || apiError(t, resp, b) != "internal error" {
			t.Errorf("status %d: %s", resp.StatusCode, b)
		}
	}
	if resp, _ := do(t, http.MethodGet, ts.url+"/healthz", "", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz %d after a panic", resp.StatusCode)
	}
	if logs := ts.logs.String(); !strings.Contains(logs, `"msg":"panic"`) || !strings.Contains(logs, "index out of range") {
		t.Errorf("panic not logged:\n%s", logs)
	}
}

// TestGracefulShutdown checks the shutdown sequence: /readyz answers 503
// during the drain delay, the listener closes, an in-flight request still
// completes and Serve returns nil.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	m := testModel(t)
	g := newGate(m)
	ts := start(t, g, server.Config{}, server.ServeOptions{DrainDelay: time.Second, ShutdownTimeout: 20 * time.Second})
	warmed := make(chan error, 1)
	go func() { warmed <- ts.Warm(context.Background()) }()
	within(t, g.started, "the warm-up")
	g.release <- struct{}{}
	if err := within(t, warmed, "the warm-up"); err != nil {
		t.Fatal(err)
	}
	if resp, _ := do(t, http.MethodGet, ts.url+"/readyz", "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz %d after the warm-up", resp.StatusCode)
	}

	inflight := goPost(t, context.Background(), ts.url+"/synthesize", melJSON(t, speechMel(t, m, 4), nil))
	within(t, g.started, "the synthesis")
	<-g.finished // the warm-up's
	stopped := make(chan error, 1)
	go func() { stopped <- ts.stop(t) }()
	waitFor(t, "/readyz to answer 503", func() bool {
		resp, err := http.Get(ts.url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	addr := strings.TrimPrefix(ts.url, "http://")
	waitFor(t, "the listener to close", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	g.release <- struct{}{}
	if r := within(t, inflight, "the in-flight answer"); r.status != http.StatusOK || len(r.body) != 44+2*m.Samples(4) {
		t.Errorf("in-flight request: status %d, %d bytes", r.status, len(r.body))
	}
	if err := within(t, stopped, "Serve to return"); err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// TestForcedShutdown checks that requests still running when the shutdown
// timeout passes are cancelled, and Serve says so.
func TestForcedShutdown(t *testing.T) {
	t.Parallel()
	m := testModel(t)
	g := newGate(m)
	ts := start(t, g, server.Config{}, server.ServeOptions{ShutdownTimeout: 200 * time.Millisecond})
	inflight := goPost(t, context.Background(), ts.url+"/synthesize", melJSON(t, speechMel(t, m, 4), nil))
	within(t, g.started, "the synthesis")
	if err := ts.stop(t); err == nil || !strings.Contains(err.Error(), "graceful shutdown") {
		t.Errorf("Serve returned %v, want a graceful shutdown error", err)
	}
	if err := within(t, g.finished, "the vocoder to return"); !errors.Is(err, context.Canceled) {
		t.Errorf("vocoder returned %v, want context.Canceled", err)
	}
	if r := within(t, inflight, "the client"); r.status != -1 {
		t.Errorf("client got status %d, want a broken connection", r.status)
	}
}

// TestSlowUpload checks that a client sending its body too slowly is cut
// off soon after the request deadline and gives its place back.
func TestSlowUpload(t *testing.T) {
	t.Parallel()
	ts := start(t, testModel(t), server.Config{Workers: 1, QueueSize: 0, RequestTimeout: 200 * time.Millisecond}, server.ServeOptions{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Headers and the first bytes of a body that never comes.
	if _, err := conn.Write([]byte("POST /synthesize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"mel\": [[")); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("status %d, want 408", resp.StatusCode)
	}
	// The place is free again: the next request is served.
	if r, body := do(t, http.MethodPost, ts.url+"/synthesize", "text/plain", nil); r.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("next request: status %d: %s", r.StatusCode, body)
	}
}
