package server

import (
	"context"
	"math"
	"sync"
	"time"
)

// pool bounds the server's work. A request is first admitted, which takes
// one of workers+queue places and fails at once when none is free; it then
// reads its input and waits for one of the workers places to compute.
// Admitting before reading the body bounds the memory held by requests.
type pool struct {
	admitted chan struct{} // a token per admitted request
	running  chan struct{} // a token per computing request

	mu   sync.Mutex
	mean time.Duration // moving average of compute times, for Retry-After
}

// newPool returns a pool of workers workers and queue waiting places.
func newPool(workers, queue int) *pool {
	return &pool{
		admitted: make(chan struct{}, workers+queue),
		running:  make(chan struct{}, workers),
	}
}

// admit takes a place for a request, reporting false if all are taken.
// An admitted request must call leave when it is done.
func (p *pool) admit() bool {
	select {
	case p.admitted <- struct{}{}:
		return true
	default:
		return false
	}
}

// leave gives back the place taken by admit.
func (p *pool) leave() { <-p.admitted }

// run waits for a worker, unless ctx ends first, and runs fn on it.
func (p *pool) run(ctx context.Context, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case p.running <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-p.running }()
	start := time.Now()
	err := fn()
	p.record(time.Since(start))
	return err
}

// record folds a compute time into the moving average.
func (p *pool) record(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mean == 0 {
		p.mean = d
		return
	}
	p.mean += (d - p.mean) / 8
}

// depth returns the number of requests admitted but not computing, and the
// number computing.
func (p *pool) depth() (waiting, running int) {
	running = len(p.running)
	return max(0, len(p.admitted)-running), running
}

// retryAfter estimates, in whole seconds (at least 1), when a place may
// be free: the time for the waiting requests to drain through the workers.
func (p *pool) retryAfter() int {
	p.mu.Lock()
	mean := p.mean
	p.mu.Unlock()
	waiting, _ := p.depth()
	d := mean.Seconds() * float64(waiting+1) / float64(cap(p.running))
	return max(1, int(math.Ceil(d)))
}
