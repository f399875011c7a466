package server_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/glowvoc/glowvoc/audio"
	"github.com/glowvoc/glowvoc/internal/npy"
	"github.com/glowvoc/glowvoc/melspec"
	"github.com/glowvoc/glowvoc/server"
	"github.com/glowvoc/glowvoc/vocoder"
)

// expectedAudio is what the model gives for mel and opts, encoded as a
// whole WAV in format f (the body /synthesize must answer).
func expectedAudio(t *testing.T, m *vocoder.Model, mel melspec.Spectrogram, opts vocoder.SynthesizeOptions, denoise float64, f audio.Format) []byte {
	t.Helper()
	samples, err := m.Synthesize(context.Background(), mel, opts)
	if err != nil {
		t.Fatal(err)
	}
	if denoise > 0 {
		if samples, err = m.Denoise(context.Background(), samples, denoise); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := audio.Encode(&buf, audio.Clip{Samples: samples, SampleRate: m.Config().Mel.SampleRate}, f); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// npyBody encodes mel as .npy with the given leading shape.
func npyBody(t *testing.T, shape []int, data []float32) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := npy.Write(&buf, npy.Array{Shape: shape, Data: data}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rawBody encodes values as little-endian float32.
func rawBody(values []float32) []byte {
	b := make([]byte, 0, 4*len(values))
	for _, v := range values {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

// TestSynthesize checks every input encoding and output format against
// the model called directly, byte for byte.
func TestSynthesize(t *testing.T) {
	t.Parallel()
	m := testModel(t)
	ts := ready(t, m, server.Config{})
	const frames = 8
	mel := speechMel(t, m, frames)
	n := m.Samples(frames)
	def := vocoder.SynthesizeOptions{Sigma: server.DefaultSigma, Seed: server.DefaultSeed}

	tests := []struct {
		name        string
		query       string
		contentType string
		body        []byte
		opts        vocoder.SynthesizeOptions
		format      string // wav, f32 or pcm
	}{
		{"json defaults", "", "application/json", melJSON(t, mel, nil), def, "wav"},
		{"json body options", "", "application/json; charset=utf-8",
			melJSON(t, mel, map[string]any{"sigma": 0.3, "seed": 5, "format": "f32", "stream": false}),
			vocoder.SynthesizeOptions{Sigma: 0.3, Seed: 5}, "f32"},
		{"json query options", "?sigma=0&format=pcm", "application/json", melJSON(t, mel, nil),
			vocoder.SynthesizeOptions{Sigma: 0, Seed: 1}, "pcm"},
		{"npy 2-D", "?seed=9", "application/x-npy", npyBody(t, []int{mel.NMels, frames}, mel.Data),
			vocoder.SynthesizeOptions{Sigma: 0.6, Seed: 9}, "wav"},
		{"npy 3-D", "?format=wav", "application/x-npy", npyBody(t, []int{1, mel.NMels, frames}, mel.Data), def, "wav"},
		{"raw float32", "?n_mels=8&seed=2&format=f32", "application/octet-stream", rawBody(mel.Data),
			vocoder.SynthesizeOptions{Sigma: 0.6, Seed: 2}, "f32"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, http.MethodPost, ts.url+"/synthesize"+tc.query, tc.contentType, tc.body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if got := resp.Header.Get("X-Sample-Rate"); got != "22050" {
				t.Errorf("X-Sample-Rate %q", got)
			}
			if resp.ContentLength != int64(len(body)) {
				t.Errorf("Content-Length %d for %d bytes", resp.ContentLength, len(body))
			}
			var want []byte
			switch tc.format {
			case "wav":
				want = expectedAudio(t, m, mel, tc.opts, 0, audio.PCM16)
			case "f32":
				want = expectedAudio(t, m, mel, tc.opts, 0, audio.Float32)
			case "pcm":
				wav := expectedAudio(t, m, mel, tc.opts, 0, audio.PCM16)
				want = wav[len(wav)-2*n:] // the data chunk's payload
			}
			wantType := map[string]string{"wav": "audio/wav", "f32": "audio/wav", "pcm": "application/octet-stream"}[tc.format]
			if got := resp.Header.Get("Content-Type"); got != wantType {
				t.Errorf("Content-Type %q, want %q", got, wantType)
			}
			if !bytes.Equal(body, want) {
				t.Errorf("body of %d bytes differs from the model's %d bytes", len(body), len(want))
			}
		})
	}
}

// TestSynthesizeDenoise checks the denoise option against the model's
// denoiser.
func TestSynthesizeDenoise(t *testing.T) {
	t.Parallel()
	m := testModel(t)
	ts := ready(t, m, server.Config{})
	mel := speechMel(t, m, 8)
	resp, body := do(t, http.MethodPost, ts.url+"/synthesize?denoise=0.05&seed=4", "application/json", melJSON(t, mel, nil))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	want := expectedAudio(t, m, mel, vocoder.SynthesizeOptions{Sigma: 0.6, Seed: 4}, 0.05, audio.PCM16)
	if !bytes.Equal(body, want) {
		t.Errorf("denoised body differs from the model's denoised audio")
	}
	plain := expectedAudio(t, m, mel, vocoder.SynthesizeOptions{Sigma: 0.6, Seed: 4}, 0, audio.PCM16)
	if bytes.Equal(body, plain) {
		t.Errorf("denoise=0.05 changed nothing")
	}
}

// TestReproducibleUnderLoad sends concurrent requests with different seeds
// and checks each answer is exactly the model's output for its seed,
// whatever runs next to it.
func TestReproducibleUnderLoad(t *testing.T) {
	t.Parallel()
	m := testModel(t)
	ts := ready(t, m, server.Config{Workers: 2, QueueSize: 8})
	mel := speechMel(t, m, 6)
	const requests = 6
	bodies := make([][]byte, requests)
	var wg sync.WaitGroup
	for i := range requests {
		wg.Go(func() {
			resp, body := do(t, http.MethodPost, ts.url+"/synthesize?seed="+strconv.Itoa(100+i%3), "application/json", melJSON(t, mel, nil))
			if resp.StatusCode != http.StatusOK {
				t.Errorf("request %d: status %d: %s", i, resp.StatusCode, body)
			}
			bodies[i] = body
		})
	}
	wg.Wait()
	for seed := uint64(100); seed < 103; seed++ {
		want := expectedAudio(t, m, mel, vocoder.SynthesizeOptions{Sigma: 0.6, Seed: seed}, 0, audio.PCM16)
		for i := int(seed - 100); i < requests; i += 3 {
			if !bytes.Equal(bodies[i], want) {
				t.Errorf("request %d (seed %d) differs from the model's output", i, seed)
			}
		}
	}
	if bytes.Equal(bodies[0], bodies[1]) {
		t.Errorf("seeds 100 and 101 gave the same audio")
	}
}

// TestSynthesizeErrors checks that bad requests get the right status and a
// JSON error naming the problem, before any synthesis.
func TestSynthesizeErrors(t *testing.T) {
	t.Parallel()
	m := testModel(t)
	const maxFrames, maxBody = 50, 200 << 10
	ts := start(t, m, server.Config{MaxFrames: maxFrames, MaxBodyBytes: maxBody}, server.ServeOptions{})
	mel := speechMel(t, m, 4)
	good := melJSON(t, mel, nil)
	nan := append([]float32(nil), mel.Data...)
	nan[2*4+3] = float32(math.NaN()) // mel 2, frame 3
	inf := append([]float32(nil), mel.Data...)
	inf[5] = float32(math.Inf(1))
	const (
		js  = "application/json"
		np  = "application/x-npy"
		raw = "application/octet-stream"
	)
	tests := []struct {
		name        string
		query       string
		contentType string
		body        []byte
		status      int
		msg         string // a substring of the error
	}{
		{"malformed JSON", "", js, []byte(`{"mel": [[1, 2}`), 400, "JSON body: malformed at byte"},
		{"truncated JSON", "", js, good[:len(good)/2], 400, "JSON body: body ends early"},
		{"empty JSON", "", js, nil, 400, "JSON body: empty body"},
		{"JSON after JSON", "", js, append(append([]byte{}, good...), good...), 400, "data after the JSON object"},
		{"unknown field", "", js, melJSON(t, mel, map[string]any{"sgima": 1}), 400, `unknown field "sgima"`},
		{"no mel", "", js, []byte(`{"sigma": 1}`), 400, `"mel" is missing`},
		{"ragged mel", "", js, []byte(`{"mel": [[1, 2], [3]]}`), 400, "mel row 1 has 1 frames, row 0 has 2"},
		{"string value", "", js, []byte(`{"mel": [["x"]]}`), 400, "field mel: string is not a valid float32"},
		{"float32 overflow", "", js, []byte(`{"mel": [[1e39]]}`), 400, "1e39 is not a valid float32"},
		{"wrong n_mels", "", js, []byte(`{"mel": [[1, 2], [3, 4]]}`), 400, "mel has 2 channels (n_mels), the model expects 8"},
		{"negative sigma in body", "", js, melJSON(t, mel, map[string]any{"sigma": -1}), 400, "sigma -1 must be finite and non-negative"},
		{"negative sigma in query", "?sigma=-0.5", js, good, 400, "sigma -0.5 must be finite and non-negative"},
		{"NaN sigma", "?sigma=NaN", js, good, 400, "sigma NaN must be finite"},
		{"huge sigma", "?sigma=1e300", js, good, 400, "sigma 1e+300 must be at most 10"},
		{"sigma not a number", "?sigma=abc", js, good, 400, `query parameter sigma="abc" is not valid`},
		{"negative seed", "?seed=-1", js, good, 400, `query parameter seed="-1" is not valid`},
		{"negative denoise", "", js, melJSON(t, mel, map[string]any{"denoise": -0.1}), 400, "denoise -0.1 must be finite"},
		{"bad stream", "?stream=maybe", js, good, 400, `query parameter stream="maybe"`},
		{"option twice", "?seed=3", js, melJSON(t, mel, map[string]any{"seed": 3}), 400, "seed is given both as a query parameter and in the body"},
		{"bad format", "?format=mp3", js, good, 400, `format "mp3": want wav, f32 or pcm`},
		{"stream with denoise", "?stream=true&denoise=0.1", js, good, 400, "denoise is not available with stream=true"},
		{"too many frames", "", js, melJSON(t, speechMel(t, m, maxFrames+1), nil), 413, "mel has 51 frames, more than the limit of 50"},
		{"npy NaN", "", np, npyBody(t, []int{8, 4}, nan), 400, "invalid mel: value NaN at mel 2, frame 3"},
		{"npy shape", "", np, npyBody(t, []int{32}, mel.Data), 400, "npy body: shape [32], want [n_mels, frames]"},
		{"npy n_mels", "", np, npyBody(t, []int{4, 8}, mel.Data), 400, "mel has 4 channels"},
		{"npy garbage", "", np, []byte("not an npy file"), 400, "npy body: "},
		{"npy trailing data", "", np, append(npyBody(t, []int{8, 4}, mel.Data), 0), 400, "npy body: data after the array"},
		{"raw without n_mels", "", raw, rawBody(mel.Data), 400, "need the n_mels query parameter"},
		{"raw bad n_mels", "?n_mels=zero", raw, rawBody(mel.Data), 400, `n_mels="zero" is not a positive integer`},
		{"raw partial frame", "?n_mels=8", raw, rawBody(mel.Data)[:4*8*3+4], 400, "not a whole number of frames of 8 float32 values"},
		{"raw wrong n_mels", "?n_mels=4", raw, rawBody(mel.Data), 400, "mel has 4 channels"},
		{"raw Inf", "?n_mels=8", raw, rawBody(inf), 400, "invalid mel: value +Inf at mel 1, frame 1"},
		{"raw empty", "?n_mels=8", raw, nil, 400, "mel has no frames"},
		{"body too large", "?n_mels=8", raw, make([]byte, maxBody+4), 413, "larger than 204800 bytes"},
		{"unsupported type", "", "text/plain", good, 415, `Content-Type "text/plain": want application/json`},
		{"no type", "", "", good, 415, `Content-Type "": want`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, http.MethodPost, ts.url+"/synthesize"+tc.query, tc.contentType, tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if msg := apiError(t, resp, body); !bytes.Contains([]byte(msg), []byte(tc.msg)) {
				t.Errorf("error %q does not contain %q", msg, tc.msg)
			}
		})
	}

	t.Run("chunked body too large", func(t *testing.T) {
		// No Content-Length: the limit applies while reading.
		req, err := http.NewRequest(http.MethodPost, ts.url+"/synthesize?n_mels=8", struct{ *bytes.Reader }{bytes.NewReader(make([]byte, maxBody+4))})
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", raw)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || resp.Request.ContentLength > 0 {
			t.Errorf("status %d (Content-Length %d), want 413 for a chunked body", resp.StatusCode, resp.Request.ContentLength)
		}
	})

	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{http.MethodGet, "/synthesize", 405},
		{http.MethodPut, "/score", 405},
		{http.MethodGet, "/nowhere", 404},
		{http.MethodGet, "/samples/nothing.wav", 404},
	} {
		t.Run(fmt.Sprint(tc.method, " ", tc.path), func(t *testing.T) {
			resp, body := do(t, tc.method, ts.url+tc.path, "", nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			apiError(t, resp, body)
		})
	}
}

// TestStandard80Mels runs the page's round trip with NVIDIA's 80-mel
// layout: /mel of speech as JSON, posted as is to /synthesize.
func TestStandard80Mels(t *testing.T) {
	t.Parallel()
	m := referenceModel(t, "tiny")
	ts := ready(t, m, server.Config{})
	resp, melBody := do(t, http.MethodPost, ts.url+"/mel?format=json", "audio/wav", readFile(t, filepath.Join("samples", "hello.wav")))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/mel: status %d: %s", resp.StatusCode, melBody)
	}
	resp, body := do(t, http.MethodPost, ts.url+"/synthesize?seed=7", "application/json", melBody)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/synthesize: status %d: %s", resp.StatusCode, body)
	}
	mel := speechMel(t, m, 94)
	if mel.NMels != 80 {
		t.Fatalf("model has %d mels", mel.NMels)
	}
	if want := expectedAudio(t, m, mel, vocoder.SynthesizeOptions{Sigma: 0.6, Seed: 7}, 0, audio.PCM16); !bytes.Equal(body, want) {
		t.Errorf("80-mel round trip differs from the model's output")
	}
}

// nonFinite is a model whose synthesis overflows.
type nonFinite struct{ server.Vocoder }

func (nonFinite) Synthesize(_ context.Context, mel melspec.Spectrogram, _ vocoder.SynthesizeOptions) ([]float32, error) {
	return []float32{0, float32(math.Inf(1)), float32(math.NaN())}, nil
}

// TestNonFiniteSynthesis checks that audio the model cannot make finite is
// answered 422, not 500.
func TestNonFiniteSynthesis(t *testing.T) {
	t.Parallel()
	m := testModel(t)
	ts := start(t, nonFinite{m}, server.Config{}, server.ServeOptions{})
	for _, format := range []string{"wav", "f32", "pcm"} {
		resp, body := do(t, http.MethodPost, ts.url+"/synthesize?format="+format, "application/json", melJSON(t, speechMel(t, m, 4), nil))
		if resp.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("format %s: status %d: %s", format, resp.StatusCode, body)
		}
		if msg := apiError(t, resp, body); !strings.Contains(msg, "not finite") {
			t.Errorf("format %s: error %q", format, msg)
		}
	}
}
