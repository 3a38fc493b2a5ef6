package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/bench/loadgen"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want statFields
		ok   bool
	}{
		{"plain", "4242 (paygate) S 1 4242 4242 0 -1 4194560 900 0 0 0 1234 567 0 0 20 0 9 0 100 1000 200",
			statFields{ppid: 1, cpu: 1801}, true},
		{"name with spaces and parens", "77 (my (odd) name) R 76 77 77 0 -1 0 0 0 0 0 10 5 0 0 20 0 1 0 1 1 1",
			statFields{ppid: 76, cpu: 15}, true},
		{"truncated", "77 (x) R 76 77", statFields{}, false},
		{"no name", "garbage", statFields{}, false},
		{"not numbers", "1 (x) S a b c d e f g h i j k l m", statFields{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStat([]byte(tc.in))
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("parseStat = %+v, %v; want %+v, ok=%v", got, err, tc.want, tc.ok)
			}
		})
	}
}

func TestParseRSS(t *testing.T) {
	kb, err := parseRSS([]byte("Name:\tpaygate\nVmPeak:\t  99999 kB\nVmRSS:\t   20480 kB\nThreads:\t9\n"))
	if err != nil || kb != 20480 {
		t.Fatalf("parseRSS = %d, %v; want 20480", kb, err)
	}
	if _, err := parseRSS([]byte("Name:\tzombie\n")); err == nil {
		t.Fatal("parseRSS without VmRSS succeeded")
	}
}

func TestParseCPUBusy(t *testing.T) {
	busy, err := parseCPUBusy([]byte("cpu  45043 7 13890 268142 859 3 540 319 100 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n"))
	if want := int64(45043 + 7 + 13890 + 3 + 540 + 319); err != nil || busy != want {
		t.Fatalf("parseCPUBusy = %d, %v; want %d", busy, err, want)
	}
	if _, err := parseCPUBusy([]byte("intr 1 2 3\n")); err == nil {
		t.Fatal("parseCPUBusy without a cpu line succeeded")
	}
}

// The meter reads this very process.
func TestUsageMeterSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	m := newUsageMeter([]int{os.Getpid()})
	m.begin()
	for end := time.Now().Add(150 * time.Millisecond); time.Now().Before(end); {
	}
	u := m.end()
	if u.CPUPct <= 0 || u.RSSMB <= 0 {
		t.Fatalf("usage %+v: want CPU and RSS above zero", u)
	}
}

func names(scs []scenario) []string {
	var out []string
	for _, s := range scs {
		out = append(out, s.name)
	}
	return out
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		scenarios []string
		duration  time.Duration
		conc      []int
		ok        bool
	}{
		{"defaults", nil, []string{"direct", "proxy", "http", "stdio", "keys100k"}, 10 * time.Second, []int{1, 16, 64}, true},
		{"quick", []string{"--quick"}, []string{"direct", "proxy", "http", "stdio", "keys100k"}, 2 * time.Second, []int{1, 16, 64}, true},
		{"quick keeps an explicit duration", []string{"--quick", "--duration", "5s"}, []string{"direct", "proxy", "http", "stdio", "keys100k"}, 5 * time.Second, []int{1, 16, 64}, true},
		{"only direct", []string{"--only", "direct"}, []string{"direct"}, 10 * time.Second, []int{1, 16, 64}, true},
		{"only adds the baseline, in order", []string{"--only", "keys100k,http"}, []string{"direct", "http", "keys100k"}, 10 * time.Second, []int{1, 16, 64}, true},
		{"only proxy", []string{"--only", "http,proxy"}, []string{"direct", "proxy", "http"}, 10 * time.Second, []int{1, 16, 64}, true},
		{"no baseline", []string{"--only", "stdio", "--no-baseline"}, []string{"stdio"}, 10 * time.Second, []int{1, 16, 64}, true},
		{"concurrency", []string{"--concurrency", "2, 8"}, []string{"direct", "proxy", "http", "stdio", "keys100k"}, 10 * time.Second, []int{2, 8}, true},
		{"unknown scenario", []string{"--only", "redis"}, nil, 0, nil, false},
		{"bad concurrency", []string{"--concurrency", "0"}, nil, 0, nil, false},
		{"bad accept", []string{"--accept", "xml"}, nil, 0, nil, false},
		{"stray argument", []string{"direct"}, nil, 0, nil, false},
		{"rounds", []string{"--rounds", "3"}, []string{"direct", "proxy", "http", "stdio", "keys100k"}, 10 * time.Second, []int{1, 16, 64}, true},
		{"zero rounds", []string{"--rounds", "0"}, nil, 0, nil, false},
		{"negative settle", []string{"--settle", "-1s"}, nil, 0, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseFlags(tc.args, io.Discard)
			if (err == nil) != tc.ok {
				t.Fatalf("parseFlags(%q) error %v, want ok=%v", tc.args, err, tc.ok)
			}
			if !tc.ok {
				return
			}
			if got := names(o.scenarios); !slices.Equal(got, tc.scenarios) {
				t.Errorf("scenarios %v, want %v", got, tc.scenarios)
			}
			if o.duration != tc.duration || !slices.Equal(o.concurrency, tc.conc) {
				t.Errorf("duration %v concurrency %v, want %v %v", o.duration, o.concurrency, tc.duration, tc.conc)
			}
		})
	}
}

// The exact command line the runner gives paygate: what the gateway's
// flags must accept.
func TestPaygateArgs(t *testing.T) {
	r := &runner{opt: options{adminKey: "K"}}
	got := strings.Join(r.paygateArgs(9000, []string{"--remote-url", "http://127.0.0.1:8000/mcp"}, "/tmp/s.db"), " ")
	want := "wrap --remote-url http://127.0.0.1:8000/mcp --port 9000 --admin-key K --rate-limit 0 --state-file /tmp/s.db"
	if got != want {
		t.Errorf("args\n got %s\nwant %s", got, want)
	}
	r.opt.inMemory, r.opt.sync, r.opt.extraArgs = true, "normal", []string{"--log-level", "warn"}
	got = strings.Join(r.paygateArgs(9000, []string{"--server", "/bin/echo --stdio"}, "/tmp/s.db"), " ")
	want = "wrap --server /bin/echo --stdio --port 9000 --admin-key K --rate-limit 0 --in-memory --sync normal --log-level warn"
	if got != want {
		t.Errorf("args\n got %s\nwant %s", got, want)
	}
}

func TestCompare(t *testing.T) {
	cell := func(c int, cps, p50 float64) *Cell {
		return &Cell{Concurrency: c, Load: &loadgen.Result{OK: 1, CallsPerSec: cps, Latency: loadgen.Latency{P50: p50}}}
	}
	r := &Report{Scenarios: []*ScenarioResult{
		{Name: "direct", Cells: []*Cell{cell(1, 4000, 0.2), cell(16, 20000, 0.8)}},
		{Name: "proxy", Cells: []*Cell{cell(1, 2500, 0.4), cell(16, 8000, 2.0)}},
		{Name: "http", Cells: []*Cell{cell(1, 2000, 0.5), cell(16, 5000, 3.0), cell(64, 100, 9)}},
	}}
	r.compare()
	if p := r.Scenarios[1].Cells[0]; p.RatioToProxy != nil || *p.RatioToDirect != 0.625 {
		t.Errorf("proxy c=1: ratio to itself %v, to direct %v", deref(p.RatioToProxy), deref(p.RatioToDirect))
	}
	h := r.Scenarios[2].Cells
	if h[0].RatioToDirect == nil || *h[0].RatioToDirect != 0.5 || *h[0].AddedP50MS != 0.3 {
		t.Errorf("c=1: ratio %v added %v, want 0.5 and 0.3", deref(h[0].RatioToDirect), deref(h[0].AddedP50MS))
	}
	if *h[1].RatioToDirect != 0.25 || *h[1].AddedP50MS != 2.2 {
		t.Errorf("c=16: ratio %v added %v, want 0.25 and 2.2", *h[1].RatioToDirect, *h[1].AddedP50MS)
	}
	if h[2].RatioToDirect != nil || h[2].RatioToProxy != nil {
		t.Error("c=64 has a ratio without a direct or proxy cell to compare with")
	}
	if *h[0].RatioToProxy != 0.8 || *h[1].RatioToProxy != 0.625 {
		t.Errorf("ratios to the proxy %v, %v; want 0.8, 0.625", *h[0].RatioToProxy, *h[1].RatioToProxy)
	}
	var out strings.Builder
	r.writeTable(&out)
	for _, want := range []string{"×direct", "0.25", "+2.20ms", "+300µs", "×proxy", "0.62"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

// With rounds, each cell is compared with direct's and the proxy's cell
// of its own round, and the table shows medians over the rounds with
// their spread in the notes.
func TestCompareRounds(t *testing.T) {
	cell := func(round int, cps, p50 float64, errs int64) *Cell {
		return &Cell{Concurrency: 16, Round: round, Gateway: Usage{CPUPct: cps / 100, RSSMB: cps / 1000},
			Load: &loadgen.Result{OK: 1, CallsPerSec: cps, Latency: loadgen.Latency{P50: p50, P90: p50, P99: p50},
				Errors: loadgen.Errors{Timeouts: errs}}}
	}
	r := &Report{Scenarios: []*ScenarioResult{
		// The machine slows down over the rounds: direct and proxy with it.
		{Name: "direct", Cells: []*Cell{cell(1, 20000, 0.5, 0), cell(2, 10000, 1, 0), cell(3, 16000, 0.6, 0)}},
		{Name: "proxy", Cells: []*Cell{cell(1, 8000, 1, 0), cell(2, 4000, 2, 0), cell(3, 6400, 1.5, 0)}},
		{Name: "http", Cells: []*Cell{cell(1, 6000, 2, 1), cell(2, 2000, 4, 0), cell(3, 4800, 3, 2)}},
	}}
	r.compare()
	h := r.Scenarios[2].Cells
	for i, want := range []float64{0.3, 0.2, 0.3} {
		if got := *h[i].RatioToDirect; got != want {
			t.Errorf("round %d: ratio %v, want %v (paired with direct's cell of the same round)", i+1, got, want)
		}
	}
	rows := r.Scenarios[2].rows()
	if len(rows) != 1 {
		t.Fatalf("%d rows, want 1", len(rows))
	}
	rw := rows[0]
	if rw.callsPerSec != 4800 || rw.p50 != 3 || *rw.ratio != 0.3 || *rw.vsProxy != 0.75 || rw.rounds != 3 {
		t.Errorf("medians: %v calls/s, p50 %v, ×direct %v, ×proxy %v over %d rounds; want 4800, 3, 0.3, 0.75, 3",
			rw.callsPerSec, rw.p50, *rw.ratio, *rw.vsProxy, rw.rounds)
	}
	if rw.errors != 3 || rw.rss != 6 || rw.ratioRange != [2]float64{0.2, 0.3} {
		t.Errorf("errors %d (summed), RSS %v (peak), ×direct range %v; want 3, 6, [0.2 0.3]", rw.errors, rw.rss, rw.ratioRange)
	}
	var out strings.Builder
	r.writeTable(&out)
	for _, want := range []string{"c=16 over 3 rounds: ×direct 0.20–0.30, ×proxy 0.50–0.75", "4800", "3/0"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	n := 0
	for line := range strings.Lines(out.String()) {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "http" && f[1] == "16" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("http has %d table rows, want 1 (the medians):\n%s", n, out.String())
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// fakeAdmin is an admin API that creates keys, with or without the bulk
// endpoint.
type fakeAdmin struct {
	bulk bool
	mu   sync.Mutex
	keys map[string]string // name → key
	reqs int
}

func (f *fakeAdmin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Admin-Key") != "K" {
		http.Error(w, `{"error":"forbidden"}`, http.StatusUnauthorized)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs++
	create := func(name string) string {
		k := "pg_" + strconv.Itoa(len(f.keys))
		f.keys[name] = k
		return k
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/keys":
		var b struct {
			Name    string `json:"name"`
			Credits int64  `json:"credits"`
		}
		if json.NewDecoder(r.Body).Decode(&b) != nil || b.Credits <= 0 {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"key": create(b.Name), "name": b.Name})
	case r.Method == http.MethodPost && r.URL.Path == "/keys/bulk" && f.bulk:
		var b struct {
			Operations []struct{ Action, Name string } `json:"operations"`
		}
		if json.NewDecoder(r.Body).Decode(&b) != nil || len(b.Operations) > bulkMax {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		var results []map[string]any
		for i, op := range b.Operations {
			results = append(results, map[string]any{"index": i, "success": true, "result": map[string]any{"key": create(op.Name)}})
		}
		json.NewEncoder(w).Encode(map[string]any{"results": results})
	default:
		http.NotFound(w, r)
	}
}

func TestCreateMany(t *testing.T) {
	for _, tc := range []struct {
		name     string
		bulk     bool
		n        int
		method   string
		maxCalls int
	}{
		{"bulk", true, 250, "bulk", 3},
		{"single", false, 60, "single", 61}, // one bulk probe, then one request per key
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeAdmin{bulk: tc.bulk, keys: map[string]string{}}
			srv := httptest.NewServer(f)
			defer srv.Close()
			a := &adminClient{base: srv.URL, key: "K", client: srv.Client()}
			fill, err := a.createMany(context.Background(), tc.n, 1000, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if fill.Count != tc.n || fill.Method != tc.method || len(f.keys) != tc.n {
				t.Fatalf("fill %+v, store has %d keys; want %d by %s", fill, len(f.keys), tc.n, tc.method)
			}
			for i := range tc.n {
				if _, ok := f.keys["bench-"+strconv.Itoa(i)]; !ok {
					t.Fatalf("key bench-%d missing", i)
				}
			}
			if f.reqs > tc.maxCalls {
				t.Errorf("%d admin requests, want at most %d", f.reqs, tc.maxCalls)
			}
			key, err := a.createKey(context.Background(), "bench-load", 1e12)
			if err != nil || key == "" {
				t.Fatalf("createKey = %q, %v", key, err)
			}
		})
	}
	t.Run("wrong admin key", func(t *testing.T) {
		srv := httptest.NewServer(&fakeAdmin{bulk: true, keys: map[string]string{}})
		defer srv.Close()
		a := &adminClient{base: srv.URL, key: "wrong", client: srv.Client()}
		if _, err := a.createMany(context.Background(), 10, 1000, io.Discard); err == nil || !strings.Contains(err.Error(), "401") {
			t.Fatalf("createMany with a wrong admin key: %v, want an HTTP 401 error", err)
		}
		if _, err := a.createKey(context.Background(), "x", 1); err == nil {
			t.Fatal("createKey with a wrong admin key succeeded")
		}
	})
}
