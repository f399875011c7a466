package server_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/glowvoc/glowvoc/server"
)

// chromium returns the path of a Chromium binary. Without one the test is
// skipped, except in CI (CI=true), where it fails.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("Chromium is not installed (Debian package chromium; .ci/run installs it)")
	}
	t.Skip("Chromium is not installed (apt-get install chromium): skipping the browser test")
	return ""
}

// TestPageInBrowser drives the page at / in headless Chromium: it uploads a
// WAV, then picks the bundled sample, and checks each time that the
// resynthesis plays for the right duration and both spectrograms are
// drawn. Set GLOWVOC_SCREENSHOT_DIR to keep the screenshots.
func TestPageInBrowser(t *testing.T) {
	t.Parallel()
	exe := chromium(t)
	m := testModel(t)
	ts := ready(t, m, server.Config{ModelName: "tiny_mel8"})

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1000, 1100),
	)
	defer cancelAlloc()
	// The timeout bounds the browser's whole life.
	ctx, cancel := context.WithTimeout(alloc, 90*time.Second)
	defer cancel()
	ctx, cancelTab := chromedp.NewContext(ctx)
	defer cancelTab()

	var mu sync.Mutex
	var exceptions []string
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() {
				mu.Lock()
				exceptions = append(exceptions, m.String())
				mu.Unlock()
			}
		}
	}()

	upload, err := filepath.Abs(filepath.Join("..", "testdata", "reference", "mel", "sweep_log_20_10000.wav"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		choose  chromedp.Action[chromedp.Void]
		samples int // of the input WAV
	}{
		{"upload", chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{upload}), 22050},
		{"sample", chromedp.SetValue(chromedp.CSS("#sample"), "hello.wav"), 24047},
	}
	for _, tc := range tests {
		err := chromedp.Do(ctx,
			chromedp.Navigate(ts.url+"/"),
			chromedp.WaitReady(chromedp.CSS("#go")),
			tc.choose,
			chromedp.Click(chromedp.CSS("#go")),
			chromedp.WaitReady(chromedp.CSS(`body[data-state="done"], body[data-state="error"]`)),
		)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		state := browse(t, ctx, chromedp.Evaluate[string](`document.body.dataset.state`))
		status := browse(t, ctx, chromedp.Text(chromedp.CSS("#status")))
		if state != "done" {
			t.Fatalf("%s: page state %q: %s", tc.name, state, status)
		}
		t.Logf("%s: %s", tc.name, status)

		frames := tc.samples/256 + 1
		wantSeconds := float64(m.Samples(frames)) / 22050
		duration := browse(t, ctx, chromedp.Evaluate[float64](`new Promise((resolve) => {
			const a = document.getElementById("outAudio");
			if (a.readyState >= 1) { resolve(a.duration); return; }
			a.onloadedmetadata = () => resolve(a.duration);
			a.onerror = () => resolve(-1);
		})`, chromedp.EvalAwaitPromise))
		if math.Abs(duration-wantSeconds) > 1e-3 {
			t.Errorf("%s: resynthesis plays for %.4f s, want %.4f s", tc.name, duration, wantSeconds)
		}
		canvases := browse(t, ctx, chromedp.Evaluate[[][]int](`["inMel", "outMel"].map((id) => {
			const c = document.getElementById(id);
			const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
			const colours = new Set();
			for (let i = 0; i < d.length; i += 4) colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
			return [c.width, c.height, colours.size];
		})`))
		// The resynthesis has frames·hop samples: one frame more.
		for i, c := range canvases {
			if c[0] != frames+i || c[1] != m.Config().NMels || c[2] < 8 {
				t.Errorf("%s: spectrogram %d is %d×%d with %d colours, want %d×%d and a picture", tc.name, i, c[0], c[1], c[2], frames+i, m.Config().NMels)
			}
		}
		png := browse(t, ctx, chromedp.FullScreenshot(100))
		if len(png) < 1000 {
			t.Errorf("%s: screenshot of %d bytes", tc.name, len(png))
		}
		if dir := os.Getenv("GLOWVOC_SCREENSHOT_DIR"); dir != "" {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("page-%s.png", tc.name)), png, 0o644); err != nil {
				t.Error(err)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(exceptions) > 0 {
		t.Errorf("JavaScript exceptions: %q", exceptions)
	}
}

// browse runs a browser action and returns its value, failing the test on
// error.
func browse[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
