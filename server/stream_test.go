package server_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/glowvoc/glowvoc/melspec"
	"github.com/glowvoc/glowvoc/server"
	"github.com/glowvoc/glowvoc/vocoder"
)

// lockstep wraps a model so that its streamed synthesis waits, after each
// piece has been handed to the server, until the test has received that
// piece over HTTP: the stream can only complete if the server really sends
// each piece as it is produced.
type lockstep struct {
	server.Vocoder
	pieces chan int      // length of each piece the server has accepted
	next   chan struct{} // lets the synthesis continue
	done   chan error    // the synthesis' result
}

func (l *lockstep) SynthesizeStream(ctx context.Context, mel melspec.Spectrogram, opts vocoder.StreamOptions, emit func([]float32) error) error {
	err := l.Vocoder.SynthesizeStream(ctx, mel, opts, func(a []float32) error {
		if err := emit(a); err != nil {
			return err
		}
		l.pieces <- len(a)
		select {
		case <-l.next:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	l.done <- err
	return err
}

// readWAVHeader reads a WAV header up to the start of the data chunk and
// returns the data chunk's declared size.
func readWAVHeader(t *testing.T, r io.Reader) uint32 {
	t.Helper()
	var riff [12]byte
	if _, err := io.ReadFull(r, riff[:]); err != nil || string(riff[:4]) != "RIFF" || string(riff[8:]) != "WAVE" {
		t.Fatalf("no RIFF/WAVE header (%v): %q", err, riff)
	}
	if size := binary.LittleEndian.Uint32(riff[4:]); size != 0xFFFFFFFF {
		t.Errorf("RIFF size %#x, want 0xFFFFFFFF for a stream", size)
	}
	for {
		var hdr [8]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			t.Fatalf("reading a chunk header: %v", err)
		}
		size := binary.LittleEndian.Uint32(hdr[4:])
		if string(hdr[:4]) == "data" {
			return size
		}
		if _, err := io.CopyN(io.Discard, r, int64(size)); err != nil {
			t.Fatalf("skipping chunk %q: %v", hdr[:4], err)
		}
	}
}

// readWithin is io.ReadFull that fails the test after 20 s.
func readWithin(t *testing.T, r io.Reader, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	got := make(chan error, 1)
	go func() { _, err := io.ReadFull(r, b); got <- err }()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("reading %d bytes: %v", n, err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no %d bytes within 20 s: the piece was not sent", n)
	}
	return b
}

// joinQuality compares streamed audio with the whole-utterance synthesis:
// the SNR of whole against their difference, and a click detector, the
// largest ratio over the joins of the biggest sample-to-sample step within
// 512 samples of the join in got to that in want.
func joinQuality(got, want []float32, joins []int) (snr, stepRatio float64) {
	var sig, noise float64
	for i := range want {
		d := float64(got[i] - want[i])
		sig += float64(want[i]) * float64(want[i])
		noise += d * d
	}
	snr = 10 * math.Log10(sig/math.Max(noise, 1e-30))
	const radius = 512
	for _, j := range joins {
		lo, hi := max(1, j-radius), min(len(got), j+radius)
		step := func(a []float32) float64 {
			var s float64
			for i := lo; i < hi; i++ {
				s = math.Max(s, math.Abs(float64(a[i]-a[i-1])))
			}
			return s
		}
		stepRatio = math.Max(stepRatio, step(got)/step(want))
	}
	return snr, stepRatio
}

// TestStream checks that stream=true sends a WAV header with unknown sizes
// and then each piece of audio as soon as it is synthesised, and measures
// the joins against the whole-utterance synthesis.
func TestStream(t *testing.T) {
	t.Parallel()
	m := testModel(t)
	ls := &lockstep{Vocoder: m, pieces: make(chan int), next: make(chan struct{}), done: make(chan error, 1)}
	ts := start(t, ls, server.Config{StreamFirstChunkFrames: 8, StreamChunkFrames: 16}, server.ServeOptions{})
	const frames = 60
	mel := speechMel(t, m, frames)
	opts := vocoder.SynthesizeOptions{Sigma: 0.6, Seed: 11}

	req, err := http.NewRequest(http.MethodPost, ts.url+"/synthesize?stream=true&format=f32&seed=11", bytes.NewReader(melJSON(t, mel, nil)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	sent := time.Now()
	responses := make(chan *http.Response, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			close(responses)
			return
		}
		responses <- resp
	}()

	var got []float32
	var joins []int
	var resp *http.Response
	var firstAudio time.Duration
	for finished := false; !finished; {
		select {
		case n := <-ls.pieces:
			if resp == nil {
				if resp = <-responses; resp == nil {
					t.FailNow()
				}
				defer resp.Body.Close()
				if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "audio/wav" || resp.ContentLength != -1 {
					t.Fatalf("status %d, Content-Type %q, Content-Length %d: want a 200 audio/wav stream of unknown length",
						resp.StatusCode, resp.Header.Get("Content-Type"), resp.ContentLength)
				}
				if size := readWAVHeader(t, resp.Body); size != 0xFFFFFFFF {
					t.Errorf("data size %#x, want 0xFFFFFFFF", size)
				}
			}
			b := readWithin(t, resp.Body, 4*n)
			if firstAudio == 0 {
				firstAudio = time.Since(sent)
			}
			for i := 0; i < n; i++ {
				got = append(got, math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
			}
			joins = append(joins, len(got))
			ls.next <- struct{}{}
		case err := <-ls.done:
			if err != nil {
				t.Fatal(err)
			}
			finished = true
		}
	}
	if rest, err := io.ReadAll(resp.Body); err != nil || len(rest) != 0 {
		t.Errorf("after the last piece: %d bytes, %v", len(rest), err)
	}

	want, err := m.Synthesize(context.Background(), mel, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || len(joins) < 4 {
		t.Fatalf("streamed %d samples in %d pieces, want %d samples in at least 4", len(got), len(joins), len(want))
	}
	snr, step := joinQuality(got, want, joins[:len(joins)-1])
	t.Logf("%d pieces, first audio after %v; chunked vs whole: SNR %.1f dB, largest step near a join %.4f× the whole-utterance one",
		len(joins), firstAudio.Round(time.Millisecond), snr, step)
	if snr < 90 || step > 1.001 {
		t.Errorf("joins audible: SNR %.1f dB (want >= 90), step ratio %.4f (want <= 1.001)", snr, step)
	}
	if v, err := metric(t, ts, "glowvoc_stream_first_audio_seconds_count"); err != nil || v != 1 {
		t.Errorf("first-audio histogram count %v (%v), want 1", v, err)
	}
}

// TestStreamJSONAndPCM streams raw PCM, asked for in a JSON body, and
// compares it with the whole-utterance synthesis to within one step of
// 16-bit rounding.
func TestStreamJSONAndPCM(t *testing.T) {
	t.Parallel()
	m := testModel(t)
	ts := start(t, m, server.Config{StreamFirstChunkFrames: 4, StreamChunkFrames: 8}, server.ServeOptions{})
	mel := speechMel(t, m, 24)
	resp, body := do(t, http.MethodPost, ts.url+"/synthesize", "application/json",
		melJSON(t, mel, map[string]any{"stream": true, "format": "pcm", "seed": 3}))
	if resp.StatusCode != http.StatusOK || resp.ContentLength != -1 || resp.Header.Get("X-Sample-Format") != "s16le" {
		t.Fatalf("status %d, Content-Length %d, X-Sample-Format %q: %s", resp.StatusCode, resp.ContentLength, resp.Header.Get("X-Sample-Format"), body)
	}
	want, err := m.Synthesize(context.Background(), mel, vocoder.SynthesizeOptions{Sigma: 0.6, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(body) != 2*len(want) {
		t.Fatalf("%d bytes, want %d", len(body), 2*len(want))
	}
	for i, w := range want {
		g := float64(int16(binary.LittleEndian.Uint16(body[2*i:])))
		if d := math.Abs(g - max(-32768, min(32767, math.RoundToEven(float64(w)*32768)))); d > 1 {
			t.Fatalf("sample %d: %v, want %v", i, g, float64(w)*32768)
		}
	}
}

// failingStream fails its streamed synthesis after the first piece.
type failingStream struct{ server.Vocoder }

func (f failingStream) SynthesizeStream(ctx context.Context, mel melspec.Spectrogram, opts vocoder.StreamOptions, emit func([]float32) error) error {
	if err := emit(make([]float32, 256)); err != nil {
		return err
	}
	return errors.New("synthesis exploded")
}

// TestStreamFailureAborts checks that a failure after the stream has
// started cuts the connection, so that the client cannot mistake the
// partial audio for a complete answer.
func TestStreamFailureAborts(t *testing.T) {
	t.Parallel()
	m := testModel(t)
	ts := start(t, failingStream{m}, server.Config{}, server.ServeOptions{})
	req, err := http.NewRequest(http.MethodPost, ts.url+"/synthesize?stream=1", bytes.NewReader(melJSON(t, speechMel(t, m, 4), nil)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Errorf("the aborted stream read to a clean end")
	}
}
