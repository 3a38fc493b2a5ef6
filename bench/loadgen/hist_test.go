package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// exactQuantile is the nearest-rank quantile of sorted samples, the
// definition Histogram.Quantile approximates.
func exactQuantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q*float64(len(sorted)) - 1e-9))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// relErr is the relative error of got against want.
func relErr(got, want time.Duration) float64 {
	if want == 0 {
		return math.Abs(float64(got))
	}
	return math.Abs(float64(got-want)) / float64(want)
}

// maxRelErr is the documented bound: half a bucket of 1/128 of its base.
const maxRelErr = 1.0 / 256

func TestQuantileKnownDistributions(t *testing.T) {
	seq := func(n int, unit time.Duration) []time.Duration {
		s := make([]time.Duration, n)
		for i := range s {
			s[i] = time.Duration(i+1) * unit
		}
		return s
	}
	twoPoint := append(slices.Repeat([]time.Duration{time.Millisecond}, 90), slices.Repeat([]time.Duration{100 * time.Millisecond}, 10)...)
	tests := []struct {
		name    string
		samples []time.Duration
		tol     float64 // allowed relative error
		want    map[float64]time.Duration
	}{
		{
			name:    "1..100 ns is exact",
			samples: seq(100, 1),
			want:    map[float64]time.Duration{0: 1, 0.5: 50, 0.9: 90, 0.99: 99, 1: 100},
		},
		{
			name:    "1..1000 µs",
			samples: seq(1000, time.Microsecond),
			tol:     maxRelErr,
			want: map[float64]time.Duration{
				0.5: 500 * time.Microsecond, 0.9: 900 * time.Microsecond, 0.99: 990 * time.Microsecond,
				0.999: 999 * time.Microsecond, 1: time.Millisecond,
			},
		},
		{
			name:    "90% at 1ms, 10% at 100ms",
			samples: twoPoint,
			tol:     maxRelErr,
			want:    map[float64]time.Duration{0.5: time.Millisecond, 0.9: time.Millisecond, 0.91: 100 * time.Millisecond, 0.99: 100 * time.Millisecond},
		},
		{
			name:    "two samples",
			samples: []time.Duration{10 * time.Millisecond, 20 * time.Millisecond},
			tol:     maxRelErr,
			want:    map[float64]time.Duration{0.5: 10 * time.Millisecond, 0.51: 20 * time.Millisecond, 0.99: 20 * time.Millisecond},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h Histogram
			for _, s := range tc.samples {
				h.Record(s)
			}
			if h.Count() != int64(len(tc.samples)) {
				t.Fatalf("Count = %d, want %d", h.Count(), len(tc.samples))
			}
			for q, want := range tc.want {
				if got := h.Quantile(q); relErr(got, want) > tc.tol {
					t.Errorf("Quantile(%v) = %v, want %v (±%.2f%%)", q, got, want, tc.tol*100)
				}
			}
		})
	}
}

func TestQuantileEdgeCases(t *testing.T) {
	t.Run("empty", func(t *testing.T) {
		var h Histogram
		for _, q := range []float64{0, 0.5, 0.99, 1} {
			if got := h.Quantile(q); got != 0 {
				t.Errorf("Quantile(%v) = %v, want 0", q, got)
			}
		}
		if h.Count() != 0 || h.Min() != 0 || h.Max() != 0 || h.Mean() != 0 {
			t.Errorf("empty histogram: count %d min %v max %v mean %v", h.Count(), h.Min(), h.Max(), h.Mean())
		}
		if got := summarize(&h); got != (Latency{}) {
			t.Errorf("summarize(empty) = %+v, want zeros", got)
		}
	})
	t.Run("one sample", func(t *testing.T) {
		var h Histogram
		const v = 1234567 * time.Nanosecond // not a bucket midpoint
		h.Record(v)
		for _, q := range []float64{0, 0.01, 0.5, 0.99, 1} {
			if got := h.Quantile(q); got != v {
				t.Errorf("Quantile(%v) = %v, want exactly %v", q, got, v)
			}
		}
		if h.Min() != v || h.Max() != v || h.Mean() != v {
			t.Errorf("min %v max %v mean %v, want %v", h.Min(), h.Max(), h.Mean(), v)
		}
	})
	t.Run("all equal", func(t *testing.T) {
		var h Histogram
		const v = 3333333 * time.Nanosecond
		for range 1000 {
			h.Record(v)
		}
		for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
			if got := h.Quantile(q); got != v {
				t.Errorf("Quantile(%v) = %v, want exactly %v", q, got, v)
			}
		}
	})
	t.Run("negative counts as zero", func(t *testing.T) {
		var h Histogram
		h.Record(-time.Second)
		if h.Max() != 0 || h.Quantile(0.5) != 0 {
			t.Errorf("max %v p50 %v, want 0", h.Max(), h.Quantile(0.5))
		}
	})
	t.Run("beyond the bucket range", func(t *testing.T) {
		var h Histogram
		h.Record(time.Millisecond)
		h.Record(100 * time.Hour)
		if h.Max() != 100*time.Hour || h.Quantile(1) != 100*time.Hour {
			t.Errorf("max %v, want 100h", h.Max())
		}
		if got := h.Quantile(0.5); relErr(got, time.Millisecond) > maxRelErr {
			t.Errorf("p50 = %v, want 1ms", got)
		}
	})
}

// A skewed distribution like real latencies: every reported percentile is
// within the bound of the exact one.
func TestQuantileBoundedError(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	samples := make([]time.Duration, 100_000)
	var h Histogram
	for i := range samples {
		// log-normal around 1 ms, from tens of µs to hundreds of ms
		samples[i] = time.Duration(math.Exp(rng.NormFloat64()*1.5) * float64(time.Millisecond))
		h.Record(samples[i])
	}
	slices.Sort(samples)
	for _, q := range []float64{0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999} {
		want := exactQuantile(samples, q)
		if got := h.Quantile(q); relErr(got, want) > maxRelErr {
			t.Errorf("Quantile(%v) = %v, exact %v: error %.3f%% > %.3f%%", q, got, want, relErr(got, want)*100, maxRelErr*100)
		}
	}
	if h.Min() != samples[0] || h.Max() != samples[len(samples)-1] {
		t.Errorf("min/max %v/%v, want %v/%v", h.Min(), h.Max(), samples[0], samples[len(samples)-1])
	}
}

func TestMergeEqualsRecordingAll(t *testing.T) {
	var a, b, all Histogram
	for i := range 5000 {
		d := time.Duration(i*i) * time.Nanosecond
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	var m Histogram
	m.Merge(&a)
	m.Merge(&b)
	m.Merge(&Histogram{}) // merging nothing changes nothing
	if m.Count() != all.Count() || m.Min() != all.Min() || m.Max() != all.Max() || m.Mean() != all.Mean() {
		t.Fatalf("merged count/min/max/mean %d/%v/%v/%v, want %d/%v/%v/%v",
			m.Count(), m.Min(), m.Max(), m.Mean(), all.Count(), all.Min(), all.Max(), all.Mean())
	}
	for _, q := range []float64{0.1, 0.5, 0.9, 0.99} {
		if m.Quantile(q) != all.Quantile(q) {
			t.Errorf("Quantile(%v): merged %v, all %v", q, m.Quantile(q), all.Quantile(q))
		}
	}
}

// Buckets are ordered, contiguous, and narrow enough for the bound.
func TestBuckets(t *testing.T) {
	prev := 0 // bucketOf(0)
	for v := int64(1); v < 1<<30; v += 1 + v/300 {
		i := bucketOf(v)
		if i < prev {
			t.Fatalf("bucketOf(%d) = %d < bucketOf of a smaller value (%d)", v, i, prev)
		}
		if i > prev+1 {
			t.Fatalf("bucketOf(%d) = %d skips buckets after %d", v, i, prev)
		}
		prev = i
		if mid := bucketMid(i); relErr(time.Duration(mid), time.Duration(v)) > maxRelErr {
			t.Fatalf("bucketMid(bucketOf(%d)) = %d: error beyond the bound", v, mid)
		}
	}
}
