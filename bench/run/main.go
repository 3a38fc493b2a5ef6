// Command run is paygate's benchmark runner. In one run on one machine it
// builds paygate and the echo server, then measures verified tools/call
// load at several concurrencies: against the echo server directly (the
// baseline) and through paygate in front of it, over HTTP and over stdio,
// and with a store of 100,000 keys. It prints a table comparing each
// scenario with the baseline and writes the results as JSON to
// bench/results/<timestamp>.json. See bench/README.md.
//
//	go run ./bench/run --quick
//	go run ./bench/run --only direct
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the runner's flags, parsed.
type options struct {
	duration, warmup time.Duration
	concurrency      []int
	rounds           int           // times every cell is measured
	settle           time.Duration // idle time before each cell
	scenarios        []scenario
	stateless        bool
	accept           string
	argsSize         int
	keys             int   // keys in the store for keys100k
	loadCredits      int64 // balance of the key the load uses
	sync             string
	inMemory         bool
	extraArgs        []string
	paygateBin       string
	echoBin          string // a prebuilt echo server (tests); "" builds ./bench/echo
	proxyBin         string // a prebuilt null proxy (tests); "" builds ./bench/cmd/nullproxy
	adminKey         string
	adminPrefix      string
	mcpPath          string
	healthPath       string
	startupTimeout   time.Duration
	outDir           string
	keep             bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per cell")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured load before each cell")
	quick := fs.Bool("quick", false, "2s cells with 500ms warmup")
	conc := fs.String("concurrency", "1,16,64", "comma-separated concurrencies")
	fs.IntVar(&o.rounds, "rounds", 1, "measure every cell this many times, round after round; the table shows medians")
	fs.DurationVar(&o.settle, "settle", 2*time.Second, "idle time before each cell, so the gateway measured before has flushed its store")
	only := fs.String("only", "", "comma-separated scenarios to run: direct, proxy, http, stdio, keys100k (default all)")
	noBaseline := fs.Bool("no-baseline", false, "with --only, do not add the direct scenario the ratios need")
	fs.BoolVar(&o.stateless, "stateless", false, "load without MCP sessions (no initialize)")
	fs.StringVar(&o.accept, "accept", "both", "Accept header of the load: json, sse or both")
	fs.IntVar(&o.argsSize, "args-size", 0, "pad tool arguments to about `N` bytes")
	fs.IntVar(&o.keys, "keys", 100_000, "keys to create for keys100k")
	fs.Int64Var(&o.loadCredits, "load-credits", 1_000_000_000_000, "credits of the key the load uses")
	fs.StringVar(&o.sync, "sync", "", "pass --sync `MODE` to paygate (e.g. normal)")
	fs.BoolVar(&o.inMemory, "in-memory", false, "pass --in-memory to paygate instead of --state-file (no restart measured)")
	extra := fs.String("paygate-args", "", "extra arguments for paygate wrap, space-separated")
	fs.StringVar(&o.paygateBin, "paygate", "", "use this paygate binary instead of building ./cmd/paygate")
	fs.StringVar(&o.adminKey, "admin-key", "", "admin key for paygate (default random)")
	fs.StringVar(&o.adminPrefix, "admin-prefix", "", "path prefix of the admin API (POST <prefix>/keys)")
	fs.StringVar(&o.mcpPath, "mcp-path", "/mcp", "path of paygate's MCP endpoint")
	fs.StringVar(&o.healthPath, "health-path", "/health", "path of paygate's health endpoint")
	fs.DurationVar(&o.startupTimeout, "startup-timeout", time.Minute, "how long paygate may take to answer its health endpoint")
	fs.StringVar(&o.outDir, "out", "", "directory for the JSON results (default bench/results)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (binaries, state files, logs)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *quick {
		if !set["duration"] {
			o.duration = 2 * time.Second
		}
		if !set["warmup"] {
			o.warmup = 500 * time.Millisecond
		}
	}
	var err error
	if o.concurrency, err = parseInts(*conc); err != nil {
		return o, fmt.Errorf("--concurrency: %w", err)
	}
	if o.scenarios, err = pickScenarios(*only, !*noBaseline); err != nil {
		return o, fmt.Errorf("--only: %w", err)
	}
	o.extraArgs = strings.Fields(*extra)
	switch o.accept {
	case "json", "sse", "both":
	default:
		return o, fmt.Errorf("--accept %q: want json, sse or both", o.accept)
	}
	if o.duration <= 0 || o.keys < 1 || o.rounds < 1 || o.settle < 0 {
		return o, fmt.Errorf("--duration, --keys and --rounds must be positive, --settle not negative")
	}
	return o, nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// pickScenarios selects scenarios by name, in their fixed order; with
// baseline, direct is added whenever another one is chosen.
func pickScenarios(only string, baseline bool) ([]scenario, error) {
	all := scenarios()
	if strings.TrimSpace(only) == "" {
		return all, nil
	}
	want := map[string]bool{}
	for name := range strings.SplitSeq(only, ",") {
		name = strings.TrimSpace(name)
		found := false
		for _, sc := range all {
			found = found || sc.name == name
		}
		if !found {
			return nil, fmt.Errorf("unknown scenario %q (have direct, proxy, http, stdio, keys100k)", name)
		}
		want[name] = true
	}
	if baseline {
		want["direct"] = true
	}
	var out []scenario
	for _, sc := range all {
		if want[sc.name] {
			out = append(out, sc)
		}
	}
	return out, nil
}

func main() {
	opt, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if err != flag.ErrHelp {
			fmt.Fprintln(os.Stderr, "bench/run:", err)
		}
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := newRunner(opt, os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/run:", err)
		os.Exit(1)
	}
	err = r.run(ctx)
	r.cleanup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "\nbench/run:", err)
		os.Exit(1)
	}
}
