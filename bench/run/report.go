package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
	Stateless   bool     `json:"stateless"`
	Accept      string   `json:"accept"`
	ArgsSize    int      `json:"args_size"`
	Keys        int      `json:"keys"` // keys in the store for keys100k
	Sync        string   `json:"sync,omitempty"`
	InMemory    bool     `json:"in_memory,omitempty"`
	ExtraArgs   []string `json:"extra_paygate_args,omitempty"`
}

// ScenarioResult is one scenario: how its gateway started, and one cell
// per concurrency.
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
	Load        *loadgen.Result `json:"load"`
	Gateway     Usage           `json:"gateway"`           // paygate, or the echo server for direct
	Backend     *Usage          `json:"backend,omitempty"` // the echo server behind paygate
	Loadgen     Usage           `json:"loadgen"`           // this process
	// OtherCPUPct is CPU the rest of the machine used during the cell, as
	// % of one core: above noisyCPUPct the cell's numbers are suspect.
	OtherCPUPct float64 `json:"other_cpu_pct"`
	// RatioToDirect is calls/s divided by direct's at the same
	// concurrency; AddedP50MS is p50 minus direct's.
	RatioToDirect *float64 `json:"ratio_to_direct,omitempty"`
	AddedP50MS    *float64 `json:"added_p50_ms,omitempty"`
	// RatioToProxy is calls/s divided by the null proxy's at the same
	// concurrency (paygate scenarios only): paygate's cost beyond being a
	// proxy at all.
	RatioToProxy *float64 `json:"ratio_to_proxy,omitempty"`
}

// noisyCPUPct is how much CPU (% of one core) other processes may use
// during a cell before the table flags it.
const noisyCPUPct = 25

// compare fills every cell's ratio and added latency from the direct
// scenario's cell at the same concurrency, where there is one, and the
// paygate scenarios' ratio to the null proxy's cell.
func (r *Report) compare() {
	cells := func(name string) map[int]*Cell {
		m := map[int]*Cell{}
		for _, s := range r.Scenarios {
			if s.Name == name {
				for _, c := range s.Cells {
					m[c.Concurrency] = c
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
			if b := direct[c.Concurrency]; b != nil && b.Load.CallsPerSec > 0 {
				ratio := c.Load.CallsPerSec / b.Load.CallsPerSec
				added := c.Load.Latency.P50 - b.Load.Latency.P50
				c.RatioToDirect, c.AddedP50MS = &ratio, &added
			}
			if b := proxy[c.Concurrency]; b != nil && b.Load.CallsPerSec > 0 && s.Name != "direct" && s.Name != "proxy" {
				ratio := c.Load.CallsPerSec / b.Load.CallsPerSec
				c.RatioToProxy = &ratio
			}
		}
	}
}

// writeTable prints the results for people.
func (r *Report) writeTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tconc\tcalls/s\tp50\tp90\tp99\terr/mism\tCPU%\tRSS MB\tbk CPU%\t×direct\t+p50\t×proxy\t")
	for _, s := range r.Scenarios {
		if len(s.Cells) == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t\n", s.Name)
		}
		for _, c := range s.Cells {
			l := c.Load
			bk := "-"
			if c.Backend != nil {
				bk = fmt.Sprintf("%.0f", c.Backend.CPUPct)
			}
			ratio, added := "-", "-"
			if c.RatioToDirect != nil {
				ratio = fmt.Sprintf("%.2f", *c.RatioToDirect)
				added = "+" + loadgen.FormatMillis(*c.AddedP50MS)
				if *c.AddedP50MS < 0 {
					added = loadgen.FormatMillis(*c.AddedP50MS)
				}
			}
			vsProxy := "-"
			if c.RatioToProxy != nil {
				vsProxy = fmt.Sprintf("%.2f", *c.RatioToProxy)
			}
			fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t%d/%d\t%.0f\t%.1f\t%s\t%s\t%s\t%s\t\n",
				s.Name, c.Concurrency, l.CallsPerSec,
				loadgen.FormatMillis(l.Latency.P50), loadgen.FormatMillis(l.Latency.P90), loadgen.FormatMillis(l.Latency.P99),
				l.Errors.Total(), l.Errors.Mismatches, c.Gateway.CPUPct, c.Gateway.RSSMB, bk, ratio, added, vsProxy)
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
		for _, c := range s.Cells {
			if c.OtherCPUPct > noisyCPUPct {
				notes = append(notes, fmt.Sprintf("c=%d: other processes used %.0f%% CPU meanwhile: numbers are noisy", c.Concurrency, c.OtherCPUPct))
			}
			if c.Load.FirstError != "" {
				notes = append(notes, fmt.Sprintf("c=%d errors: %s; first: %s", c.Concurrency, c.Load.Errors.String(), c.Load.FirstError))
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
