package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/glowvoc/glowvoc/server"
)

// FuzzSynthesize sends arbitrary bodies, content types and query strings to
// POST /synthesize: every answer must be a success or a client error with
// a JSON body naming it, never a 500 or a panic.
func FuzzSynthesize(f *testing.F) {
	m := testModel(f)
	srv, err := server.New(m, server.Config{MaxFrames: 32, MaxBodyBytes: 32 << 10})
	if err != nil {
		f.Fatal(err)
	}
	mel := speechMel(f, m, 4)
	types := []string{"application/json", "application/x-npy", "application/octet-stream", "text/plain"}
	f.Add(uint8(0), "", melJSON(f, mel, map[string]any{"sigma": 0.5}))
	f.Add(uint8(0), "stream=true&format=pcm", melJSON(f, mel, nil))
	f.Add(uint8(0), "", []byte(`{"mel": [[1e38, -1e38]], "seed": 18446744073709551615}`))
	f.Add(uint8(1), "seed=3", []byte("\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (8, 1), }"))
	f.Add(uint8(2), "n_mels=8&format=f32", rawBody(mel.Data))
	f.Add(uint8(3), "", []byte("x"))
	f.Fuzz(func(t *testing.T, typ uint8, query string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/synthesize", bytes.NewReader(body))
		req.URL.RawQuery = query
		req.Header.Set("Content-Type", types[int(typ)%len(types)])
		rec := httptest.NewRecorder()
		t0 := time.Now()
		srv.ServeHTTP(rec, req)
		if d := time.Since(t0); d > 5*time.Second { // never a hang
			t.Fatalf("slow: %v for %q %q", d, query, body)
		}
		switch rec.Code {
		case http.StatusOK:
			return
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		var e struct{ Error string }
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
			t.Fatalf("status %d with body %q", rec.Code, rec.Body)
		}
	})
}
