package nn

import (
	"sync"
	"sync/atomic"
)

// task is one part of a call split across goroutines.
type task interface{ run() }

// Helpers are long-lived goroutines that run the parts of split calls, so
// that a split starts no goroutine and allocates nothing. There are as
// many as the largest split needed, at most GOMAXPROCS−1 (the caller runs
// a part too); they park on helperWork between calls.
var (
	helperWork  = make(chan task)
	helperMu    sync.Mutex
	helperCount atomic.Int64
)

// fork hands t to an idle helper, starting helpers up to want first, and
// reports whether one took it. When every helper is busy (concurrent
// split calls) the caller runs t itself.
func fork(t task, want int) bool {
	if helperCount.Load() < int64(want) {
		startHelpers(want)
	}
	select {
	case helperWork <- t:
		return true
	default:
		return false
	}
}

// startHelpers starts helpers until there are want.
func startHelpers(want int) {
	helperMu.Lock()
	defer helperMu.Unlock()
	for helperCount.Load() < int64(want) {
		go helper()
		helperCount.Add(1)
	}
}

// helper runs tasks forever.
func helper() {
	for t := range helperWork {
		t.run()
	}
}

// fan is the pooled state of one split call: its parts, each of which
// holds &wg, and the WaitGroup they signal.
type fan[T any] struct {
	wg    sync.WaitGroup
	parts []T
}

// getFan returns an empty fan from pool, whose New makes *fan[T].
func getFan[T any](pool *sync.Pool) *fan[T] {
	f := pool.Get().(*fan[T])
	f.parts = f.parts[:0]
	return f
}

// runFan runs f's parts (see split), then drops their references to the
// operands and returns f to pool.
func runFan[T any, P interface {
	*T
	task
}](pool *sync.Pool, f *fan[T]) {
	split[T, P](f.parts, &f.wg)
	clear(f.parts)
	pool.Put(f)
}

// split runs parts[1:] on helpers (or inline when none is idle) and
// parts[0] on the calling goroutine, and returns when all are done. Each
// part's run calls wg.Done once.
func split[T any, P interface {
	*T
	task
}](parts []T, wg *sync.WaitGroup) {
	wg.Add(len(parts))
	last := len(parts) // parts[1:last] went to helpers
	for last > 1 && fork(P(&parts[last-1]), len(parts)-1) {
		last--
	}
	for i := range parts[:last] {
		P(&parts[i]).run()
	}
	wg.Wait()
}
