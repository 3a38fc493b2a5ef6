package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func post(t *testing.T, c *Client, body string) (*Response, []byte) {
	t.Helper()
	resp, err := c.Post(context.Background(), &Request{SessionID: "s1", ProtocolVersion: "2025-11-25", Body: []byte(body)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := resp.ReadBody(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	resp.Close()
	return resp, b
}

// countingServer is an httptest server that counts the requests its
// handler ran and answers each with its number.
func countingServer(t *testing.T, configure func(*httptest.Server)) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"n":%d}`, n.Add(1))
	}))
	if configure != nil {
		configure(srv)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &n
}

// TestRequestOnTheWire: what a server sees: the path and query, Host, the
// fixed and operator headers (not the ones the client owns), the
// per-request ones and the body.
func TestRequestOnTheWire(t *testing.T) {
	got := make(chan *http.Request, 1)
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ = io.ReadAll(r.Body)
		got <- r
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	c := newClient(t, Config{URL: srv.URL + "/mcp?tenant=a%20b", Header: map[string][]string{
		"Authorization":  {"Bearer tok"},
		"X-Multi":        {"1", " 2 "},
		"Content-Length": {"999"}, // the client's own: skipped
		"Accept":         {"text/html"},
		"User-Agent":     {"operator-agent"},
	}})
	resp, err := c.Post(context.Background(), &Request{SessionID: "sess", ProtocolVersion: "2025-06-18", Body: []byte(`{"jsonrpc":"2.0"}`)})
	if err != nil {
		t.Fatal(err)
	}
	resp.Close()
	r := <-got
	checks := []struct{ name, got, want string }{
		{"method", r.Method, "POST"},
		{"request URI", r.RequestURI, "/mcp?tenant=a%20b"},
		{"Host", r.Host, strings.TrimPrefix(srv.URL, "http://")},
		{"Content-Type", r.Header.Get("Content-Type"), "application/json"},
		{"Accept", strings.Join(r.Header.Values("Accept"), "|"), "application/json, text/event-stream"},
		{"Authorization", r.Header.Get("Authorization"), "Bearer tok"},
		{"X-Multi", strings.Join(r.Header.Values("X-Multi"), "|"), "1|2"},
		{"User-Agent", r.Header.Get("User-Agent"), "operator-agent"},
		{"Mcp-Session-Id", r.Header.Get("Mcp-Session-Id"), "sess"},
		{"Mcp-Protocol-Version", r.Header.Get("Mcp-Protocol-Version"), "2025-06-18"},
		{"Content-Length", fmt.Sprint(r.ContentLength), "17"},
		{"body", string(body), `{"jsonrpc":"2.0"}`},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %q, want %q", ck.name, ck.got, ck.want)
		}
	}
	if resp.Status != http.StatusAccepted {
		t.Errorf("status %d", resp.Status)
	}
}

// TestHeaderInjectionRefused: configured and per-request header values
// cannot smuggle CR or LF into the request.
func TestHeaderInjectionRefused(t *testing.T) {
	bad := []map[string][]string{
		{"X-A": {"ok\r\nX-Injected: 1"}},
		{"X-A": {"line\nfeed"}},
		{"Bad Name": {"v"}},
		{"X-A\r\nB": {"v"}},
		{"User-Agent": {"a\rb"}},
	}
	for _, h := range bad {
		if _, err := New(Config{URL: "http://127.0.0.1:1/mcp", Header: h}); err == nil {
			t.Errorf("New accepted %q", h)
		}
	}
	for _, u := range []string{"https://example.com/mcp", "http://user:pw@127.0.0.1/mcp", "http:///mcp", "ftp://x/"} {
		if _, err := New(Config{URL: u}); err == nil {
			t.Errorf("New accepted %s", u)
		}
	}
	c := newClient(t, Config{URL: "http://127.0.0.1:1/mcp"})
	_, err := c.Post(context.Background(), &Request{SessionID: "s\r\nX-Injected: 1", Body: []byte("{}")})
	if !errors.Is(err, ErrNotSent) {
		t.Errorf("session id with CRLF: %v, want ErrNotSent", err)
	}
	if st := c.Stats(); st.Dials != 0 {
		t.Errorf("dialed %d times for a refused request", st.Dials)
	}
}

// TestConnectionReuse: a body read to its end hands the connection back;
// Connection: close and HTTP/1.0 answers do not.
func TestConnectionReuse(t *testing.T) {
	tests := []struct {
		name      string
		reply     string
		wantDials int64
	}{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", 1},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nT: 1\r\n\r\n", 1},
		{"connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}", 3},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}", 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url := rawServer(t, func(c net.Conn, br *bufio.Reader) bool {
				n, ok := skipRequest(br)
				if !ok {
					return false
				}
				br.Discard(n)
				_, err := io.WriteString(c, tc.reply)
				return err == nil && !strings.Contains(tc.reply, "close") && !strings.HasPrefix(tc.reply, "HTTP/1.0")
			})
			c := newClient(t, Config{URL: url})
			for range 3 {
				if _, body := post(t, c, "{}"); string(body) != "{}" {
					t.Fatalf("body %q", body)
				}
			}
			if st := c.Stats(); st.Dials != tc.wantDials {
				t.Errorf("stats %+v, want %d dials", st, tc.wantDials)
			}
		})
	}
}

// TestSSEStreams: an event-stream body is handed over as it arrives, and
// the connection is kept once the stream ended.
func TestSSEStreams(t *testing.T) {
	second := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: message\ndata: {\"n\":1}\n\n")
		w.(http.Flusher).Flush()
		<-second // the client must see the first event before the second exists
		io.WriteString(w, "data: {\"n\":2}\n\n")
	}))
	defer srv.Close()
	c := newClient(t, Config{URL: srv.URL})
	resp, err := c.Post(context.Background(), &Request{Body: []byte("{}")})
	if err != nil {
		t.Fatal(err)
	}
	if resp.MediaType != MediaSSE || resp.ContentLength != -1 {
		t.Fatalf("media %q length %d", resp.MediaType, resp.ContentLength)
	}
	br := bufio.NewReader(resp)
	var lines []string
	for len(lines) < 3 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, line)
	}
	close(second)
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(lines, "") + string(rest); got != "event: message\ndata: {\"n\":1}\n\ndata: {\"n\":2}\n\n" {
		t.Errorf("stream %q", got)
	}
	resp.Close()
	if st := c.Stats(); st.Idle != 1 {
		t.Errorf("stats %+v: the connection should be back in the pool", st)
	}
}

// TestCloseKeepsAFinishedStream: a caller that stops reading a stream at
// its last event still gets the connection reused when the stream's end
// arrives promptly.
func TestCloseKeepsAFinishedStream(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: {}\n\n")
		w.(http.Flusher).Flush()
	}))
	defer srv.Close()
	c := newClient(t, Config{URL: srv.URL})
	for range 3 {
		resp, err := c.Post(context.Background(), &Request{Body: []byte("{}")})
		if err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(io.LimitReader(resp, 10)).ReadString('\n')
		if err != nil || line != "data: {}\n" {
			t.Fatalf("%q %v", line, err)
		}
		time.Sleep(50 * time.Millisecond) // the terminating chunk arrives meanwhile
		resp.Close()
	}
	if st := c.Stats(); st.Dials != 1 {
		t.Errorf("stats %+v, want one connection", st)
	}
}

// TestServerClosedIdleConnection: a server that closes idle connections
// (its keep-alive timeout) costs nothing: the closed connection is found
// before use, the request goes out on a new one, and runs exactly once.
func TestServerClosedIdleConnection(t *testing.T) {
	srv, runs := countingServer(t, func(s *httptest.Server) { s.Config.IdleTimeout = 20 * time.Millisecond })
	c := newClient(t, Config{URL: srv.URL})
	for i := range 3 {
		if _, body := post(t, c, "{}"); string(body) != fmt.Sprintf(`{"n":%d}`, i+1) {
			t.Fatalf("call %d: %s", i, body)
		}
		time.Sleep(200 * time.Millisecond) // the server closes the idle connection
	}
	if n := runs.Load(); n != 3 {
		t.Errorf("handler ran %d times for 3 calls", n)
	}
	if st := c.Stats(); st.Dials != 3 || st.Stale != 2 || st.Retries != 0 {
		t.Errorf("stats %+v, want 3 dials, 2 stale connections dropped, no retry", st)
	}
}

// resettingServer answers one request per connection and then resets the
// connection (no FIN: an RST, as a server does when it closes with unread
// data or SO_LINGER 0) once the client has parked it. It counts requests.
func resettingServer(t *testing.T) (string, *atomic.Int64) {
	var runs atomic.Int64
	url := rawServer(t, func(c net.Conn, br *bufio.Reader) bool {
		n, ok := skipRequest(br)
		if !ok {
			return false
		}
		br.Discard(n)
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{\"n\":%d}", runs.Add(1))
		time.Sleep(20 * time.Millisecond)
		c.(*net.TCPConn).SetLinger(0)
		return false
	})
	return url, &runs
}

// TestWriteOnResetConnectionRetried: when the idle check is off (or the
// server closes just after it), writing on a reset connection fails: the
// request cannot have reached the server, so it is sent once more on a new
// connection, and runs exactly once.
func TestWriteOnResetConnectionRetried(t *testing.T) {
	url, runs := resettingServer(t)
	c := newClient(t, Config{URL: url, ProbeAfter: -1})
	post(t, c, "{}")
	time.Sleep(200 * time.Millisecond) // the reset arrives
	if _, body := post(t, c, "{}"); string(body) != `{"n":2}` {
		t.Fatalf("second call: %s", body)
	}
	if n := runs.Load(); n != 2 {
		t.Errorf("server ran %d requests for 2 calls", n)
	}
	if st := c.Stats(); st.Retries != 1 || st.Dials != 2 {
		t.Errorf("stats %+v, want one retry on a second connection", st)
	}
}

// TestWrittenRequestNeverResent: a server that read the request and then
// closed the connection without answering may have acted on it. The
// client reports the failure (not ErrNotSent) and does not send it again,
// even on a reused connection.
func TestWrittenRequestNeverResent(t *testing.T) {
	var runs atomic.Int64
	url := rawServer(t, func(c net.Conn, br *bufio.Reader) bool {
		n, ok := skipRequest(br)
		if !ok {
			return false
		}
		br.Discard(n)
		if runs.Add(1) == 2 {
			return false // ran it, then the process "died"
		}
		_, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
		return err == nil
	})
	c := newClient(t, Config{URL: url})
	post(t, c, "{}")
	_, err := c.Post(context.Background(), &Request{Body: []byte("{}")})
	if err == nil || errors.Is(err, ErrNotSent) {
		t.Fatalf("err = %v, want a failure that is not ErrNotSent", err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := runs.Load(); n != 2 {
		t.Errorf("server ran %d requests, want 2", n)
	}
	if st := c.Stats(); st.Retries != 0 || st.Reuses != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestDialFailureNotSent: a refused connection means the request never
// left.
func TestDialFailureNotSent(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c := newClient(t, Config{URL: "http://" + addr + "/mcp"})
	if _, err := c.Post(context.Background(), &Request{Body: []byte("{}")}); !errors.Is(err, ErrNotSent) {
		t.Fatalf("err = %v, want ErrNotSent", err)
	}
}

// TestCancellation: the context ending aborts a request waiting for its
// answer and a body in the middle of arriving; the error is the context's
// and the connection is not reused.
func TestCancellation(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("slow-header") {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, "0123456789")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer func() {
		close(release)
		srv.Close()
	}()

	t.Run("waiting for the header", func(t *testing.T) {
		c := newClient(t, Config{URL: srv.URL + "/?slow-header"})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := c.Post(ctx, &Request{Body: []byte("{}")})
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
			t.Fatalf("err = %v after %v", err, time.Since(start))
		}
		if st := c.Stats(); st.Idle != 0 {
			t.Errorf("stats %+v: an aborted connection was pooled", st)
		}
	})
	t.Run("mid-body", func(t *testing.T) {
		c := newClient(t, Config{URL: srv.URL})
		ctx, cancel := context.WithCancel(context.Background())
		resp, err := c.Post(ctx, &Request{Body: []byte("{}")})
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 10)
		if _, err := io.ReadFull(resp, buf); err != nil {
			t.Fatal(err)
		}
		time.AfterFunc(20*time.Millisecond, cancel)
		start := time.Now()
		_, err = resp.Read(buf)
		if !errors.Is(err, context.Canceled) || time.Since(start) > 2*time.Second {
			t.Fatalf("err = %v after %v", err, time.Since(start))
		}
		resp.Close()
		if st := c.Stats(); st.Idle != 0 {
			t.Errorf("stats %+v: an aborted connection was pooled", st)
		}
	})
}

// TestConcurrentPosts: many goroutines share the pool; every answer is
// its own request's.
func TestConcurrentPosts(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Query().Has("chunked") {
			w.(http.Flusher).Flush()
		}
		w.Write(b)
	}))
	defer srv.Close()
	c := newClient(t, Config{URL: srv.URL, MaxIdle: 4})
	errc := make(chan error, 16)
	for g := range 16 {
		go func() {
			for i := range 50 {
				want := fmt.Sprintf(`{"g":%d,"i":%d}`, g, i)
				resp, err := c.Post(context.Background(), &Request{Body: []byte(want)})
				if err != nil {
					errc <- err
					return
				}
				got, err := resp.ReadBody(1 << 10)
				resp.Close()
				if err != nil || !bytes.Equal(got, []byte(want)) {
					errc <- fmt.Errorf("got %q (%v), want %q", got, err, want)
					return
				}
			}
			errc <- nil
		}()
	}
	for range 16 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if st := c.Stats(); st.Idle > 4 {
		t.Errorf("stats %+v: more idle connections than MaxIdle", st)
	}
}

// TestLargeBodies: a request body past copyBodyMax goes out with writev;
// large replies arrive intact with a length or chunked.
func TestLargeBodies(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Query().Has("chunked") {
			w.(http.Flusher).Flush()
		} else {
			w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		}
		w.Write(b)
	}))
	defer srv.Close()
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	for _, q := range []string{"", "?chunked"} {
		c := newClient(t, Config{URL: srv.URL + q})
		for range 2 {
			resp, err := c.Post(context.Background(), &Request{Body: big})
			if err != nil {
				t.Fatal(err)
			}
			got, err := resp.ReadBody(2 << 20)
			resp.Close()
			if err != nil || !bytes.Equal(got, big) {
				t.Fatalf("%s: %d bytes back (%v)", q, len(got), err)
			}
		}
		if st := c.Stats(); st.Dials != 1 {
			t.Errorf("%s: stats %+v", q, st)
		}
	}
}
