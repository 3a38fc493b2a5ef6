package h1

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
)

// Media types the response parser names without allocating.
const (
	MediaJSON = "application/json"
	MediaSSE  = "text/event-stream"
)

// max1xx bounds the informational responses skipped before the final one.
const max1xx = 5

// Response is the answer to a Post. Its body is read with Read (or
// ReadBody); Close releases the connection, to the pool when the body was
// read to its end and the connection may be reused, and is safe to call
// more than once.
type Response struct {
	Status int
	// MediaType is Content-Type without parameters, in lower case:
	// MediaJSON, MediaSSE, another type, or "" when there is none.
	MediaType string
	SessionID string // Mcp-Session-Id; "" when absent
	// ContentLength is the body's length, or -1 when it is chunked or
	// ends with the connection.
	ContentLength int64

	cn         *conn
	stop       func() bool // unregisters the abort on the request's context
	reqSession string      // the request's session id, reused when echoed

	chunked  bool
	untilEOF bool  // the body ends when the server closes the connection
	remain   int64 // bytes left in the current chunk, or in the body
	needCRLF bool  // a chunk's data was read; its CRLF comes next
	eof      bool  // the body was read to its end
	close    bool  // the connection may not be reused
	err      error // the first error reading the body
}

// readHeader parses the status line and the header fields, skipping
// informational (1xx) responses, and sets up the body's framing.
func (r *Response) readHeader(maxBytes int) error {
	budget := maxBytes
	for n1xx := 0; ; n1xx++ {
		if err := r.readOneHeader(&budget); err != nil {
			return err
		}
		if r.Status >= 200 || r.Status == 101 {
			break
		}
		if n1xx == max1xx {
			return fmt.Errorf("%w: too many 1xx responses", ErrMalformed)
		}
	}
	if r.Status == 101 {
		return fmt.Errorf("%w: unexpected 101 Switching Protocols", ErrMalformed)
	}
	if r.Status == 204 || r.Status == 304 {
		r.chunked, r.untilEOF, r.ContentLength = false, false, 0
	}
	switch {
	case r.chunked:
		if r.ContentLength >= 0 {
			// Both framings: chunked wins, and the connection is not to be
			// trusted afterwards (RFC 9112 §6.3).
			r.close = true
		}
		r.ContentLength = -1
	case r.ContentLength >= 0:
		r.remain = r.ContentLength
		r.eof = r.remain == 0
	default:
		r.untilEOF, r.close = true, true
	}
	return nil
}

// fields the parser acts on.
type field int

const (
	fieldOther field = iota
	fieldContentLength
	fieldTransferEncoding
	fieldConnection
	fieldContentType
	fieldSession
)

func fieldOf(name []byte) field {
	switch len(name) {
	case 10:
		if equalFold(name, "connection") {
			return fieldConnection
		}
	case 12:
		if equalFold(name, "content-type") {
			return fieldContentType
		}
	case 14:
		switch {
		case equalFold(name, "content-length"):
			return fieldContentLength
		case equalFold(name, "mcp-session-id"):
			return fieldSession
		}
	case 17:
		if equalFold(name, "transfer-encoding") {
			return fieldTransferEncoding
		}
	}
	return fieldOther
}

// readOneHeader parses one response's status line and fields.
func (r *Response) readOneHeader(budget *int) error {
	r.ContentLength, r.chunked, r.close, r.MediaType, r.SessionID = -1, false, false, "", ""
	line, err := r.cn.readLine(budget)
	if err != nil {
		return err
	}
	var minor byte
	if minor, r.Status, err = parseStatusLine(line); err != nil {
		return err
	}
	r.close = minor == '0'
	sawTE, last := false, fieldOther
	for {
		line, err := r.cn.readLine(budget)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			return nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			// obs-fold: a continuation of the previous field. Harmless for
			// fields the client ignores; the ones it reads are never folded.
			if last != fieldOther {
				return fmt.Errorf("%w: folded header field", ErrMalformed)
			}
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !validNameBytes(line[:colon]) {
			return fmt.Errorf("%w: bad header line %q", ErrMalformed, truncate(line))
		}
		value := bytes.Trim(line[colon+1:], " \t")
		last = fieldOf(line[:colon])
		switch last {
		case fieldContentLength:
			n, ok := parseLength(value)
			if !ok || r.ContentLength >= 0 && n != r.ContentLength {
				return fmt.Errorf("%w: bad Content-Length %q", ErrMalformed, truncate(value))
			}
			r.ContentLength = n
		case fieldTransferEncoding:
			if minor == '0' {
				continue // not HTTP/1.0's: the body ends with the connection (as in net/http)
			}
			if sawTE || !equalFold(value, "chunked") {
				return fmt.Errorf("%w: unsupported Transfer-Encoding %q", ErrMalformed, truncate(value))
			}
			sawTE, r.chunked = true, true
		case fieldConnection:
			if hasToken(value, "close") {
				r.close = true
			}
		case fieldContentType:
			r.MediaType = mediaType(value)
		case fieldSession:
			if !validValue(string(value)) {
				return fmt.Errorf("%w: bad Mcp-Session-Id", ErrMalformed)
			}
			if string(value) == r.reqSession {
				r.SessionID = r.reqSession
			} else {
				r.SessionID = string(value)
			}
		}
	}
}

// parseStatusLine reads "HTTP/1.x NNN reason" and returns x and NNN.
func parseStatusLine(line []byte) (minor byte, code int, err error) {
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || line[8] != ' ' ||
		(line[7] != '0' && line[7] != '1') || (len(line) > 12 && line[12] != ' ') {
		return 0, 0, fmt.Errorf("%w: bad status line %q", ErrMalformed, truncate(line))
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return 0, 0, fmt.Errorf("%w: bad status line %q", ErrMalformed, truncate(line))
		}
		code = code*10 + int(c-'0')
	}
	if code < 100 {
		return 0, 0, fmt.Errorf("%w: bad status code %d", ErrMalformed, code)
	}
	return line[7], code, nil
}

// readLine returns the next line without its line ending (CRLF, or LF as
// RFC 9112 §2.2 allows), charging it to budget. The line is valid until
// the next read.
func (cn *conn) readLine(budget *int) ([]byte, error) {
	line, err := cn.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		// A line longer than the read buffer: gather it in scratch.
		buf := append(cn.scratch[:0], line...)
		for err == bufio.ErrBufferFull && len(buf) <= *budget {
			line, err = cn.br.ReadSlice('\n')
			buf = append(buf, line...)
		}
		cn.scratch, line = buf, buf
	}
	if *budget -= len(line); *budget < 0 {
		return nil, ErrHeaderTooLarge
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// parseLength parses a Content-Length value: decimal digits only.
func parseLength(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// mediaType returns Content-Type's media type in lower case, without
// allocating for the two types MCP uses.
func mediaType(v []byte) string {
	if i := bytes.IndexByte(v, ';'); i >= 0 {
		v = v[:i]
	}
	v = bytes.TrimRight(v, " \t")
	switch {
	case equalFold(v, MediaJSON):
		return MediaJSON
	case equalFold(v, MediaSSE):
		return MediaSSE
	}
	return strings.ToLower(string(v))
}

// hasToken reports whether the comma-separated list v holds token.
func hasToken(v []byte, token string) bool {
	for len(v) > 0 {
		var t []byte
		t, v, _ = bytes.Cut(v, []byte(","))
		if equalFold(bytes.Trim(t, " \t"), token) {
			return true
		}
	}
	return false
}

// equalFold compares ASCII case-insensitively.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func validNameBytes(b []byte) bool {
	for _, c := range b {
		if !isTokenChar(c) {
			return false
		}
	}
	return len(b) > 0
}

func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
