package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// memConn is a net.Conn that reads from a fixed byte string; writes are
// discarded. It lets the parser run without a network.
type memConn struct {
	*bytes.Reader
}

func (memConn) Write(p []byte) (int, error)      { return len(p), nil }
func (memConn) Close() error                     { return nil }
func (memConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (memConn) SetDeadline(time.Time) error      { return nil }
func (memConn) SetReadDeadline(time.Time) error  { return nil }
func (memConn) SetWriteDeadline(time.Time) error { return nil }
func (c memConn) Read(p []byte) (int, error)     { return c.Reader.Read(p) }
func newMemConn(data []byte) (*conn, *bufio.Reader) {
	c := &Client{cfg: Config{MaxHeaderBytes: DefaultMaxHeaderBytes, MaxIdle: 1}}
	nc := memConn{bytes.NewReader(data)}
	cn := &conn{client: c, nc: nc, br: bufio.NewReaderSize(nc, 8<<10)}
	cn.abortFn = cn.abort
	return cn, cn.br
}

// parse runs the response parser over data: the header, then the whole
// body with limit.
func parse(data []byte, limit int) (*Response, []byte, error) {
	cn, _ := newMemConn(data)
	r := &Response{cn: cn, reqSession: "s1"}
	if _, err := cn.br.Peek(1); err != nil {
		return nil, nil, err
	}
	if err := r.readHeader(cn.client.cfg.MaxHeaderBytes); err != nil {
		return nil, nil, err
	}
	body, err := r.ReadBody(limit)
	return r, body, err
}

func TestParseResponse(t *testing.T) {
	long := strings.Repeat("x", 70<<10)
	tests := []struct {
		name    string
		in      string
		limit   int
		status  int
		body    string
		media   string
		session string
		reuse   bool  // the connection could carry the next request
		err     error // matched with errors.Is
	}{
		{name: "content-length", in: "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nMcp-Session-Id: s1\r\nContent-Length: 2\r\n\r\n{}",
			status: 200, body: "{}", media: MediaJSON, session: "s1", reuse: true},
		{name: "new session id", in: "HTTP/1.1 200 OK\r\nmcp-session-id: other\r\nContent-Length: 0\r\n\r\n",
			status: 200, session: "other", reuse: true},
		{name: "chunked with extensions and trailers", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: Text/Event-Stream\r\n\r\n" +
			"5;name=value\r\nhello\r\n1 ; x\r\n \r\n5\r\nworld\r\n0;last\r\nX-Trailer: 1\r\nOther: 2\r\n\r\n",
			status: 200, body: "hello world", media: MediaSSE, reuse: true},
		{name: "chunked in upper-case hex", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n",
			status: 200, body: "0123456789", reuse: true},
		{name: "informational responses skipped", in: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n",
			status: 202, reuse: true},
		{name: "bare LF line endings", in: "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", status: 200, body: "ok", reuse: true},
		{name: "no reason phrase", in: "HTTP/1.1 204\r\n\r\n", status: 204, reuse: true},
		{name: "204 ignores Content-Length", in: "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", status: 204, reuse: true},
		{name: "folded field the client ignores", in: "HTTP/1.1 200 OK\r\nX-Long: a\r\n  b\r\nContent-Length: 1\r\n\r\n1", status: 200, body: "1", reuse: true},
		{name: "same Content-Length twice", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n1", status: 200, body: "1", reuse: true},
		{name: "other media type", in: "HTTP/1.1 200 OK\r\nContent-Type: Text/HTML\r\nContent-Length: 0\r\n\r\n", status: 200, media: "text/html", reuse: true},

		{name: "connection close", in: "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 2\r\n\r\nok", status: 200, body: "ok"},
		{name: "HTTP/1.0 until close", in: "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"a\":1}", status: 200, body: `{"a":1}`, media: MediaJSON},
		{name: "HTTP/1.0 ignores Transfer-Encoding", in: "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok", status: 200, body: "2\r\nok"},
		{name: "HTTP/1.0 with length", in: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", status: 200, body: "ok"},
		{name: "HTTP/1.1 without framing", in: "HTTP/1.1 200 OK\r\n\r\nuntil the end", status: 200, body: "until the end"},
		{name: "chunked and Content-Length", in: "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", status: 200, body: "ok"},
		{name: "error status with body", in: "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy", status: 503, body: "busy", reuse: true},

		{name: "status code too short", in: "HTTP/1.1 20 OK\r\n\r\n", err: ErrMalformed},
		{name: "status code not numeric", in: "HTTP/1.1 2x0 OK\r\n\r\n", err: ErrMalformed},
		{name: "status code below 100", in: "HTTP/1.1 099 Odd\r\n\r\n", err: ErrMalformed},
		{name: "HTTP/2 status line", in: "HTTP/2.0 200 OK\r\n\r\n", err: ErrMalformed},
		{name: "not HTTP", in: "SSH-2.0-OpenSSH_9.6\r\n\r\n", err: ErrMalformed},
		{name: "header without colon", in: "HTTP/1.1 200 OK\r\nContent-Type application/json\r\n\r\n", err: ErrMalformed},
		{name: "space before colon", in: "HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\n1", err: ErrMalformed},
		{name: "empty header name", in: "HTTP/1.1 200 OK\r\n: x\r\n\r\n", err: ErrMalformed},
		{name: "conflicting Content-Length", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n12", err: ErrMalformed},
		{name: "signed Content-Length", in: "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n1", err: ErrMalformed},
		{name: "unsupported Transfer-Encoding", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", err: ErrMalformed},
		{name: "folded Content-Type", in: "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n ; charset=x\r\n\r\n", err: ErrMalformed},
		{name: "control character in session id", in: "HTTP/1.1 200 OK\r\nMcp-Session-Id: a\x00b\r\nContent-Length: 0\r\n\r\n", err: ErrMalformed},
		{name: "101 switching protocols", in: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", err: ErrMalformed},
		{name: "too many 1xx", in: strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 7) + "HTTP/1.1 200 OK\r\n\r\n", err: ErrMalformed},
		{name: "bad chunk size", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", err: ErrMalformed},
		{name: "chunk size overflow", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", err: ErrMalformed},
		{name: "chunk size line with bare LF", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nok\r\n0\r\n\r\n", err: ErrMalformed},
		{name: "chunk data without CRLF", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n0\r\n\r\n", err: ErrMalformed},
		{name: "header too large", in: "HTTP/1.1 200 OK\r\nX-Big: " + long + "\r\nContent-Length: 0\r\n\r\n", err: ErrHeaderTooLarge},
		{name: "many headers too large", in: "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-A: "+strings.Repeat("a", 1000)+"\r\n", 70) + "\r\n", err: ErrHeaderTooLarge},
		{name: "body over the limit by length", in: "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world", limit: 10, err: ErrBodyTooLarge},
		{name: "chunked body over the limit", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n", limit: 10, err: ErrBodyTooLarge},
		{name: "body cut short", in: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", err: io.ErrUnexpectedEOF},
		{name: "chunked body cut short", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", err: io.ErrUnexpectedEOF},
		{name: "header cut short", in: "HTTP/1.1 200 OK\r\nContent-Le", err: io.ErrUnexpectedEOF},
		{name: "no response at all", in: "", err: io.EOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			limit := tc.limit
			if limit == 0 {
				limit = 1 << 20
			}
			r, body, err := parse([]byte(tc.in), limit)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != tc.status || string(body) != tc.body || r.MediaType != tc.media || r.SessionID != tc.session {
				t.Errorf("got %d %q media %q session %q, want %d %q media %q session %q",
					r.Status, body, r.MediaType, r.SessionID, tc.status, tc.body, tc.media, tc.session)
			}
			if reuse := !r.close && r.eof && r.err == nil; reuse != tc.reuse {
				t.Errorf("reusable = %v, want %v", reuse, tc.reuse)
			}
		})
	}
}

// TestSessionIDNotCopied: an echoed session id is the request's string,
// not a copy.
func TestSessionIDNotCopied(t *testing.T) {
	data := []byte("HTTP/1.1 200 OK\r\nMcp-Session-Id: abc\r\nContent-Type: application/json\r\nContent-Length: 0\r\n\r\n")
	cn, _ := newMemConn(data)
	mc := cn.nc.(memConn)
	r := &Response{cn: cn, reqSession: "abc"}
	if n := testing.AllocsPerRun(10, func() {
		mc.Reset(data)
		cn.br.Reset(mc)
		if err := r.readHeader(DefaultMaxHeaderBytes); err != nil || r.SessionID != "abc" {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("header parse allocated %v times", n)
	}
}
