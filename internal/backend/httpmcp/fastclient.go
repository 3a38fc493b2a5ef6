package httpmcp

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"

	"github.com/paygate/paygate/internal/backend/httpmcp/h1"
)

// reply is what a Streamable HTTP link uses of the answer to a POST, from
// the lean client (h1) or from net/http.
type reply struct {
	status  int
	ctype   string // media type, lower case
	session string // Mcp-Session-Id
	body    io.ReadCloser
	fast    *h1.Response // the body, when the lean client answered
}

// post sends one JSON-RPC message. The lean client sends it when the
// backend has one; net/http otherwise, and for good once the server
// redirected: a redirect proves the request was not processed, and
// net/http follows it (to the same origin only, see guardRedirects).
func (l *streamLink) post(ctx context.Context, body []byte, session, version string) (reply, error) {
	if f := l.b.fast; f != nil && !l.b.slow.Load() {
		r, err := f.Post(ctx, &h1.Request{SessionID: session, ProtocolVersion: version, Body: body})
		if err != nil {
			return reply{}, err
		}
		if r.Status/100 != 3 {
			return reply{status: r.Status, ctype: r.MediaType, session: r.SessionID, body: r, fast: r}, nil
		}
		r.Close()
		if l.b.slow.CompareAndSwap(false, true) {
			l.log.Info("backend redirects its POSTs; sending them through net/http", "status", r.Status)
		}
	}
	req, err := l.b.newRequest(ctx, http.MethodPost, l.b.cfg.URL, body)
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("Accept", "application/json, text/event-stream")
	setSession(req, session, version)
	resp, err := l.b.client.Do(req)
	if err != nil {
		return reply{}, err
	}
	return reply{status: resp.StatusCode, ctype: mediaType(resp), session: resp.Header.Get(hdrSession), body: resp.Body}, nil
}

// readAll reads the whole body, failing past limit bytes.
func (r *reply) readAll(limit int) ([]byte, error) {
	if r.fast != nil {
		return r.fast.ReadBody(limit)
	}
	body, err := io.ReadAll(io.LimitReader(r.body, int64(limit)+1))
	if err == nil && len(body) > limit {
		err = h1.ErrBodyTooLarge
	}
	return body, err
}

// head returns up to n bytes of the body, for error messages.
func (r *reply) head(n int) []byte {
	var b bytes.Buffer
	b.ReadFrom(io.LimitReader(r.body, int64(n)))
	return b.Bytes()
}

// statusError reads the start of the body into a StatusError.
func (r *reply) statusError() *StatusError {
	return &StatusError{Method: http.MethodPost, Code: r.status, Body: strings.TrimSpace(string(r.head(512)))}
}

// close discards the rest of the body so the connection can be reused.
func (r *reply) close() {
	if r.fast != nil {
		r.fast.Close()
		return
	}
	io.Copy(io.Discard, io.LimitReader(r.body, 64<<10))
	r.body.Close()
}
