package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// Histogram records durations in nanoseconds in log-linear buckets, as HDR
// histograms do: values below 256 ns get a bucket each, and every power of
// two above that is split into 128 equal buckets. A bucket is then at most
// 1/128 of its lower bound wide, and Quantile answers with the bucket's
// midpoint, so a reported percentile is within 0.4% of an actual sample.
// Min, Max and Mean are exact. The zero value is ready to use; a Histogram
// is not safe for concurrent use (give each worker its own and Merge them).
type Histogram struct {
	counts   []int64
	n        int64
	min, max int64
	sum      float64
}

const (
	histSubBits = 8
	histSub     = 1 << histSubBits // values below this are exact
	histHalf    = histSub / 2      // buckets per power of two above
	// histMaxShift caps the bucket range at 2^(histSubBits+histMaxShift)
	// ns (about 73 minutes); larger values share the last bucket, and Max
	// still reports them exactly.
	histMaxShift = 34
	histBuckets  = histSub + histMaxShift*histHalf
)

func bucketOf(v int64) int {
	if v < histSub {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - histSubBits
	if shift > histMaxShift {
		return histBuckets - 1
	}
	return histSub + (shift-1)*histHalf + int(v>>shift) - histHalf
}

// bucketMid is the midpoint of bucket i's range.
func bucketMid(i int) int64 {
	if i < histSub {
		return int64(i)
	}
	shift := (i-histSub)/histHalf + 1
	lo := int64((i-histSub)%histHalf+histHalf) << shift
	return lo + (int64(1)<<shift-1)/2
}

// Record adds one sample. Negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	if h.counts == nil {
		h.counts = make([]int64, histBuckets)
	}
	h.counts[bucketOf(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
}

// Merge adds every sample of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	if h.counts == nil {
		h.counts = make([]int64, histBuckets)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// Count returns the number of samples.
func (h *Histogram) Count() int64 { return h.n }

// Min returns the smallest sample, or 0 when there is none.
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Max returns the largest sample, or 0 when there is none.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean returns the average sample, or 0 when there is none.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// Quantile returns the sample at quantile q (0 ≤ q ≤ 1) by the
// nearest-rank method: the smallest sample at or above which lie at least
// q·n samples. q ≤ 0 gives Min, q ≥ 1 gives Max, and an empty histogram
// gives 0. The answer is clamped to [Min, Max], so a histogram whose
// samples are all equal answers exactly.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if q <= 0 {
		return time.Duration(h.min)
	}
	if q >= 1 {
		return time.Duration(h.max)
	}
	// The epsilon keeps float error (0.9*100 is 90.00000000000001) from
	// pushing the rank one sample up.
	rank := int64(math.Ceil(q*float64(h.n) - 1e-9))
	if rank < 1 {
		rank = 1
	}
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(max(bucketMid(i), h.min), h.max))
		}
	}
	return time.Duration(h.max)
}
