package streamable

import "sync/atomic"

// workers runs request handlers on goroutines that outlive one request.
// A fresh goroutine per request starts with a small stack, and the gateway's
// request path (hashing, JSON scanning, the store) grows it every time:
// copying stacks cost more than the rest of the hand-off. Idle workers keep
// their grown stacks; a bounded number of them wait for the next request.
type workers struct {
	ready   chan func() // unbuffered: a send succeeds only if a worker is idle
	done    <-chan struct{}
	idle    atomic.Int32
	maxIdle int32
}

// newWorkers keeps up to maxIdle idle workers; they exit when done closes.
func newWorkers(maxIdle int, done <-chan struct{}) *workers {
	return &workers{ready: make(chan func()), done: done, maxIdle: int32(maxIdle)}
}

// run calls fn on an idle worker, or on a new one when none is idle.
func (w *workers) run(fn func()) {
	select {
	case w.ready <- fn:
	default:
		go w.loop(fn)
	}
}

func (w *workers) loop(fn func()) {
	for {
		fn()
		if w.idle.Add(1) > w.maxIdle {
			w.idle.Add(-1)
			return // enough idle workers already
		}
		select {
		case fn = <-w.ready:
			w.idle.Add(-1)
		case <-w.done:
			w.idle.Add(-1)
			return
		}
	}
}
