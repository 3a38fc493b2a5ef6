package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/paygate/paygate/bench/loadgen"
)

// Report is everything one run of the runner measured; it is written as
// JSON to bench/results/<timestamp>.json.
type Report struct {
	Started   time.Time         `json:"started"`
	Host      Host              `json:"host"`
	Commit    string            `json:"commit,omitempty"`
	Settings  Settings          `json:"settings"`
	Scenarios []*ScenarioResult `json:"scenarios"`
}

// Host describes the machine.
type Host struct {
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpu_model,omitempty"`
	Kernel     string `json:"kernel,omitempty"`
	GoVersion  string `json:"go_version"`
}

// Settings are the options every scenario ran with.
type Settings struct {
	Duration    string   `json:"duration"`
	Warmup      string   `json:"warmup"`
	Concurrency []int    `json:"concurrency"`
	Rounds      int      `json:"rounds"`
	Stateless   bool     `json:"stateless"`
	Accept      string   `json:"accept"`
	ArgsSize    int      `json:"args_size"`
	Keys        int      `json:"keys"` // keys in the store for keys100k
	Sync        string   `json:"sync,omitempty"`
	InMemory    bool     `json:"in_memory,omitempty"`
	ExtraArgs   []string `json:"extra_paygate_args,omitempty"`
}

// ScenarioResult is one scenario: how its gateway started, and one cell
// per concurrency and round.
type ScenarioResult struct {
	Name  string `json:"name"`
	About string `json:"about"`
	URL   string `json:"url,omitempty"` // the endpoint the load went to
	// Command is the measured process's command line (paygate, or the echo
	// server for direct).
	Command     []string     `json:"command,omitempty"`
	ColdStartMS float64      `json:"cold_start_ms,omitempty"` // process start to ready
	IdleRSSMB   float64      `json:"idle_rss_mb,omitempty"`   // after start, before load
	KeyFill     *keyFill     `json:"key_fill,omitempty"`
	FilledRSSMB float64      `json:"filled_rss_mb,omitempty"` // after the keys were created
	Restart     *restartInfo `json:"restart,omitempty"`
	Cells       []*Cell      `json:"cells"`
	Error       string       `json:"error,omitempty"`
}

// restartInfo is a gateway restarted on its filled state file.
type restartInfo struct {
	ColdStartMS   float64 `json:"cold_start_ms"`
	IdleRSSMB     float64 `json:"idle_rss_mb"`
	LoadKeyWorks  bool    `json:"load_key_works"` // a verified call with the load key succeeds after restart
	LoadKeyDetail string  `json:"load_key_detail,omitempty"`
}

// Cell is one scenario at one concurrency.
type Cell struct {
	Concurrency int             `json:"concurrency"`
	Round       int             `json:"round,omitempty"` // 1, 2, … with --rounds above 1
	Load        *loadgen.Result `json:"load"`
	Gateway     Usage           `json:"gateway"`           // paygate, or the echo server for direct
	Backend     *Usage          `json:"backend,omitempty"` // the echo server behind paygate
	Loadgen     Usage           `json:"loadgen"`           // this process
	// OtherCPUPct is CPU the rest of the machine used during the cell, as
	// % of one core: above noisyCPUPct the cell's numbers are suspect.
	OtherCPUPct float64 `json:"other_cpu_pct"`
	// RatioToDirect is calls/s divided by direct's at the same
	// concurrency and round; AddedP50MS is p50 minus direct's.
	RatioToDirect *float64 `json:"ratio_to_direct,omitempty"`
	AddedP50MS    *float64 `json:"added_p50_ms,omitempty"`
	// RatioToProxy is calls/s divided by the null proxy's at the same
	// concurrency and round (paygate scenarios only): paygate's cost beyond being a
	// proxy at all.
	RatioToProxy *float64 `json:"ratio_to_proxy,omitempty"`
}

// label names the cell in notes: "c=16", or "c=16 round 2".
func (c *Cell) label() string {
	if c.Round > 0 {
		return fmt.Sprintf("c=%d round %d", c.Concurrency, c.Round)
	}
	return fmt.Sprintf("c=%d", c.Concurrency)
}

// noisyCPUPct is how much CPU (% of one core) other processes may use
// during a cell before the table flags it.
const noisyCPUPct = 25

// compare fills every cell's ratio and added latency from the direct
// scenario's cell of the same concurrency and round, where there is one,
// and the paygate scenarios' ratio to the null proxy's cell.
func (r *Report) compare() {
	type at struct{ conc, round int }
	cells := func(name string) map[at]*Cell {
		m := map[at]*Cell{}
		for _, s := range r.Scenarios {
			if s.Name == name {
				for _, c := range s.Cells {
					m[at{c.Concurrency, c.Round}] = c
				}
			}
		}
		return m
	}
	direct, proxy := cells("direct"), cells("proxy")
	for _, s := range r.Scenarios {
		for _, c := range s.Cells {
			if c.Load.OK == 0 {
				continue
			}
			if b := direct[at{c.Concurrency, c.Round}]; b != nil && b.Load.CallsPerSec > 0 {
				ratio := c.Load.CallsPerSec / b.Load.CallsPerSec
				added := c.Load.Latency.P50 - b.Load.Latency.P50
				c.RatioToDirect, c.AddedP50MS = &ratio, &added
			}
			if b := proxy[at{c.Concurrency, c.Round}]; b != nil && b.Load.CallsPerSec > 0 && s.Name != "direct" && s.Name != "proxy" {
				ratio := c.Load.CallsPerSec / b.Load.CallsPerSec
				c.RatioToProxy = &ratio
			}
		}
	}
}

// row is one line of the table: a cell, or the medians of a scenario's
// cells at one concurrency over the rounds.
type row struct {
	conc                   int
	callsPerSec            float64
	p50, p90, p99          float64
	errors, mismatches     int64
	cpu, rss               float64 // rss: the peak over the rounds
	backendCPU             *float64
	ratio, added, vsProxy  *float64
	rounds                 int
	ratioRange, proxyRange [2]float64 // min and max over the rounds
}

// rows groups s's cells by concurrency, in the order they were measured,
// into one row each.
func (s *ScenarioResult) rows() []row {
	var order []int
	by := map[int][]*Cell{}
	for _, c := range s.Cells {
		if _, ok := by[c.Concurrency]; !ok {
			order = append(order, c.Concurrency)
		}
		by[c.Concurrency] = append(by[c.Concurrency], c)
	}
	out := make([]row, 0, len(order))
	for _, conc := range order {
		cs := by[conc]
		pick := func(f func(*Cell) *float64) (med *float64, lo, hi float64) {
			var v []float64
			for _, c := range cs {
				if p := f(c); p != nil {
					v = append(v, *p)
				}
			}
			if len(v) == 0 {
				return nil, 0, 0
			}
			m := median(v)
			return &m, slices.Min(v), slices.Max(v)
		}
		val := func(f func(*Cell) float64) float64 {
			m, _, _ := pick(func(c *Cell) *float64 { x := f(c); return &x })
			return *m
		}
		rw := row{conc: conc, rounds: len(cs),
			callsPerSec: val(func(c *Cell) float64 { return c.Load.CallsPerSec }),
			p50:         val(func(c *Cell) float64 { return c.Load.Latency.P50 }),
			p90:         val(func(c *Cell) float64 { return c.Load.Latency.P90 }),
			p99:         val(func(c *Cell) float64 { return c.Load.Latency.P99 }),
			cpu:         val(func(c *Cell) float64 { return c.Gateway.CPUPct }),
		}
		for _, c := range cs {
			rw.errors += c.Load.Errors.Total()
			rw.mismatches += c.Load.Errors.Mismatches
			rw.rss = max(rw.rss, c.Gateway.RSSMB)
		}
		rw.backendCPU, _, _ = pick(func(c *Cell) *float64 {
			if c.Backend == nil {
				return nil
			}
			return &c.Backend.CPUPct
		})
		rw.ratio, rw.ratioRange[0], rw.ratioRange[1] = pick(func(c *Cell) *float64 { return c.RatioToDirect })
		rw.added, _, _ = pick(func(c *Cell) *float64 { return c.AddedP50MS })
		rw.vsProxy, rw.proxyRange[0], rw.proxyRange[1] = pick(func(c *Cell) *float64 { return c.RatioToProxy })
		out = append(out, rw)
	}
	return out
}

// median of v (v is reordered).
func median(v []float64) float64 {
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// writeTable prints the results for people.
func (r *Report) writeTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tconc\tcalls/s\tp50\tp90\tp99\terr/mism\tCPU%\tRSS MB\tbk CPU%\t×direct\t+p50\t×proxy\t")
	for _, s := range r.Scenarios {
		if len(s.Cells) == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t\n", s.Name)
		}
		for _, rw := range s.rows() {
			bk := "-"
			if rw.backendCPU != nil {
				bk = fmt.Sprintf("%.0f", *rw.backendCPU)
			}
			ratio, added := "-", "-"
			if rw.ratio != nil {
				ratio = fmt.Sprintf("%.2f", *rw.ratio)
			}
			if rw.added != nil {
				added = "+" + loadgen.FormatMillis(*rw.added)
				if *rw.added < 0 {
					added = loadgen.FormatMillis(*rw.added)
				}
			}
			vsProxy := "-"
			if rw.vsProxy != nil {
				vsProxy = fmt.Sprintf("%.2f", *rw.vsProxy)
			}
			fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t%d/%d\t%.0f\t%.1f\t%s\t%s\t%s\t%s\t\n",
				s.Name, rw.conc, rw.callsPerSec,
				loadgen.FormatMillis(rw.p50), loadgen.FormatMillis(rw.p90), loadgen.FormatMillis(rw.p99),
				rw.errors, rw.mismatches, rw.cpu, rw.rss, bk, ratio, added, vsProxy)
		}
	}
	tw.Flush()

	for _, s := range r.Scenarios {
		var notes []string
		if s.ColdStartMS > 0 {
			notes = append(notes, fmt.Sprintf("cold start %s, idle RSS %.1f MB", fmtMS(s.ColdStartMS), s.IdleRSSMB))
		}
		if f := s.KeyFill; f != nil {
			note := fmt.Sprintf("%d keys created in %.1fs (%s, %.0f/s)", f.Count, f.Seconds, f.Method, f.PerSec)
			if s.FilledRSSMB > 0 {
				note += fmt.Sprintf(", RSS then %.1f MB", s.FilledRSSMB)
			}
			notes = append(notes, note)
		}
		if rs := s.Restart; rs != nil {
			works := "yes"
			if !rs.LoadKeyWorks {
				works = "NO: " + rs.LoadKeyDetail
			}
			notes = append(notes, fmt.Sprintf("restart cold start %s, idle RSS %.1f MB, load key works after restart: %s",
				fmtMS(rs.ColdStartMS), rs.IdleRSSMB, works))
		}
		for _, rw := range s.rows() {
			if rw.rounds > 1 && rw.ratio != nil && s.Name != "direct" {
				note := fmt.Sprintf("c=%d over %d rounds: ×direct %.2f–%.2f", rw.conc, rw.rounds, rw.ratioRange[0], rw.ratioRange[1])
				if rw.vsProxy != nil {
					note += fmt.Sprintf(", ×proxy %.2f–%.2f", rw.proxyRange[0], rw.proxyRange[1])
				}
				notes = append(notes, note)
			}
		}
		for _, c := range s.Cells {
			if c.OtherCPUPct > noisyCPUPct {
				notes = append(notes, fmt.Sprintf("%s: other processes used %.0f%% CPU meanwhile: numbers are noisy", c.label(), c.OtherCPUPct))
			}
			if c.Load.FirstError != "" {
				notes = append(notes, fmt.Sprintf("%s errors: %s; first: %s", c.label(), c.Load.Errors.String(), c.Load.FirstError))
			}
		}
		if s.Error != "" {
			notes = append(notes, "FAILED: "+s.Error)
		}
		if len(notes) > 0 {
			fmt.Fprintf(w, "%-9s %s\n", s.Name, strings.Join(notes, "\n          "))
		}
	}
}

func fmtMS(ms float64) string { return loadgen.FormatMillis(ms) }

// save writes the report as indented JSON to dir/<timestamp>.json.
func (r *Report) save(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, r.Started.Format("20060102-150405")+".json")
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	return path, os.WriteFile(path, append(b, '\n'), 0o644)
}
