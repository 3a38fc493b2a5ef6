package loadgen

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// Result is what one run measured. Latencies are of OK calls only.
type Result struct {
	URL         string  `json:"url"`
	Concurrency int     `json:"concurrency"`
	Stateless   bool    `json:"stateless"`
	Accept      Accept  `json:"accept"`
	Keys        int     `json:"keys"`
	ArgsSize    int     `json:"args_size"`
	Elapsed     float64 `json:"elapsed_s"` // from the end of warmup to the last measured reply
	Requests    int64   `json:"requests"`  // measured requests, whatever their outcome
	OK          int64   `json:"ok"`
	CallsPerSec float64 `json:"calls_per_sec"` // OK calls per second
	SSEReplies  int64   `json:"sse_replies"`   // replies that came as an SSE stream
	Latency     Latency `json:"latency"`
	Errors      Errors  `json:"errors"`
	// FirstError describes the first failed request, to say why at once.
	FirstError string `json:"first_error,omitempty"`
}

// Latency summarizes the latency distribution, in milliseconds.
type Latency struct {
	Min  float64 `json:"min_ms"`
	Mean float64 `json:"mean_ms"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p999_ms"`
	Max  float64 `json:"max_ms"`
}

// Errors counts the requests that did not come back OK, by kind.
type Errors struct {
	HTTP       map[int]int64   `json:"http,omitempty"`    // by status, for any status but 200
	JSONRPC    map[int64]int64 `json:"jsonrpc,omitempty"` // by JSON-RPC error code
	Mismatches int64           `json:"mismatches"`        // wrong id or nonce: a wrong delivery
	ToolErrors int64           `json:"tool_errors"`       // results with isError
	BadReplies int64           `json:"bad_replies"`       // not a JSON-RPC response
	Timeouts   int64           `json:"timeouts"`
	Transport  int64           `json:"transport"` // connection refused, reset, …
}

// Total returns the number of failed requests.
func (e *Errors) Total() int64 {
	n := e.Mismatches + e.ToolErrors + e.BadReplies + e.Timeouts + e.Transport
	for _, c := range e.HTTP {
		n += c
	}
	for _, c := range e.JSONRPC {
		n += c
	}
	return n
}

func (e *Errors) add(o *Errors) {
	for k, v := range o.HTTP {
		if e.HTTP == nil {
			e.HTTP = map[int]int64{}
		}
		e.HTTP[k] += v
	}
	for k, v := range o.JSONRPC {
		if e.JSONRPC == nil {
			e.JSONRPC = map[int64]int64{}
		}
		e.JSONRPC[k] += v
	}
	e.Mismatches += o.Mismatches
	e.ToolErrors += o.ToolErrors
	e.BadReplies += o.BadReplies
	e.Timeouts += o.Timeouts
	e.Transport += o.Transport
}

// String lists the non-zero counts, for example "http 401×3, mismatch×1",
// or "none".
func (e *Errors) String() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(e.HTTP)) {
		parts = append(parts, fmt.Sprintf("http %d×%d", k, e.HTTP[k]))
	}
	for _, k := range slices.Sorted(maps.Keys(e.JSONRPC)) {
		parts = append(parts, fmt.Sprintf("jsonrpc %d×%d", k, e.JSONRPC[k]))
	}
	for _, c := range []struct {
		name string
		n    int64
	}{
		{"mismatch", e.Mismatches}, {"tool_error", e.ToolErrors}, {"bad_reply", e.BadReplies},
		{"timeout", e.Timeouts}, {"transport", e.Transport},
	} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%s×%d", c.name, c.n))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func collect(cfg *Config, workers []*worker, measureStart time.Time) *Result {
	r := &Result{
		URL:         cfg.URL,
		Concurrency: cfg.Concurrency,
		Stateless:   cfg.Stateless,
		Accept:      cfg.Accept,
		Keys:        len(cfg.Keys),
		ArgsSize:    cfg.ArgsSize,
	}
	var h Histogram
	var last time.Time
	for _, w := range workers {
		h.Merge(&w.hist)
		r.Errors.add(&w.counts)
		r.Requests += w.total
		r.OK += w.ok
		r.SSEReplies += w.sse
		if w.lastDone.After(last) {
			last = w.lastDone
		}
		if r.FirstError == "" {
			r.FirstError = w.firstErr
		}
	}
	if !last.IsZero() {
		r.Elapsed = last.Sub(measureStart).Seconds()
	}
	if r.Elapsed > 0 {
		r.CallsPerSec = float64(r.OK) / r.Elapsed
	}
	r.Latency = summarize(&h)
	return r
}

func summarize(h *Histogram) Latency {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return Latency{
		Min:  ms(h.Min()),
		Mean: ms(h.Mean()),
		P50:  ms(h.Quantile(0.50)),
		P90:  ms(h.Quantile(0.90)),
		P99:  ms(h.Quantile(0.99)),
		P999: ms(h.Quantile(0.999)),
		Max:  ms(h.Max()),
	}
}

// WriteText writes r for people.
func (r *Result) WriteText(w io.Writer) error {
	mode := "session"
	if r.Stateless {
		mode = "stateless"
	}
	_, err := fmt.Fprintf(w, `url          %s (%s, accept %s, %d key(s), args %d B)
concurrency  %d
requests     %d in %.2fs, %d ok (%d as SSE)
calls/s      %.0f
latency      min %s  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  mean %s
errors       %s
`, r.URL, mode, r.Accept, r.Keys, r.ArgsSize, r.Concurrency, r.Requests, r.Elapsed, r.OK, r.SSEReplies,
		r.CallsPerSec, FormatMillis(r.Latency.Min), FormatMillis(r.Latency.P50), FormatMillis(r.Latency.P90),
		FormatMillis(r.Latency.P99), FormatMillis(r.Latency.P999), FormatMillis(r.Latency.Max),
		FormatMillis(r.Latency.Mean), r.Errors.String())
	if err == nil && r.FirstError != "" {
		_, err = fmt.Fprintf(w, "first error  %s\n", r.FirstError)
	}
	return err
}

// FormatMillis renders a latency given in milliseconds with a unit that
// keeps three significant digits: "87µs", "1.24ms", "312ms", "2.10s".
func FormatMillis(ms float64) string {
	switch {
	case ms < 0:
		return "-" + FormatMillis(-ms)
	case ms == 0:
		return "0"
	case ms < 1:
		return fmt.Sprintf("%.0fµs", ms*1000)
	case ms < 10:
		return fmt.Sprintf("%.2fms", ms)
	case ms < 100:
		return fmt.Sprintf("%.1fms", ms)
	case ms < 1000:
		return fmt.Sprintf("%.0fms", ms)
	}
	return fmt.Sprintf("%.2fs", ms/1000)
}
