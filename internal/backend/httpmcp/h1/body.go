package h1

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"
)

// finishWait is how long Close waits for the end of a body the caller
// stopped reading (an SSE stream whose response has arrived): servers end
// such a stream right after the response, and a connection whose body
// ended cleanly can be reused.
const finishWait = 2 * time.Millisecond

// maxFinish bounds what Close reads of an unread body to keep the
// connection.
const maxFinish = 64 << 10

var errReadAfterClose = errors.New("h1: read after Close")

// Read reads the body: the bytes Content-Length announced, the chunks of
// a chunked body (extensions and trailers are read and dropped), or
// everything up to the server's close.
func (r *Response) Read(p []byte) (int, error) {
	switch {
	case r.eof:
		return 0, io.EOF
	case r.err != nil:
		return 0, r.err
	case r.cn == nil:
		return 0, errReadAfterClose
	case len(p) == 0:
		return 0, nil
	}
	var n int
	var err error
	switch {
	case r.chunked:
		n, err = r.readChunked(p)
	case r.untilEOF:
		n, err = r.cn.br.Read(p)
		if err == io.EOF {
			r.eof = true
		}
	default:
		n, err = r.cn.br.Read(p[:min(int64(len(p)), r.remain)])
		r.remain -= int64(n)
		if r.remain == 0 {
			r.eof = true
		} else if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
	}
	if err != nil && err != io.EOF {
		r.err = r.cn.ioError(err)
		return n, r.err
	}
	return n, err
}

// readChunked reads chunk data, parsing chunk headers as it reaches them.
func (r *Response) readChunked(p []byte) (int, error) {
	for r.remain == 0 {
		if r.needCRLF {
			if err := r.readCRLF(); err != nil {
				return 0, err
			}
			r.needCRLF = false
		}
		size, err := r.readChunkSize()
		if err != nil {
			return 0, err
		}
		if size == 0 {
			if err := r.readTrailer(); err != nil {
				return 0, err
			}
			r.eof = true
			return 0, io.EOF
		}
		r.remain = size
	}
	n, err := r.cn.br.Read(p[:min(int64(len(p)), r.remain)])
	r.remain -= int64(n)
	if r.remain == 0 {
		r.needCRLF = true
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// readChunkSize reads "hex-size[;extensions]CRLF".
func (r *Response) readChunkSize() (int64, error) {
	line, err := r.cn.br.ReadSlice('\n')
	switch {
	case err == io.EOF:
		return 0, io.ErrUnexpectedEOF
	case err == bufio.ErrBufferFull:
		return 0, fmt.Errorf("%w: chunk header too long", ErrMalformed)
	case err != nil:
		return 0, err
	case len(line) < 3 || line[len(line)-2] != '\r':
		return 0, fmt.Errorf("%w: bad chunk header %q", ErrMalformed, truncate(line))
	}
	line = line[:len(line)-2]
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimRight(line, " \t")
	if len(line) == 0 || len(line) > 15 {
		return 0, fmt.Errorf("%w: bad chunk size", ErrMalformed)
	}
	var n int64
	for _, c := range line {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, fmt.Errorf("%w: bad chunk size", ErrMalformed)
		}
		n = n<<4 | int64(c)
	}
	return n, nil
}

// readCRLF reads the CRLF that ends a chunk's data.
func (r *Response) readCRLF() error {
	b, err := r.cn.br.Peek(2)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	if b[0] != '\r' || b[1] != '\n' {
		return fmt.Errorf("%w: chunk data not followed by CRLF", ErrMalformed)
	}
	r.cn.br.Discard(2)
	return nil
}

// readTrailer reads the trailer fields after the last chunk, up to the
// empty line, and drops them.
func (r *Response) readTrailer() error {
	budget := r.cn.client.cfg.MaxHeaderBytes
	for {
		line, err := r.cn.readLine(&budget)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			return nil
		}
	}
}

// ReadBody reads the whole body into a new slice of its own (callers keep
// it), failing with ErrBodyTooLarge past limit bytes. A body of known
// length is read in one allocation; any other is gathered in the
// connection's scratch buffer first.
func (r *Response) ReadBody(limit int) ([]byte, error) {
	if r.cn == nil {
		return nil, errReadAfterClose
	}
	if r.ContentLength > int64(limit) {
		r.err = ErrBodyTooLarge
		return nil, r.err
	}
	if r.ContentLength >= 0 {
		b := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	buf := r.cn.scratch[:0]
	defer func() { r.cn.scratch = buf[:0] }()
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, max(4<<10, len(buf)))...)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > limit {
			r.err = ErrBodyTooLarge
			return nil, r.err
		}
		if err == io.EOF {
			return bytes.Clone(buf), nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// Close releases the connection: back to the pool when the body was read
// to its end (or its end arrives within a moment) and the connection may
// be reused, closed otherwise. The Response must not be read afterwards.
func (r *Response) Close() error {
	cn := r.cn
	if cn == nil {
		return nil
	}
	reuse := !r.close && r.err == nil
	if r.stop != nil && !r.stop() {
		reuse = false // the context ended: the abort ran or is running
	}
	if reuse && !r.eof {
		reuse = r.finish()
	}
	r.cn = nil
	if reuse {
		cn.client.put(cn)
	} else {
		cn.nc.Close()
	}
	return nil
}

// finish reads what is left of the body if it arrives within finishWait,
// and reports whether the body ended cleanly.
func (r *Response) finish() bool {
	cn := r.cn
	if cn.nc.SetReadDeadline(time.Now().Add(finishWait)) != nil {
		return false
	}
	if cap(cn.scratch) < 4<<10 {
		cn.scratch = make([]byte, 0, 4<<10)
	}
	buf := cn.scratch[:cap(cn.scratch)]
	for total := 0; !r.eof && r.err == nil && total <= maxFinish; {
		n, _ := r.Read(buf)
		total += n
	}
	return r.eof && cn.nc.SetReadDeadline(time.Time{}) == nil
}

// fail ends a round trip that went wrong: the connection is closed, and
// the error is the context's when the context aborted it.
func (r *Response) fail(err error) error {
	if r.stop != nil {
		r.stop()
	}
	err = r.cn.ioError(err)
	r.cn.nc.Close()
	r.cn = nil
	return err
}
