package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/glowvoc/glowvoc/audio"
	"github.com/glowvoc/glowvoc/internal/npy"
	"github.com/glowvoc/glowvoc/server"
	"github.com/glowvoc/glowvoc/vocoder"
)

// readFile returns the contents of a file, failing the test on error.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// refWAV returns a WAV file of the reference front-end fixtures.
func refWAV(t *testing.T, name string) []byte {
	t.Helper()
	return readFile(t, filepath.Join("..", "testdata", "reference", "mel", name))
}

// refClip returns a WAV file of the reference front-end fixtures and its
// decoded samples.
func refClip(t *testing.T, name string) ([]byte, []float32) {
	t.Helper()
	wav := refWAV(t, name)
	clip, err := audio.Decode(bytes.NewReader(wav))
	if err != nil {
		t.Fatal(err)
	}
	return wav, clip.Samples
}

// TestScore checks /score against the model's exact log-likelihood.
func TestScore(t *testing.T) {
	t.Parallel()
	m := testModel(t)
	ts := start(t, m, server.Config{}, server.ServeOptions{})
	wav, samples := refClip(t, "short_600.wav")
	for _, tc := range []struct {
		query string
		sigma float64
	}{{"", server.DefaultScoreSigma}, {"?sigma=0.5", 0.5}} {
		t.Run("sigma"+tc.query, func(t *testing.T) {
			resp, body := do(t, http.MethodPost, ts.url+"/score"+tc.query, "audio/wav", wav)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("status %d, Content-Type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			var got vocoder.Score
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			want, err := m.Score(context.Background(), samples, tc.sigma)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(&got, want) {
				t.Errorf("score\n%+v\nwant\n%+v", got, *want)
			}
			if len(got.FrameNLL) == 0 || got.Sigma != tc.sigma {
				t.Errorf("no per-frame values or wrong sigma: %+v", got)
			}
		})
	}
}

// TestMel checks /mel's .npy and JSON answers against the model's front end.
func TestMel(t *testing.T) {
	t.Parallel()
	m := testModel(t)
	ts := start(t, m, server.Config{}, server.ServeOptions{})
	wav, samples := refClip(t, "short_600.wav")
	want, err := m.Analyzer().Mel(samples)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, query, accept string
		json                bool
	}{
		{"default npy", "", "", false},
		{"format=npy", "?format=npy", "application/json", false},
		{"format=json", "?format=json", "", true},
		{"Accept json", "", "text/html, application/json;q=0.9", true},
		{"Accept npy", "", "application/x-npy", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, ts.url+"/mel"+tc.query, bytes.NewReader(wav))
			if err != nil {
				t.Fatal(err)
			}
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			resp, err := http.DefaultClient.Do(req) // no Content-Type: WAV bodies need none
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			var shape []int
			var data []float32
			if tc.json {
				var got struct{ Mel [][]float32 }
				if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
					t.Fatal(err)
				}
				shape = []int{len(got.Mel), len(got.Mel[0])}
				for _, row := range got.Mel {
					data = append(data, row...)
				}
			} else {
				if ct := resp.Header.Get("Content-Type"); ct != "application/x-npy" {
					t.Errorf("Content-Type %q", ct)
				}
				a, err := npy.Read(resp.Body, 0)
				if err != nil {
					t.Fatal(err)
				}
				shape, data = a.Shape, a.Data
			}
			if !reflect.DeepEqual(shape, []int{want.NMels, want.Frames}) || !reflect.DeepEqual(data, want.Data) {
				t.Errorf("mel of shape %v differs from the front end's [%d %d]", shape, want.NMels, want.Frames)
			}
		})
	}
}

// TestAnalyzeErrors checks bad WAV inputs to /score and /mel.
func TestAnalyzeErrors(t *testing.T) {
	t.Parallel()
	m := testModel(t)
	const maxFrames = 50
	ts := start(t, m, server.Config{MaxFrames: maxFrames}, server.ServeOptions{})
	tests := []struct {
		name, path string
		body       []byte
		status     int
		msg        string
	}{
		{"not a WAV", "/score", []byte("ID3 this is an mp3"), 400, "WAV body: "},
		{"empty", "/mel", nil, 400, "WAV body: "},
		{"truncated", "/mel", refWAV(t, "short_600.wav")[:600], 400, "WAV body: "},
		{"wrong rate", "/score", refWAV(t, "short_300_16k.wav"), 400, "WAV sample rate is 16000 Hz, the model expects 22050 Hz"},
		{"too short", "/mel", refWAV(t, "short_300.wav"), 400, "WAV of 300 samples is too short: it needs more than 512"},
		{"too long", "/score", refWAV(t, "espeak_us_hello.wav"), 413, "makes 94 frames, more than the limit of 50"},
		{"score sigma 0", "/score?sigma=0", refWAV(t, "short_600.wav"), 400, `sigma="0" must be a number in (0, 10]`},
		{"score sigma Inf", "/score?sigma=Inf", refWAV(t, "short_600.wav"), 400, `sigma="Inf" must be a number in (0, 10]`},
		{"score not finite", "/score?sigma=1e-300", refWAV(t, "short_600.wav"), 422, "the log-likelihood of this audio is not finite under sigma 1e-300"},
		{"mel format", "/mel?format=xml", refWAV(t, "short_600.wav"), 400, `format "xml": want npy or json`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, http.MethodPost, ts.url+tc.path, "audio/wav", tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if msg := apiError(t, resp, body); !strings.Contains(msg, tc.msg) {
				t.Errorf("error %q does not contain %q", msg, tc.msg)
			}
		})
	}
}
