// Command loadgen drives verified tools/call load against an MCP
// Streamable HTTP endpoint (see package bench/loadgen).
//
//	go run ./bench/cmd/loadgen --url http://127.0.0.1:8080/mcp --api-key pg_… -c 16 -d 10s
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/paygate/paygate/bench/loadgen"
)

func main() {
	var cfg loadgen.Config
	var accept, apiKey, keysFile string
	var asJSON bool
	flag.StringVar(&cfg.URL, "url", "", "MCP endpoint, e.g. http://127.0.0.1:8080/mcp (required)")
	flag.IntVar(&cfg.Concurrency, "concurrency", 1, "workers, each with one request in flight")
	flag.IntVar(&cfg.Concurrency, "c", 1, "shorthand for --concurrency")
	flag.DurationVar(&cfg.Duration, "duration", 0, "measured time (default 10s unless --requests is given)")
	flag.DurationVar(&cfg.Duration, "d", 0, "shorthand for --duration")
	flag.Int64Var(&cfg.Requests, "requests", 0, "stop after this many measured requests in total")
	flag.DurationVar(&cfg.Warmup, "warmup", 0, "unrecorded load before measuring")
	sessions := flag.Bool("sessions", true, "each worker initializes its own MCP session")
	flag.BoolVar(&cfg.Stateless, "stateless", false, "skip initialize and send no session id (same as --sessions=false)")
	flag.StringVar(&accept, "accept", "both", "Accept header: json, sse or both")
	flag.StringVar(&apiKey, "api-key", "", "API key sent as X-API-Key")
	flag.StringVar(&keysFile, "keys-file", "", "file with one API key per line; workers spread over them")
	flag.StringVar(&cfg.Tool, "tool", "echo", "tool to call")
	flag.IntVar(&cfg.ArgsSize, "args-size", 0, "pad the arguments to about `N` bytes")
	flag.BoolVar(&cfg.NoNonceCheck, "no-nonce-check", false, "do not require the reply to echo the nonce (for tools other than echo)")
	flag.DurationVar(&cfg.Timeout, "timeout", 0, "per-request timeout (default 30s)")
	flag.BoolVar(&asJSON, "json", false, "print the result as JSON")
	flag.Parse()

	if !*sessions {
		cfg.Stateless = true
	}
	if cfg.Duration == 0 && cfg.Requests == 0 {
		cfg.Duration = loadgenDefaultDuration
	}
	cfg.Accept = loadgen.Accept(accept)
	keys, err := loadKeys(apiKey, keysFile)
	if err != nil {
		fail(err)
	}
	cfg.Keys = keys

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := loadgen.Run(ctx, cfg)
	if err != nil {
		fail(err)
	}
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(res)
	} else {
		err = res.WriteText(os.Stdout)
	}
	if err != nil {
		fail(err)
	}
	if res.Errors.Mismatches > 0 {
		fmt.Fprintf(os.Stderr, "loadgen: %d wrong deliveries\n", res.Errors.Mismatches)
		os.Exit(3)
	}
}

const loadgenDefaultDuration = 10 * time.Second

func loadKeys(apiKey, keysFile string) ([]string, error) {
	var keys []string
	if apiKey != "" {
		keys = append(keys, apiKey)
	}
	if keysFile == "" {
		return keys, nil
	}
	f, err := os.Open(keysFile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k := strings.TrimSpace(sc.Text()); k != "" && !strings.HasPrefix(k, "#") {
			keys = append(keys, k)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", keysFile, err)
	}
	if len(keys) == 0 {
		return nil, errors.New(keysFile + " holds no keys")
	}
	return keys, nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "loadgen:", err)
	os.Exit(1)
}
