// Command echo is the benchmark suite's MCP backend: a minimal, fast server
// with one tool, echo, over stdio or Streamable HTTP.
//
//	go run ./bench/echo --stdio
//	go run ./bench/echo --http 127.0.0.1:8931 [--sse] [--delay 1ms]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/paygate/paygate/bench/echoserver"
)

func main() {
	stdio := flag.Bool("stdio", false, "serve newline-delimited JSON-RPC on stdin/stdout")
	addr := flag.String("http", "", "serve Streamable HTTP at `ADDR` (for example 127.0.0.1:8931), endpoint /mcp")
	sse := flag.Bool("sse", false, "HTTP: answer with SSE whenever the client accepts it")
	delay := flag.Duration("delay", 0, "sleep this long before answering each tools/call")
	flag.Parse()

	srv := &echoserver.Server{Delay: *delay}
	var err error
	switch {
	case *stdio && *addr == "":
		err = srv.ServeStdio(os.Stdin, os.Stdout)
	case *addr != "" && !*stdio:
		err = serveHTTP(srv, *addr, *sse)
	default:
		fmt.Fprintln(os.Stderr, "echo: give exactly one of --stdio and --http ADDR")
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
}

func serveHTTP(srv *echoserver.Server, addr string, sse bool) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", &echoserver.HTTPHandler{Server: srv, SSE: sse})
	hs := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(shutdown)
	}()
	fmt.Fprintf(os.Stderr, "echo: serving MCP on http://%s/mcp\n", ln.Addr())
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
