package server

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/glowvoc/glowvoc/vocoder"
)

// pageFiles holds the page template and the bundled WAV samples
// (samples/hello.wav: espeak-ng en-us, the reference fixtures' "hello").
//
//go:embed page.html samples/*.wav
var pageFiles embed.FS

// renderPage renders the page at / once, for a model.
func renderPage(model string, cfg vocoder.Config) ([]byte, error) {
	tmpl, err := template.ParseFS(pageFiles, "page.html")
	if err != nil {
		return nil, fmt.Errorf("page template: %w", err)
	}
	samples, err := fs.Glob(pageFiles, "samples/*.wav")
	if err != nil {
		return nil, fmt.Errorf("page samples: %w", err)
	}
	for i, s := range samples {
		samples[i] = s[len("samples/"):]
	}
	var buf bytes.Buffer
	err = tmpl.Execute(&buf, struct {
		Model                  string
		SampleRate, NMels, Hop int
		Samples                []string
	}{model, cfg.Mel.SampleRate, cfg.NMels, cfg.Mel.Hop, samples})
	if err != nil {
		return nil, fmt.Errorf("page template: %w", err)
	}
	return buf.Bytes(), nil
}

// servePage answers GET /: a page to upload a WAV or pick a bundled
// sample, hear its resynthesis and see both spectrograms.
func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; media-src 'self' blob:; img-src 'self' blob:")
	h.Set("X-Content-Type-Options", "nosniff")
	w.Write(s.page)
}

// serveSample answers GET /samples/{name}: a bundled WAV.
func (s *Server) serveSample(w http.ResponseWriter, r *http.Request) {
	b, err := fs.ReadFile(pageFiles, "samples/"+chi.URLParam(r, "name"))
	if err != nil {
		writeError(w, r, http.StatusNotFound, "no sample "+chi.URLParam(r, "name"))
		return
	}
	w.Header().Set("Content-Type", "audio/wav")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	w.Write(b)
}
