package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/glowvoc/glowvoc/weights"
)

// tinyModel is the 80-mel tiny reference model.
var tinyModel = filepath.Join("..", "..", "testdata", "reference", "waveglow", "tiny", "weights.npz")

// build compiles the command in dir to a temporary binary called name.
func build(t *testing.T, dir, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", dir, err, out)
	}
	return bin
}

// process is a running serve binary.
type process struct {
	cmd    *exec.Cmd
	url    string
	mu     sync.Mutex
	stderr bytes.Buffer  // everything logged so far
	done   chan struct{} // closed when the process has exited
	err    error         // the exit error, once done
}

// logs returns what the process has logged.
func (p *process) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// startServe runs the serve binary with args on a loopback port and waits
// for it to listen.
func startServe(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	p := &process{done: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"--addr", "127.0.0.1:0", "--log-format", "json"}, args...)...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.stderr.Write(append(sc.Bytes(), '\n'))
			p.mu.Unlock()
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				addr <- line.Addr
			}
		}
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("serve log:\n%s", p.logs())
		}
	})
	select {
	case a := <-addr:
		p.url = "http://" + a
	case <-p.done:
		t.Fatalf("serve exited: %v\n%s", p.err, p.logs())
	case <-time.After(60 * time.Second):
		t.Fatalf("serve did not start listening\n%s", p.logs())
	}
	return p
}

// waitReady polls /readyz until it answers 200.
func (p *process) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(p.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after 60 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// post sends a POST and returns the 200 answer's body.
func post(t *testing.T, url, contentType string, body []byte) []byte {
	t.Helper()
	resp, err := http.Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %d %v: %s", url, resp.StatusCode, err, b)
	}
	return b
}

// TestServe runs the serve binary: its answer for a seed is the same file
// as `vocode synth --seed` writes, and on SIGTERM it finishes a stream in
// flight and exits 0.
func TestServe(t *testing.T) {
	serve := build(t, ".", "serve")
	vocode := build(t, filepath.Join("..", "vocode"), "vocode")
	p := startServe(t, serve, "--model", tinyModel, "--stream-first-chunk-frames", "8", "--stream-chunk-frames", "32")
	p.waitReady(t)

	t.Run("same audio as vocode synth", func(t *testing.T) {
		wav, err := os.ReadFile(filepath.Join("..", "..", "server", "samples", "hello.wav"))
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		melFile := filepath.Join(dir, "hello.npy")
		mel := post(t, p.url+"/mel", "audio/wav", wav)
		if err := os.WriteFile(melFile, mel, 0o644); err != nil {
			t.Fatal(err)
		}
		got := post(t, p.url+"/synthesize?seed=7", "application/x-npy", mel)
		out := filepath.Join(dir, "hello.wav")
		if b, err := exec.Command(vocode, "synth", "--model", tinyModel, "--seed", "7", "-o", out, melFile).CombinedOutput(); err != nil {
			t.Fatalf("vocode synth: %v\n%s", err, b)
		}
		want, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("server answer (%d bytes) differs from vocode synth --seed 7 (%d bytes)", len(got), len(want))
		}
	})

	t.Run("SIGTERM finishes the stream in flight", func(t *testing.T) {
		const frames = 2000
		raw := make([]byte, 0, 4*80*frames)
		for i := range 80 * frames {
			raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(-5+float32(i%7)*0.3))
		}
		resp, err := http.Post(p.url+"/synthesize?stream=true&n_mels=80", "application/octet-stream", bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		first := make([]byte, 44+1024)
		if _, err := io.ReadFull(resp.Body, first); err != nil {
			t.Fatalf("status %d: %v", resp.StatusCode, err)
		}
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		rest, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("the stream broke after SIGTERM: %v", err)
		}
		if n := len(first) + len(rest); n != 44+2*256*frames {
			t.Errorf("stream of %d bytes, want %d", n, 44+2*256*frames)
		}
		select {
		case <-p.done:
			if p.err != nil {
				t.Errorf("serve exited with %v", p.err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("serve did not exit after SIGTERM")
		}
		for _, want := range []string{`"msg":"shutting down"`, `"msg":"shut down"`} {
			if !strings.Contains(p.logs(), want) {
				t.Errorf("log lacks %s", want)
			}
		}
	})
}

// TestServeBundledModel starts serve without --model: it serves the model
// embedded in the binary.
func TestServeBundledModel(t *testing.T) {
	serve := build(t, ".", "serve")
	p := startServe(t, serve)
	p.waitReady(t)
	resp, err := http.Get(p.url + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), weights.Name) {
		t.Errorf("/v1/models: %d %s, want the bundled model %s", resp.StatusCode, body, weights.Name)
	}
	// A usage error still exits 2.
	out, err := exec.Command(serve, "--workers", "0").CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "--workers") {
		t.Errorf("exit %v, output %q", err, out)
	}
}
