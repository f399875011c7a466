// Command loadtest drives a running glowvoc server (cmd/serve) on the
// loopback interface with concurrent POST /synthesize requests and reports
// status codes, throughput, latency percentiles, time to first audio and
// the server's resident memory.
//
// Usage:
//
//	loadtest [flags]
//
// The mel of every request is the server's own /mel of --wav, tiled or cut
// to --frames frames. The test runs one phase per --concurrency value;
// each phase ends after --requests requests or --duration, whichever comes
// first, so a run is bounded. Only loopback addresses are accepted.
//
// Exit status: 0 if every request was answered 200 or 429, 1 otherwise,
// 2 on usage errors.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// settings are the command line.
type settings struct {
	base        string
	wav         string
	frames      int
	concurrency []int
	requests    int
	duration    time.Duration
	stream      bool
	pause       time.Duration
}

func run(args []string, stdout, stderr io.Writer) int {
	s, err := parseSettings(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "loadtest:", err)
		return 2
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	body, frames, err := requestBody(client, s)
	if err != nil {
		fmt.Fprintln(stderr, "loadtest:", err)
		return 1
	}
	audioSeconds := float64(frames*256) / 22050
	fmt.Fprintf(stdout, "%s: %d-frame mel (%.2f s of audio), stream=%v, each phase at most %d requests or %v\n",
		s.base, frames, audioSeconds, s.stream, s.requests, s.duration)
	ok := true
	for _, c := range s.concurrency {
		r := phase(client, s, body, c)
		r.print(stdout, c, audioSeconds)
		ok = ok && r.failed == 0
	}
	if rss, err := scrapeRSS(client, s.base); err == nil {
		fmt.Fprintf(stdout, "server RSS after the run: %.0f MiB\n", rss/(1<<20))
	}
	if !ok {
		return 1
	}
	return 0
}

// parseSettings parses and checks the command line.
func parseSettings(args []string, out io.Writer) (*settings, error) {
	s := &settings{}
	var conc string
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&s.base, "url", "http://127.0.0.1:8080", "server base URL (loopback only)")
	fs.StringVar(&s.wav, "wav", "testdata/reference/mel/espeak_us_hello.wav", "WAV whose mel the requests carry")
	fs.IntVar(&s.frames, "frames", 0, "mel frames per request, tiling or cutting the WAV's mel (0: as is; 431 is 5 s)")
	fs.StringVar(&conc, "concurrency", "1,2,16", "comma-separated concurrency of each phase")
	fs.IntVar(&s.requests, "requests", 40, "most requests per phase")
	fs.DurationVar(&s.duration, "duration", 60*time.Second, "longest phase")
	fs.BoolVar(&s.stream, "stream", false, "ask for streamed answers (stream=true)")
	fs.DurationVar(&s.pause, "reject-pause", 100*time.Millisecond, "how long a client waits after a 429 before its next request")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	for _, f := range strings.Split(conc, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || c < 1 || c > 1024 {
			return nil, fmt.Errorf("--concurrency: %q is not a number from 1 to 1024", f)
		}
		s.concurrency = append(s.concurrency, c)
	}
	if s.requests < 1 || s.requests > 100000 || s.duration <= 0 || s.duration > time.Hour || s.frames < 0 || s.pause < 0 {
		return nil, errors.New("--requests must be 1 to 100000, --duration positive and at most 1h, --frames and --reject-pause not negative")
	}
	return s, checkLoopback(s.base)
}

// checkLoopback refuses a URL whose host is not a loopback address.
func checkLoopback(base string) error {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" {
		return fmt.Errorf("--url %q: want http://host:port", base)
	}
	ips, err := net.LookupIP(u.Hostname())
	if err != nil {
		return fmt.Errorf("--url: %w", err)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("--url %q: %v is not a loopback address; loadtest only runs against the local machine", base, ip)
		}
	}
	return nil
}

// requestBody returns the JSON body of the requests: the server's mel of
// the WAV, fitted to s.frames frames.
func requestBody(client *http.Client, s *settings) ([]byte, int, error) {
	wav, err := os.ReadFile(s.wav)
	if err != nil {
		return nil, 0, err
	}
	resp, err := client.Post(s.base+"/mel?format=json", "audio/wav", bytes.NewReader(wav))
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, 0, fmt.Errorf("/mel: %s: %s", resp.Status, b)
	}
	var mel struct {
		Mel [][]float32 `json:"mel"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&mel); err != nil {
		return nil, 0, fmt.Errorf("/mel: %w", err)
	}
	frames := len(mel.Mel[0])
	if s.frames > 0 {
		for m, row := range mel.Mel {
			fitted := make([]float32, s.frames)
			for t := range fitted {
				fitted[t] = row[t%len(row)]
			}
			mel.Mel[m] = fitted
		}
		frames = s.frames
	}
	b, err := json.Marshal(mel)
	return b, frames, err
}

// results are the outcome of one phase.
type results struct {
	elapsed    time.Duration
	codes      map[int]int
	failed     int // transport errors and codes other than 200 and 429
	latency    []time.Duration
	firstAudio []time.Duration
	maxRSS     float64
	errs       []string
}

// phase runs requests with c in flight until s.requests have been sent or
// s.duration has passed.
func phase(client *http.Client, s *settings, body []byte, c int) *results {
	r := &results{codes: map[int]int{}}
	var mu sync.Mutex
	ctx, cancel := context.WithTimeout(context.Background(), s.duration)
	defer cancel()
	next := make(chan int)
	go func() {
		defer close(next)
		for i := 0; i < s.requests; i++ {
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	stopRSS := make(chan struct{})
	rssDone := make(chan struct{})
	go func() { // sample the server's memory while the phase runs
		defer close(rssDone)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			if rss, err := scrapeRSS(client, s.base); err == nil {
				mu.Lock()
				r.maxRSS = max(r.maxRSS, rss)
				mu.Unlock()
			}
			select {
			case <-tick.C:
			case <-stopRSS:
				return
			}
		}
	}()
	start := time.Now()
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			for i := range next {
				code, lat, first, err := synthesize(ctx, client, s, body, i)
				mu.Lock()
				switch {
				case err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
					// cut off by the end of the phase: not counted
				case err != nil:
					r.failed++
					r.errs = append(r.errs, err.Error())
				default:
					r.codes[code]++
					if code == http.StatusOK {
						r.latency = append(r.latency, lat)
						r.firstAudio = append(r.firstAudio, first)
					} else if code != http.StatusTooManyRequests {
						r.failed++
					}
				}
				mu.Unlock()
				if code == http.StatusTooManyRequests {
					time.Sleep(s.pause)
				}
			}
		})
	}
	wg.Wait()
	r.elapsed = time.Since(start)
	close(stopRSS)
	<-rssDone
	return r
}

// synthesize sends one request and returns its status, its latency and,
// for 200 answers, the time to the first audio byte (after the WAV
// header).
func synthesize(ctx context.Context, client *http.Client, s *settings, body []byte, i int) (int, time.Duration, time.Duration, error) {
	q := url.Values{"seed": {strconv.Itoa(i)}}
	if s.stream {
		q.Set("stream", "true")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/synthesize?"+q.Encode(), bytes.NewReader(body))
	if err != nil {
		return 0, 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, 0, err
	}
	defer resp.Body.Close()
	var first time.Duration
	if resp.StatusCode == http.StatusOK {
		const header = 44 // 16-bit PCM WAV
		if _, err := io.CopyN(io.Discard, resp.Body, header+1); err != nil {
			return 0, 0, 0, fmt.Errorf("reading the first audio: %w", err)
		}
		first = time.Since(start)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, 0, 0, fmt.Errorf("reading the answer: %w", err)
	}
	return resp.StatusCode, time.Since(start), first, nil
}

// scrapeRSS returns the server's process_resident_memory_bytes.
func scrapeRSS(client *http.Client, base string) (float64, error) {
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "process_resident_memory_bytes "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, errors.New("no process_resident_memory_bytes")
}

// percentile returns the p-th percentile (nearest rank) of ds, sorted.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(float64(len(ds))*p/100+0.5) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

// print writes a phase's report.
func (r *results) print(w io.Writer, c int, audioSeconds float64) {
	slices.Sort(r.latency)
	slices.Sort(r.firstAudio)
	codes := make([]string, 0, len(r.codes))
	answered := 0
	for code, n := range r.codes {
		codes = append(codes, fmt.Sprintf("%d×%d", n, code))
		answered += n
	}
	slices.Sort(codes)
	ok := len(r.latency)
	fmt.Fprintf(w, "concurrency %3d: %3d answered in %6.1fs [%s], %d failed; %.2f req/s, %.2f audio-s/s; latency p50 %v p99 %v; first audio p50 %v p99 %v; max server RSS %.0f MiB\n",
		c, answered, r.elapsed.Seconds(), strings.Join(codes, " "), r.failed,
		float64(ok)/r.elapsed.Seconds(), float64(ok)*audioSeconds/r.elapsed.Seconds(),
		percentile(r.latency, 50).Round(time.Millisecond), percentile(r.latency, 99).Round(time.Millisecond),
		percentile(r.firstAudio, 50).Round(time.Millisecond), percentile(r.firstAudio, 99).Round(time.Millisecond),
		r.maxRSS/(1<<20))
	for _, e := range r.errs[:min(len(r.errs), 5)] {
		fmt.Fprintln(w, "  error:", e)
	}
}
