package httpmcp

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/backend/backendtest"
	"github.com/paygate/paygate/internal/testenv"
)

// Test counterparts: real servers in subprocesses, and a recording proxy or
// handler wrapper that shows what reached them.

// startServer runs argv (a server listening on 127.0.0.1:port) until the
// test ends and waits until it accepts connections.
func startServer(t *testing.T, port int, env []string, argv ...string) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	backendtest.Eventually(t, "the server to listen on "+addr, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// conformanceServer starts the Go SDK's everything-server in stateful
// Streamable HTTP mode and returns its base URL.
func conformanceServer(t *testing.T) string {
	port := testenv.FreePort(t)
	startServer(t, port, nil, testenv.EverythingServer(t), fmt.Sprintf("-http=127.0.0.1:%d", port), "-stateless=false")
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}

// npmEverything starts the reference everything server in mode "sse" or
// "streamableHttp" and returns its base URL.
func npmEverything(t *testing.T, mode string) string {
	bin := testenv.NPMBin(t, "mcp-server-everything")
	port := testenv.FreePort(t)
	startServer(t, port, append(testenv.NodeEnv(t), "PORT="+strconv.Itoa(port)), bin, mode)
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}

// exchange is one request a recorder saw.
type exchange struct {
	Method string
	Header http.Header
	Body   []byte
	Status int
}

// recorder wraps a handler and keeps every request and its status.
type recorder struct {
	next http.Handler
	mu   sync.Mutex
	seen []exchange
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	req.Body = io.NopCloser(bytes.NewReader(body))
	r.mu.Lock()
	i := len(r.seen)
	r.seen = append(r.seen, exchange{Method: req.Method, Header: req.Header.Clone(), Body: body})
	r.mu.Unlock()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	r.next.ServeHTTP(sw, req)
	r.mu.Lock()
	r.seen[i].Status = sw.status
	r.mu.Unlock()
}

func (r *recorder) exchanges() []exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]exchange(nil), r.seen...)
}

// upstream returns every request body the server received, in order.
func (r *recorder) upstream() []byte {
	var all []byte
	for _, e := range r.exchanges() {
		all = append(all, e.Body...)
		all = append(all, '\n')
	}
	return all
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// recordingProxy fronts target with a streaming reverse proxy that records
// what passes through, and returns the proxy's base URL.
func recordingProxy(t *testing.T, target string) (string, *recorder) {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
		FlushInterval: -1, // SSE must pass at once
		ErrorLog:      log.New(io.Discard, "", 0),
	}
	rec := &recorder{next: proxy}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	return srv.URL, rec
}

func startCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func closeOnCleanup(t *testing.T, b *Backend) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		b.Close(ctx)
	})
}
