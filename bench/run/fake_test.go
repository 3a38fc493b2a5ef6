package main

// This file turns the test binary into the children the runner starts, so
// that the runner's whole flow (start, health, admin API, load, restart)
// is tested without the real gateway: with BENCH_RUN_TEST_CHILD=1 set, the
// binary runs as a fake paygate ("wrap …"), as the echo server
// ("--http ADDR" / "--stdio") or as the null proxy ("--listen ADDR
// --backend URL").

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/paygate/paygate/bench/echoserver"
	"github.com/paygate/paygate/bench/nullproxy"
)

const childEnv = "BENCH_RUN_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(childMain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func childMain(args []string) int {
	if len(args) > 0 && args[0] == "wrap" {
		if err := fakePaygate(args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "fake paygate:", err)
			return 1
		}
		return 0
	}
	if len(args) == 4 && args[0] == "--listen" && args[2] == "--backend" {
		target, err := url.Parse(args[3])
		if err != nil {
			return 2
		}
		hs := &http.Server{Addr: args[1], Handler: nullproxy.New(target)}
		go func() { waitSignal(); hs.Close() }()
		if err := hs.ListenAndServe(); err != http.ErrServerClosed {
			return 1
		}
		return 0
	}
	srv := &echoserver.Server{}
	if len(args) == 2 && args[0] == "--http" {
		hs := &http.Server{Addr: args[1], Handler: &echoserver.HTTPHandler{Server: srv}}
		go func() { waitSignal(); hs.Close() }()
		if err := hs.ListenAndServe(); err != http.ErrServerClosed {
			return 1
		}
		return 0
	}
	if len(args) == 1 && args[0] == "--stdio" {
		if srv.ServeStdio(os.Stdin, os.Stdout) != nil {
			return 1
		}
		return 0
	}
	fmt.Fprintln(os.Stderr, "test child: unknown arguments", args)
	return 2
}

func waitSignal() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, os.Interrupt)
	<-c
}

// fakePaygate accepts the command line the runner builds and does the
// least a gateway does: API keys (kept in the state file as JSON), the
// admin key routes, /health, and forwarding /mcp to an HTTP backend or to
// one stdio child (one call at a time).
func fakePaygate(args []string) error {
	fs := flag.NewFlagSet("wrap", flag.ContinueOnError)
	remote := fs.String("remote-url", "", "")
	server := fs.String("server", "", "")
	port := fs.Int("port", 0, "")
	adminKey := fs.String("admin-key", "", "")
	fs.Int("rate-limit", -1, "")
	state := fs.String("state-file", "", "")
	inMemory := fs.Bool("in-memory", false, "")
	fs.String("sync", "", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*remote == "") == (*server == "") || *port == 0 || *adminKey == "" || (*state == "") == !*inMemory {
		return fmt.Errorf("bad flags: %q", args)
	}
	g := &fakeGateway{adminKey: *adminKey, remote: *remote, state: *state, keys: map[string]bool{}}
	if b, err := os.ReadFile(*state); err == nil {
		if err := json.Unmarshal(b, &g.keys); err != nil {
			return err
		}
	}
	if *server != "" {
		f := strings.Fields(*server)
		cmd := exec.Command(f[0], f[1:]...)
		cmd.Stderr = os.Stderr
		in, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			return err
		}
		defer cmd.Wait()
		defer in.Close()
		g.stdin, g.stdout = in, bufio.NewReader(out)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"status":"ok"}`) })
	mux.HandleFunc("POST /keys", g.createKey)
	mux.HandleFunc("POST /mcp", g.mcp)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: mux}
	go func() { waitSignal(); hs.Close() }()
	if err := hs.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return g.save()
}

type fakeGateway struct {
	adminKey, remote, state string

	mu   sync.Mutex
	keys map[string]bool

	stdioMu sync.Mutex
	stdin   io.Writer
	stdout  *bufio.Reader
}

func (g *fakeGateway) save() error {
	if g.state == "" {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	b, _ := json.Marshal(g.keys)
	return os.WriteFile(g.state, b, 0o600)
}

func (g *fakeGateway) createKey(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Admin-Key") != g.adminKey {
		http.Error(w, "forbidden", http.StatusUnauthorized)
		return
	}
	var b [8]byte
	rand.Read(b[:])
	key := "pg_" + hex.EncodeToString(b[:])
	g.mu.Lock()
	g.keys[key] = true
	g.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `{"key":%q}`, key)
}

func (g *fakeGateway) mcp(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	ok := g.keys[r.Header.Get("X-API-Key")]
	g.mu.Unlock()
	if !ok {
		http.Error(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32402,"message":"invalid_api_key"}}`, http.StatusUnauthorized)
		return
	}
	body, _ := io.ReadAll(r.Body)
	if g.remote == "" {
		g.stdio(w, body)
		return
	}
	req, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, g.remote, bytes.NewReader(body))
	req.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for _, h := range []string{"Content-Type", "Mcp-Session-Id"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

func (g *fakeGateway) stdio(w http.ResponseWriter, body []byte) {
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
	}
	json.Unmarshal(body, &m)
	g.stdioMu.Lock()
	defer g.stdioMu.Unlock()
	g.stdin.Write(append(bytes.TrimSpace(body), '\n'))
	if len(m.ID) == 0 {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	line, err := g.stdout.ReadBytes('\n')
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if m.Method == "initialize" {
		w.Header().Set("Mcp-Session-Id", "fake-session")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(line)
}

// The runner's whole flow against the fake gateway: every scenario, with
// a small key store and short cells, in two rounds.
func TestRunnerEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(childEnv, "1") // inherited by the children the runner starts
	// Under -race, every exiting child would otherwise sleep a second.
	t.Setenv("GORACE", "atexit_sleep_ms=0")
	opt, err := parseFlags([]string{
		"--duration", "200ms", "--warmup", "0s", // no warmup: every cell measures at least one call
		"--concurrency", "2", "--keys", "250", "--rounds", "2", "--settle", "10ms",
		"--paygate", self, "--startup-timeout", "20s", "--out", t.TempDir(),
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	opt.echoBin, opt.proxyBin = self, self
	var stdout, progress bytes.Buffer
	r, err := newRunner(opt, &stdout, &progress)
	if err != nil {
		t.Fatal(err)
	}
	defer r.cleanup()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.run(ctx); err != nil {
		t.Fatalf("run: %v\nprogress:\n%s\ntable:\n%s", err, progress.String(), stdout.String())
	}

	got := map[string]*ScenarioResult{}
	for _, s := range r.report.Scenarios {
		got[s.Name] = s
		if len(s.Cells) != 2 {
			t.Fatalf("%s: %d cells, want 2 (one per round)", s.Name, len(s.Cells))
		}
		for i, c := range s.Cells {
			if c.Round != i+1 {
				t.Errorf("%s: cell %d is of round %d", s.Name, i, c.Round)
			}
			if c.Load.OK == 0 || c.Load.Errors.Total() != 0 {
				t.Errorf("%s c=%d: ok %d, errors %s", s.Name, c.Concurrency, c.Load.OK, c.Load.Errors.String())
			}
			if c.RatioToDirect == nil || c.Gateway.RSSMB <= 0 {
				t.Errorf("%s c=%d: ratio %v, RSS %.1f", s.Name, c.Concurrency, c.RatioToDirect, c.Gateway.RSSMB)
			}
			if s.Name != "direct" && (c.Backend == nil || c.Backend.RSSMB <= 0) {
				t.Errorf("%s c=%d: no backend usage (%+v)", s.Name, c.Concurrency, c.Backend)
			}
		}
		if s.Name != "direct" && (s.ColdStartMS <= 0 || s.IdleRSSMB <= 0) {
			t.Errorf("%s: cold start %.1f ms, idle RSS %.1f MB", s.Name, s.ColdStartMS, s.IdleRSSMB)
		}
	}
	if len(got) != 5 {
		t.Fatalf("scenarios %v, want 5", got)
	}
	for _, name := range []string{"http", "stdio", "keys100k"} {
		if c := got[name].Cells[0]; c.RatioToProxy == nil {
			t.Errorf("%s: no ratio to the proxy", name)
		}
	}
	k := got["keys100k"]
	if k.KeyFill == nil || k.KeyFill.Count != 250 || k.KeyFill.Method != "single" {
		t.Errorf("key fill %+v, want 250 single", k.KeyFill)
	}
	if k.Restart == nil || !k.Restart.LoadKeyWorks || k.Restart.ColdStartMS <= 0 {
		t.Errorf("restart %+v, want the load key to work", k.Restart)
	}
	for _, want := range []string{"keys100k", "×direct", "×proxy", "restart cold start", "c=2 over 2 rounds", "results: "} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
}

// A paygate that does not start fails its scenario with the reason, skips
// the other gateway scenarios, and leaves the direct numbers intact.
func TestRunnerPaygateDoesNotStart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(childEnv, "1")
	t.Setenv("GORACE", "atexit_sleep_ms=0")
	opt, err := parseFlags([]string{
		"--only", "http,stdio", "--duration", "100ms", "--warmup", "0s", "--concurrency", "1", "--settle", "0s",
		"--paygate", "/bin/false", "--out", t.TempDir(),
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	opt.echoBin = self
	var stdout, progress bytes.Buffer
	r, err := newRunner(opt, &stdout, &progress)
	if err != nil {
		t.Fatal(err)
	}
	r.opt.keep = false
	defer func() { r.failed = false; r.cleanup() }()
	err = r.run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "http, stdio") {
		t.Fatalf("run: %v, want both gateway scenarios failed", err)
	}
	sc := r.report.Scenarios
	if len(sc) != 3 || len(sc[0].Cells) != 1 || sc[0].Error != "" {
		t.Fatalf("direct did not run cleanly: %+v", sc[0])
	}
	if !strings.Contains(sc[1].Error, "paygate did not start") || !strings.Contains(sc[1].Error, "exited") {
		t.Errorf("http error %q, want the exit explained", sc[1].Error)
	}
	if !strings.Contains(sc[2].Error, "skipped") {
		t.Errorf("stdio error %q, want skipped", sc[2].Error)
	}
}
