package ratelimit

import "time"

// keyWindow is one key's sliding window, in one of two forms:
//
//   - exact (buckets == nil): a ring of the unix-ns times of the calls
//     still in the window, oldest first, grown as calls arrive (never past
//     what the limit admits). Counting is exact.
//   - bucketed: per-bucket call counts over a fixed ring of buckets. A call
//     counts until its whole bucket has left the window, so the limiter
//     errs towards refusing, never towards admitting.
//
// A window starts exact and turns bucketed the first time it is used with a
// limit above ExactMax; it does not turn back (its counts stay
// conservative).
type keyWindow struct {
	expires int64 // unix ns at which the window is empty; for sweeps
	newest  int64 // time of the newest counted call

	// exact form
	ts   []int64
	head int
	n    int

	buckets *buckets
}

// take checks (and, when consume is set, counts) n calls at t against limit
// over a window of w ns, and reports the state after.
func (win *keyWindow) take(t, w, n, limit int64, consume bool, exactMax int64, nb int) Result {
	t = max(t, win.newest) // never count a call before one already counted
	if win.buckets == nil && limit > exactMax {
		win.toBuckets(t, w, nb)
	}
	if b := win.buckets; b != nil && b.window != w {
		b.rewindow(t, w)
	}

	count := win.count(t, w)
	if win.buckets == nil && win.n > 0 {
		win.expires = win.newest + w // follows a changed window
	}
	r := Result{Limit: limit}
	switch {
	case count+n <= limit:
		r.Allowed = true
		if consume && n > 0 {
			win.add(t, w, n)
			count += n
		}
	case n > limit:
		r.RetryAfter = time.Duration(w)
	default:
		// The call fits once count+n-limit of the oldest calls have left.
		r.RetryAfter = time.Duration(win.expiry(count+n-limit-1, t, w) - t)
	}
	r.Remaining = max(limit-count, 0)
	if count > 0 {
		r.Reset = time.Unix(0, win.expiry(0, t, w))
	} else {
		r.Reset = time.Unix(0, t)
	}
	return r
}

// count drops expired calls and returns how many remain in the window.
func (win *keyWindow) count(t, w int64) int64 {
	if b := win.buckets; b != nil {
		return b.count(t)
	}
	for win.n > 0 && win.ts[win.head]+w <= t {
		win.head++
		if win.head == len(win.ts) {
			win.head = 0
		}
		win.n--
	}
	return int64(win.n)
}

// add counts n calls at t.
func (win *keyWindow) add(t, w, n int64) {
	win.newest = t
	if b := win.buckets; b != nil {
		b.add(t, n)
		win.expires = b.expiry(b.last)
		return
	}
	if need := win.n + int(n); need > len(win.ts) {
		win.grow(need)
	}
	for range n {
		i := win.head + win.n
		if i >= len(win.ts) {
			i -= len(win.ts)
		}
		win.ts[i] = t
		win.n++
	}
	win.expires = t + w
}

// grow reallocates the ring to hold at least need calls, doubling so a busy
// key reallocates O(log limit) times.
func (win *keyWindow) grow(need int) {
	ts := make([]int64, max(need, 2*len(win.ts), 4))
	for i := range win.n {
		ts[i] = win.ts[(win.head+i)%len(win.ts)]
	}
	win.ts, win.head = ts, 0
}

// expiry returns when the k-th oldest counted call (0-based) leaves the
// window. k must be below the current count at t.
func (win *keyWindow) expiry(k, t, w int64) int64 {
	if b := win.buckets; b != nil {
		return b.expiryOf(k, t)
	}
	i := win.head + int(k)
	if i >= len(win.ts) {
		i -= len(win.ts)
	}
	return win.ts[i] + w
}

// toBuckets converts the exact ring into buckets, keeping every live call.
func (win *keyWindow) toBuckets(t, w int64, nb int) {
	win.count(t, w)
	b := newBuckets(w, nb)
	for i := range win.n {
		b.add(win.ts[(win.head+i)%len(win.ts)], 1)
	}
	if win.n > 0 {
		win.expires = b.expiry(b.last)
	}
	win.buckets, win.ts, win.head, win.n = b, nil, 0, 0
}

// buckets counts calls per time bucket: bucket i covers
// [i×width, (i+1)×width) in unix ns and stays in the window until
// (i+1)×width + window. counts is a ring indexed by i mod len(counts); with
// width = ceil(window/nb), nb+1 slots cover every bucket that can be live.
// first and total keep counting O(1): first is the oldest live non-empty
// bucket (last+1 when there is none) and total the calls in [first, last].
type buckets struct {
	width  int64
	window int64
	first  int64
	last   int64
	total  int64
	counts []int64
}

func newBuckets(w int64, nb int) *buckets {
	width := max((w+int64(nb)-1)/int64(nb), 1)
	return &buckets{width: width, window: w, first: 1, counts: make([]int64, nb+1)}
}

func (b *buckets) slot(i int64) *int64 { return &b.counts[i%int64(len(b.counts))] }

// expiry returns when bucket i leaves the window.
func (b *buckets) expiry(i int64) int64 { return (i+1)*b.width + b.window }

// advance drops the buckets that left the window at t and makes t's bucket
// the newest.
func (b *buckets) advance(t int64) {
	for b.first <= b.last && (*b.slot(b.first) == 0 || b.expiry(b.first) <= t) {
		b.total -= *b.slot(b.first)
		*b.slot(b.first) = 0
		b.first++
	}
	j := t / b.width
	if j <= b.last {
		return
	}
	// Slots reused by buckets last+1..j belonged to buckets that have left
	// the window; clear them (at most len(counts) of them).
	for i := max(b.last+1, j-int64(len(b.counts))+1); i <= j; i++ {
		*b.slot(i) = 0
	}
	b.last = j
	b.first = max(b.first, j-int64(len(b.counts))+1)
}

func (b *buckets) count(t int64) int64 {
	b.advance(t)
	return b.total
}

func (b *buckets) add(t, n int64) {
	b.advance(t)
	*b.slot(b.last) += n
	b.total += n
	b.first = min(b.first, b.last)
}

// expiryOf returns when the k-th oldest counted call (0-based) leaves the
// window; for k = 0 that is the oldest bucket's expiry, in O(1).
func (b *buckets) expiryOf(k, _ int64) int64 {
	var cum int64
	for i := b.first; i <= b.last; i++ {
		if cum += *b.slot(i); cum > k {
			return b.expiry(i)
		}
	}
	return b.expiry(b.last)
}

// rewindow adapts to a changed window length (a config reload): the calls
// still in the new window, as far as the ring remembers, are kept and moved
// to the newest bucket, so they count at least as long as they should.
func (b *buckets) rewindow(t, w int64) {
	var live int64
	for i := b.first; i <= b.last; i++ {
		if (i+1)*b.width+w > t {
			live += *b.slot(i)
		}
	}
	*b = *newBuckets(w, len(b.counts)-1)
	b.advance(t)
	if live > 0 {
		b.add(t, live)
	}
}
