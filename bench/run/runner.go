package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/paygate/paygate/bench/loadgen"
)

// scenario is one row group of the results table.
type scenario struct {
	name  string
	about string
	setup func(r *runner, ctx context.Context, res *ScenarioResult) (*target, error)
}

// target is a scenario ready to take load: every scenario is set up first
// and stays up, so that the cells of one concurrency are measured back to
// back, scenario after scenario, and each round compares cells measured
// within a minute of each other. On a machine whose speed drifts (other
// tenants of a VM), that keeps the ratios far steadier than measuring one
// scenario after another.
type target struct {
	url         string
	keys        []string
	p           *proc
	backendPIDs func() []int
	stop        func()                          // nil: nothing of its own to stop
	finish      func(ctx context.Context) error // nil: nothing to do after the last cell
}

// scenarios lists every scenario in the order they run. direct comes
// first: the others are compared with it.
func scenarios() []scenario {
	return []scenario{
		{"direct", "loadgen → echo over HTTP, no gateway: the baseline", (*runner).setupDirect},
		{"proxy", "loadgen → a do-nothing reverse proxy (net/http/httputil) → echo over HTTP: what one more hop costs here", (*runner).setupProxy},
		{"http", "loadgen → paygate → echo over Streamable HTTP (--remote-url)", (*runner).setupHTTP},
		{"stdio", "loadgen → paygate → echo as a stdio child process (--server)", (*runner).setupStdio},
		{"keys100k", "as http, with many keys in the store (--keys, default 100,000); then a restart on that store", (*runner).setupKeys},
	}
}

// errNotStarted marks a gateway that did not come up: the remaining
// gateway scenarios are skipped rather than each waiting for it.
var errNotStarted = errors.New("paygate did not start")

// runner runs the scenarios and collects the report.
type runner struct {
	opt    options
	root   string       // the repository root (where go.mod is)
	tmp    string       // binaries, state files and logs of this run
	out    io.Writer    // progress
	stdout io.Writer    // the results table
	client *http.Client // admin calls and health probes

	echoBin, paygateBin string
	proxyBin            string
	backend             *proc // the echo HTTP server behind direct, http and keys100k
	backendURL          string
	backendCold         time.Duration
	report              *Report
	failed              bool // a scenario failed: keep its logs
}

func newRunner(opt options, stdout, out io.Writer) (*runner, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "paygate-bench-")
	if err != nil {
		return nil, err
	}
	if opt.outDir == "" {
		opt.outDir = filepath.Join(root, "bench", "results")
	}
	if opt.adminKey == "" {
		var b [12]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
		opt.adminKey = "bench-admin-" + hex.EncodeToString(b[:])
	}
	r := &runner{
		opt:    opt,
		root:   root,
		tmp:    tmp,
		out:    out,
		stdout: stdout,
		client: &http.Client{Transport: loadgen.NewTransport(64), Timeout: 30 * time.Second},
	}
	r.report = &Report{
		Started: time.Now(),
		Host:    hostInfo(),
		Commit:  gitCommit(root),
		Settings: Settings{
			Duration:    opt.duration.String(),
			Warmup:      opt.warmup.String(),
			Concurrency: opt.concurrency,
			Rounds:      opt.rounds,
			Stateless:   opt.stateless,
			Accept:      opt.accept,
			ArgsSize:    opt.argsSize,
			Keys:        opt.keys,
			Sync:        opt.sync,
			InMemory:    opt.inMemory,
			ExtraArgs:   opt.extraArgs,
		},
	}
	return r, nil
}

// cleanup stops the backend and removes the temporary directory, unless
// it is to be kept (--keep, or a scenario failed and its logs matter).
func (r *runner) cleanup() {
	if r.backend != nil {
		r.backend.stop(5 * time.Second)
	}
	if r.failed || r.opt.keep {
		fmt.Fprintf(r.out, "logs and state files kept in %s\n", r.tmp)
		return
	}
	os.RemoveAll(r.tmp)
}

func (r *runner) run(ctx context.Context) error {
	if err := r.build(ctx); err != nil {
		return err
	}
	if err := r.startBackend(ctx); err != nil {
		return err
	}
	var (
		failed     []string
		notStarted string
		results    = make([]*ScenarioResult, len(r.opt.scenarios))
		targets    = make([]*target, len(r.opt.scenarios))
	)
	fail := func(i int, err error) {
		res := results[i]
		res.Error = err.Error()
		failed = append(failed, res.Name)
		r.failed = true
		fmt.Fprintf(r.out, "   %s FAILED: %s\n", res.Name, strings.ReplaceAll(err.Error(), "\n", "\n   "))
		if t := targets[i]; t != nil && t.stop != nil {
			t.stop()
		}
		targets[i] = nil
	}
	defer func() {
		for _, t := range targets {
			if t != nil && t.stop != nil {
				t.stop()
			}
		}
	}()

	// Set every scenario up.
	for i, sc := range r.opt.scenarios {
		res := &ScenarioResult{Name: sc.name, About: sc.about}
		results[i] = res
		r.report.Scenarios = append(r.report.Scenarios, res)
		fmt.Fprintf(r.out, "== %s: %s\n", sc.name, sc.about)
		var err error
		if notStarted != "" && sc.name != "direct" {
			err = fmt.Errorf("skipped: paygate did not start in scenario %s", notStarted)
		} else {
			targets[i], err = sc.setup(r, ctx, res)
		}
		if err != nil {
			fail(i, err)
			if errors.Is(err, errNotStarted) && notStarted == "" {
				notStarted = sc.name
			}
		}
		if ctx.Err() != nil {
			break
		}
	}

	// Measure: each round, each concurrency, every scenario in turn.
	for round := 1; round <= r.opt.rounds && ctx.Err() == nil; round++ {
		if r.opt.rounds > 1 {
			fmt.Fprintf(r.out, "== round %d of %d\n", round, r.opt.rounds)
		}
		for _, c := range r.opt.concurrency {
			for i, t := range targets {
				if t == nil || ctx.Err() != nil {
					continue
				}
				if err := r.measure(ctx, results[i], t, c, round); err != nil {
					fail(i, fmt.Errorf("c=%d: %w", c, err))
				}
			}
		}
	}
	for i, t := range targets {
		if t != nil && t.finish != nil && ctx.Err() == nil {
			if err := t.finish(ctx); err != nil {
				fail(i, err)
			}
		}
	}

	r.report.compare()
	fmt.Fprintln(r.stdout)
	r.report.writeTable(r.stdout)
	path, err := r.report.save(r.opt.outDir)
	if err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	fmt.Fprintf(r.stdout, "\nresults: %s\n", path)
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d scenario(s) failed: %s (details above and in %s)", len(failed), strings.Join(failed, ", "), path)
	}
	return nil
}

// build compiles paygate (unless given, or not needed) and the echo server.
func (r *runner) build(ctx context.Context) error {
	needPaygate, needProxy := false, false
	for _, sc := range r.opt.scenarios {
		needPaygate = needPaygate || (sc.name != "direct" && sc.name != "proxy")
		needProxy = needProxy || sc.name == "proxy"
	}
	switch {
	case !needPaygate:
	case r.opt.paygateBin != "":
		if _, err := os.Stat(r.opt.paygateBin); err != nil {
			return fmt.Errorf("--paygate: %w", err)
		}
		r.paygateBin = r.opt.paygateBin
	default:
		r.paygateBin = filepath.Join(r.tmp, "paygate")
		fmt.Fprintln(r.out, "building paygate (./cmd/paygate)…")
		if err := r.goBuild(ctx, "./cmd/paygate", r.paygateBin); err != nil {
			return fmt.Errorf("cannot build paygate (./cmd/paygate may not be wired yet): %w\n"+
				"to measure the echo backend alone: go run ./bench/run --only direct", err)
		}
	}
	switch {
	case !needProxy:
	case r.opt.proxyBin != "":
		r.proxyBin = r.opt.proxyBin
	default:
		r.proxyBin = filepath.Join(r.tmp, "nullproxy")
		fmt.Fprintln(r.out, "building the null proxy (./bench/cmd/nullproxy)…")
		if err := r.goBuild(ctx, "./bench/cmd/nullproxy", r.proxyBin); err != nil {
			return err
		}
	}
	if r.opt.echoBin != "" {
		r.echoBin = r.opt.echoBin
		return nil
	}
	r.echoBin = filepath.Join(r.tmp, "echo")
	fmt.Fprintln(r.out, "building the echo server (./bench/echo)…")
	return r.goBuild(ctx, "./bench/echo", r.echoBin)
}

func (r *runner) goBuild(ctx context.Context, pkg, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = r.root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, indent(strings.TrimSpace(string(b))))
	}
	return nil
}

func (r *runner) startBackend(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	r.backend, err = startProc("echo backend", filepath.Join(r.tmp, "echo-http.log"), r.echoBin, "--http", addr)
	if err != nil {
		return err
	}
	if r.backendCold, err = r.backend.waitReady(ctx, 10*time.Second, tcpOpen(addr)); err != nil {
		return fmt.Errorf("echo backend: %w", err)
	}
	r.backendURL = "http://" + addr + "/mcp"
	return nil
}

func (r *runner) setupDirect(ctx context.Context, res *ScenarioResult) (*target, error) {
	res.URL = r.backendURL
	res.Command = r.backend.cmd.Args
	res.ColdStartMS = ms(r.backendCold)
	res.IdleRSSMB, _ = readRSSMB(r.backend.pid())
	if err := r.sanity(ctx, r.backendURL, nil); err != nil {
		return nil, err
	}
	return &target{url: r.backendURL, p: r.backend, backendPIDs: func() []int { return nil }}, nil
}

// setupProxy starts the null proxy in front of the echo server: the same
// path as http, without anything paygate does besides forwarding.
func (r *runner) setupProxy(ctx context.Context, res *ScenarioResult) (*target, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	p, err := startProc("null proxy", filepath.Join(r.tmp, "nullproxy.log"), r.proxyBin,
		"--listen", addr, "--backend", strings.TrimSuffix(r.backendURL, "/mcp"))
	if err != nil {
		return nil, err
	}
	stop := func() { p.stop(10 * time.Second) }
	cold, err := p.waitReady(ctx, 10*time.Second, tcpOpen(addr))
	if err != nil {
		stop()
		return nil, fmt.Errorf("null proxy: %w", err)
	}
	url := "http://" + addr + "/mcp"
	res.URL, res.Command = url, p.cmd.Args
	res.ColdStartMS = ms(cold)
	res.IdleRSSMB = settledRSS(p.pid())
	if err := r.sanity(ctx, url, nil); err != nil {
		stop()
		return nil, err
	}
	return &target{url: url, p: p, backendPIDs: func() []int { return []int{r.backend.pid()} }, stop: stop}, nil
}

func (r *runner) setupHTTP(ctx context.Context, res *ScenarioResult) (*target, error) {
	return r.setupGateway(ctx, res, []string{"--remote-url", r.backendURL}, false)
}

func (r *runner) setupStdio(ctx context.Context, res *ScenarioResult) (*target, error) {
	return r.setupGateway(ctx, res, []string{"--server", r.echoBin + " --stdio"}, false)
}

func (r *runner) setupKeys(ctx context.Context, res *ScenarioResult) (*target, error) {
	return r.setupGateway(ctx, res, []string{"--remote-url", r.backendURL}, true)
}

// setupGateway starts paygate wrapping a backend; with fill it first puts
// opt.keys keys in the store, and after the last cell times a restart on
// it.
func (r *runner) setupGateway(ctx context.Context, res *ScenarioResult, backend []string, fill bool) (_ *target, err error) {
	dir := filepath.Join(r.tmp, res.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	state := filepath.Join(dir, "state.db")
	gw, err := r.startGateway(ctx, filepath.Join(dir, "paygate.log"), backend, state)
	if err != nil {
		return nil, err
	}
	t := &target{p: gw.p, stop: func() {
		if gw != nil { // nil when a restart failed
			gw.p.stop(30 * time.Second)
		}
	}}
	defer func() {
		if err != nil {
			t.stop()
		}
	}()
	res.Command = gw.p.cmd.Args
	res.ColdStartMS = ms(gw.cold)
	res.IdleRSSMB = settledRSS(gw.p.pid())

	admin := &adminClient{base: gw.base + r.opt.adminPrefix, key: r.opt.adminKey, client: r.client}
	if fill {
		f, err := admin.createMany(ctx, r.opt.keys, 1_000_000_000, r.out)
		res.KeyFill = &f
		if err != nil {
			return nil, err
		}
		res.FilledRSSMB, _ = readRSSMB(gw.p.pid())
	}
	key, err := admin.createKey(ctx, "bench-load", r.opt.loadCredits)
	if err != nil {
		return nil, fmt.Errorf("create the load key: %w", err)
	}
	t.keys = []string{key}
	res.URL = gw.base + r.opt.mcpPath
	t.url = res.URL
	if err := r.sanity(ctx, res.URL, t.keys); err != nil {
		return nil, err
	}
	t.backendPIDs = func() []int { return []int{r.backend.pid()} }
	if backend[0] == "--server" {
		t.backendPIDs = func() []int { return childrenOf(gw.p.pid()) }
	}
	if !fill || r.opt.inMemory {
		return t, nil
	}

	// After the cells, restart on the filled store: how long until /health
	// answers, and does the load key still work?
	t.finish = func(ctx context.Context) error {
		fmt.Fprintf(r.out, "== %s: restarting paygate on the filled store…\n", res.Name)
		gw.p.stop(30 * time.Second)
		var err error
		if gw, err = r.startGateway(ctx, filepath.Join(dir, "paygate-restart.log"), backend, state); err != nil {
			return fmt.Errorf("restart: %w", err)
		}
		rs := &restartInfo{ColdStartMS: ms(gw.cold), IdleRSSMB: settledRSS(gw.p.pid())}
		res.Restart = rs
		if err := r.sanity(ctx, gw.base+r.opt.mcpPath, t.keys); err != nil {
			rs.LoadKeyDetail = err.Error()
		} else {
			rs.LoadKeyWorks = true
		}
		fmt.Fprintf(r.out, "   restart: cold start %s, idle RSS %.1f MB\n", fmtMS(rs.ColdStartMS), rs.IdleRSSMB)
		return nil
	}
	return t, nil
}

// gateway is a running paygate.
type gateway struct {
	p    *proc
	base string // http://127.0.0.1:PORT
	cold time.Duration
}

// paygateArgs builds the wrap command line for one gateway.
func (r *runner) paygateArgs(port int, backend []string, state string) []string {
	args := append([]string{"wrap"}, backend...)
	args = append(args, "--port", strconv.Itoa(port), "--admin-key", r.opt.adminKey, "--rate-limit", "0")
	if r.opt.inMemory {
		args = append(args, "--in-memory")
	} else {
		args = append(args, "--state-file", state)
	}
	if r.opt.sync != "" {
		args = append(args, "--sync", r.opt.sync)
	}
	return append(args, r.opt.extraArgs...)
}

func (r *runner) startGateway(ctx context.Context, logPath string, backend []string, state string) (*gateway, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	args := r.paygateArgs(port, backend, state)
	p, err := startProc("paygate", logPath, r.paygateBin, args...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNotStarted, err)
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	cold, err := p.waitReady(ctx, r.opt.startupTimeout, httpOK(r.client, base+r.opt.healthPath))
	if err != nil {
		p.stop(5 * time.Second)
		return nil, fmt.Errorf("%w (GET %s%s never answered 200): %v\n    command: %s %s",
			errNotStarted, base, r.opt.healthPath, err, r.paygateBin, strings.Join(args, " "))
	}
	return &gateway{p: p, base: base, cold: cold}, nil
}

// sanity makes one verified call before measuring, so a broken setup
// fails with its reason rather than as a table full of errors.
func (r *runner) sanity(ctx context.Context, url string, keys []string) error {
	res, err := loadgen.Run(ctx, loadgen.Config{
		URL: url, Concurrency: 1, Requests: 1, Stateless: r.opt.stateless,
		Accept: loadgen.Accept(r.opt.accept), Keys: keys, Timeout: 10 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("first call to %s: %w", url, err)
	}
	if res.OK != 1 {
		return fmt.Errorf("first call to %s failed: %s", url, res.FirstError)
	}
	return nil
}

// measureCells runs one cell per concurrency against url, metering the
// measured process p and the backend processes.
// measure runs one cell of t at concurrency c and adds it to res. It
// first lets the machine settle: a gateway flushes its store to disk
// about a second after its load stops, and that flush must not land in
// the next scenario's cell.
func (r *runner) measure(ctx context.Context, res *ScenarioResult, t *target, c, round int) error {
	select {
	case <-time.After(r.opt.settle):
	case <-ctx.Done():
		return ctx.Err()
	}
	cell, err := r.measureCell(ctx, t.url, c, t.keys, t.p.pid(), t.backendPIDs())
	if err != nil {
		return err
	}
	if r.opt.rounds > 1 {
		cell.Round = round
	}
	res.Cells = append(res.Cells, cell)
	l := cell.Load
	fmt.Fprintf(r.out, "   %-8s c=%-3d %8.0f calls/s  p50 %-7s p99 %-7s errors %s  CPU %.0f%%  RSS %.1f MB\n",
		res.Name, c, l.CallsPerSec, fmtMS(l.Latency.P50), fmtMS(l.Latency.P99), l.Errors.String(), cell.Gateway.CPUPct, cell.Gateway.RSSMB)
	if t.p.exited() {
		return errors.New(t.p.describeExit())
	}
	return ctx.Err()
}

func (r *runner) measureCell(ctx context.Context, url string, c int, keys []string, pid int, backendPIDs []int) (*Cell, error) {
	gw := newUsageMeter([]int{pid})
	self := newUsageMeter([]int{os.Getpid()})
	var bk *usageMeter
	if len(backendPIDs) > 0 {
		bk = newUsageMeter(backendPIDs)
	}
	var machine machineMeter
	res, err := loadgen.Run(ctx, loadgen.Config{
		URL:         url,
		Concurrency: c,
		Duration:    r.opt.duration,
		Warmup:      r.opt.warmup,
		Stateless:   r.opt.stateless,
		Accept:      loadgen.Accept(r.opt.accept),
		Keys:        keys,
		ArgsSize:    r.opt.argsSize,
		Timeout:     10 * time.Second,
		OnMeasureStart: func() {
			machine.begin()
			gw.begin()
			self.begin()
			if bk != nil {
				bk.begin()
			}
		},
	})
	busy := machine.end()
	cell := &Cell{Concurrency: c, Load: res, Gateway: gw.end(), Loadgen: self.end()}
	ours := cell.Gateway.CPUPct + cell.Loadgen.CPUPct
	if bk != nil {
		u := bk.end()
		cell.Backend = &u
		ours += u.CPUPct
	}
	cell.OtherCPUPct = max(0, busy-ours)
	return cell, err
}

// settledRSS reads a process's RSS after giving it a moment to finish
// starting up.
func settledRSS(pid int) float64 {
	time.Sleep(300 * time.Millisecond)
	mb, _ := readRSSMB(pid)
	return mb
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run this from inside the paygate module (go env GOMOD is empty)")
	}
	return filepath.Dir(mod), nil
}

// gitCommit returns the checked-out commit, read-only, or "".
func gitCommit(root string) string {
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func hostInfo() Host {
	h := Host{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		h.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range bytes.Lines(b) {
			if k, v, ok := bytes.Cut(line, []byte(":")); ok && string(bytes.TrimSpace(k)) == "model name" {
				h.CPUModel = string(bytes.TrimSpace(v))
				break
			}
		}
	}
	return h
}
