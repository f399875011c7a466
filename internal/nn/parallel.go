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
