package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glowvoc/glowvoc/server"
)

// TestHealthAndReadiness checks that /healthz answers at once and /readyz
// only after the warm-up.
func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	ts := start(t, testModel(t), server.Config{}, server.ServeOptions{})
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		if resp, body := do(t, method, ts.url+"/healthz", "", nil); resp.StatusCode != http.StatusOK {
			t.Errorf("%s /healthz: %d %s", method, resp.StatusCode, body)
		}
	}
	if resp, body := do(t, http.MethodGet, ts.url+"/readyz", "", nil); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "warming up") {
		t.Errorf("/readyz before the warm-up: %d %s", resp.StatusCode, body)
	}
	if err := ts.Warm(context.Background()); err != nil {
		t.Fatal(err)
	}
	if resp, body := do(t, http.MethodGet, ts.url+"/readyz", "", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz after the warm-up: %d %s", resp.StatusCode, body)
	}
}

// TestWarmChecksStreamOptions checks that stream chunk settings the
// vocoder rejects make the warm-up fail, before any request.
func TestWarmChecksStreamOptions(t *testing.T) {
	t.Parallel()
	ts := start(t, testModel(t), server.Config{StreamFirstChunkFrames: 1}, server.ServeOptions{})
	if err := ts.Warm(context.Background()); err == nil {
		t.Errorf("a first chunk of 1 frame (shorter than two cross-fades) was accepted")
	}
	if resp, _ := do(t, http.MethodGet, ts.url+"/readyz", "", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz %d after a failed warm-up", resp.StatusCode)
	}
}

// TestModels checks /v1/models against the model's configuration.
func TestModels(t *testing.T) {
	t.Parallel()
	m := testModel(t)
	ts := start(t, m, server.Config{ModelName: "tiny-test"}, server.ServeOptions{})
	resp, body := do(t, http.MethodGet, ts.url+"/v1/models", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var got struct {
		Models []struct {
			ID         string          `json:"id"`
			SampleRate int             `json:"sample_rate"`
			NMels      int             `json:"n_mels"`
			HopLength  int             `json:"hop_length"`
			Config     json.RawMessage `json:"config"`
		} `json:"models"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	want, err := json.Marshal(m.Config())
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Models) != 1 {
		t.Fatalf("%d models", len(got.Models))
	}
	g := got.Models[0]
	if g.ID != "tiny-test" || g.SampleRate != 22050 || g.NMels != 8 || g.HopLength != 256 || !bytes.Equal(g.Config, want) {
		t.Errorf("got %+v (config %s), want config %s", g, g.Config, want)
	}
	if !strings.Contains(string(g.Config), `"waveglow_config"`) || !strings.Contains(string(g.Config), `"data_config"`) {
		t.Errorf("config not in NVIDIA's layout: %s", g.Config)
	}
}

// TestMetrics checks that /metrics has the service's metrics, labelled by
// route pattern and code.
func TestMetrics(t *testing.T) {
	t.Parallel()
	m := testModel(t)
	ts := start(t, m, server.Config{Workers: 3, QueueSize: 5}, server.ServeOptions{})
	do(t, http.MethodPost, ts.url+"/synthesize", "application/json", melJSON(t, speechMel(t, m, 4), nil))
	do(t, http.MethodPost, ts.url+"/synthesize", "text/plain", nil)
	do(t, http.MethodGet, ts.url+"/healthz", "", nil)
	do(t, http.MethodGet, ts.url+"/no/such/route", "", nil)
	for prefix, want := range map[string]float64{
		`glowvoc_http_requests_total{code="200",method="POST",route="/synthesize"}`:                 1,
		`glowvoc_http_requests_total{code="415",method="POST",route="/synthesize"}`:                 1,
		`glowvoc_http_requests_total{code="200",method="GET",route="/healthz"}`:                     1,
		`glowvoc_http_requests_total{code="404",method="GET",route="unmatched"}`:                    1,
		`glowvoc_http_request_duration_seconds_count{code="200",method="POST",route="/synthesize"}`: 1,
		`glowvoc_audio_seconds_total{mode="whole"}`:                                                 float64(m.Samples(4)) / 22050,
		`glowvoc_real_time_factor_count{mode="whole"}`:                                              1,
		`glowvoc_queue_depth`:             0,
		`glowvoc_workers_busy`:            0,
		`glowvoc_workers`:                 3,
		`glowvoc_queue_capacity`:          5,
		`glowvoc_http_requests_in_flight`: 1, // the scrape itself
	} {
		got, err := metric(t, ts, prefix)
		if err != nil || got != want {
			t.Errorf("%s = %v (%v), want %v", prefix, got, err, want)
		}
	}
	if _, err := metric(t, ts, "process_resident_memory_bytes"); err != nil {
		t.Errorf("no process metrics: %v", err)
	}
}

// TestRequestID checks that a request id is echoed or made up, and appears
// in the log lines of the request.
func TestRequestID(t *testing.T) {
	t.Parallel()
	ts := start(t, testModel(t), server.Config{}, server.ServeOptions{})
	for _, tc := range []struct {
		sent string
		keep bool
	}{
		{"lb-7f3a:42", true},
		{"bad id with spaces", false},
		{strings.Repeat("x", 129), false},
		{"", false},
	} {
		req, err := http.NewRequest(http.MethodPost, ts.url+"/synthesize", strings.NewReader("{"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if tc.sent != "" {
			req.Header.Set("X-Request-Id", tc.sent)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		id := resp.Header.Get("X-Request-Id")
		if (id == tc.sent) != tc.keep || id == "" {
			t.Errorf("sent %q, got back %q", tc.sent, id)
		}
		if !strings.Contains(ts.logs.String(), `"request_id":"`+id+`"`) {
			t.Errorf("no log line with request_id %q", id)
		}
	}
}

// TestPageAndSamples checks the page's HTML and the bundled sample route
// (the page itself is exercised in a browser by TestPageInBrowser).
func TestPageAndSamples(t *testing.T) {
	t.Parallel()
	ts := start(t, testModel(t), server.Config{ModelName: "tiny-test"}, server.ServeOptions{})
	resp, body := do(t, http.MethodGet, ts.url+"/", "", nil)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{"<option>hello.wav</option>", "model tiny-test", `data-rate="22050"`, `id="file"`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("page lacks %q", want)
		}
	}
	resp, body = do(t, http.MethodGet, ts.url+"/samples/hello.wav", "", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "audio/wav" ||
		!bytes.Equal(body, readFile(t, filepath.Join("samples", "hello.wav"))) {
		t.Errorf("sample: status %d, Content-Type %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
	if resp, _ := do(t, http.MethodGet, ts.url+"/samples/..%2fpage.html", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("escaping the samples directory: status %d", resp.StatusCode)
	}
}
