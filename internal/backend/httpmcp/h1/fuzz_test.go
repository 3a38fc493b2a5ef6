package h1

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"testing"
)

// FuzzReadResponse feeds arbitrary bytes to the response parser. It must
// never panic, never return a body past the limit, and, whenever net/http
// also accepts the same bytes as a final response, agree with it on the
// status and the body. The seed corpus is in testdata/fuzz.
func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nTrailer: x\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nuntil close",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"HTTP/1.1 404 Not Found\nX-Folded: a\n b\nContent-Length: 0\n\n",
	} {
		f.Add([]byte(s))
	}
	const limit = 1 << 16
	f.Fuzz(func(t *testing.T, data []byte) {
		r, body, err := parse(data, limit)
		if err != nil {
			return
		}
		if len(body) > limit {
			t.Fatalf("body of %d bytes past the limit", len(body))
		}
		if r.Status < 200 || r.Status > 999 {
			t.Fatalf("final status %d", r.Status)
		}
		want, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), nil)
		if err != nil || want.StatusCode < 200 {
			return // net/http refuses it, or stops at a 1xx the client skips
		}
		wantBody, err := io.ReadAll(io.LimitReader(want.Body, limit+1))
		if err != nil {
			return
		}
		if want.StatusCode != r.Status || !bytes.Equal(wantBody, body) {
			t.Fatalf("h1: %d %q; net/http: %d %q", r.Status, body, want.StatusCode, wantBody)
		}
	})
}
