package h1

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"time"
)

// aLongTimeAgo is a deadline in the past: setting it makes blocked and
// future reads and writes on a connection fail at once.
var aLongTimeAgo = time.Unix(1, 0)

// conn is one pooled connection. It serves one request at a time; while
// it does, only the goroutine that owns the request uses it (and the
// abort, from any goroutine).
type conn struct {
	client *Client
	nc     net.Conn
	br     *bufio.Reader
	wbuf   []byte // the request being written
	// scratch holds header lines longer than br's buffer and bodies of
	// unknown length while they are read.
	scratch []byte

	ctx       context.Context // the request's; reported when aborted
	abortFn   func()          // cn.abort, bound once
	aborted   atomic.Bool
	probe     prober // see alive
	reused    bool
	idleSince time.Time
}

// stage is how far a request got before it failed.
type stage int

const (
	stageWrite stage = iota // writing the request
	stageWait               // written; no byte of the response yet
	stageRead               // reading the response
)

// roundTrip writes req and reads the response header. On failure the
// connection is closed.
func (cn *conn) roundTrip(ctx context.Context, req *Request) (*Response, stage, error) {
	resp := &Response{cn: cn, reqSession: req.SessionID}
	cn.ctx = ctx
	if ctx.Done() != nil {
		resp.stop = context.AfterFunc(ctx, cn.abortFn)
	}
	if err := cn.write(req); err != nil {
		return nil, stageWrite, resp.fail(fmt.Errorf("%w: %w", ErrNotSent, err))
	}
	if _, err := cn.br.Peek(1); err != nil {
		return nil, stageWait, resp.fail(err)
	}
	if err := resp.readHeader(cn.client.cfg.MaxHeaderBytes); err != nil {
		return nil, stageRead, resp.fail(err)
	}
	return resp, stageRead, nil
}

// copyBodyMax is the largest body copied behind the header for a plain
// write; a larger one goes out with the header in one writev.
const copyBodyMax = 64 << 10

// write sends the request in one system call.
func (cn *conn) write(req *Request) error {
	cn.wbuf = cn.appendHeader(cn.wbuf[:0], req)
	if len(req.Body) > copyBodyMax {
		bufs := net.Buffers{cn.wbuf, req.Body}
		_, err := bufs.WriteTo(cn.nc)
		return err
	}
	cn.wbuf = append(cn.wbuf, req.Body...)
	_, err := cn.nc.Write(cn.wbuf)
	return err
}

// appendHeader renders the request header: the fixed block rendered in
// New, then the per-request fields.
func (cn *conn) appendHeader(b []byte, req *Request) []byte {
	b = append(b, cn.client.head...)
	if req.SessionID != "" {
		b = append(b, "Mcp-Session-Id: "...)
		b = append(b, req.SessionID...)
		b = append(b, "\r\n"...)
	}
	if req.ProtocolVersion != "" {
		b = append(b, "Mcp-Protocol-Version: "...)
		b = append(b, req.ProtocolVersion...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(req.Body)), 10)
	return append(b, "\r\n\r\n"...)
}

// abort makes the connection's pending and future I/O fail; it runs when
// the request's context ends.
func (cn *conn) abort() {
	cn.aborted.Store(true)
	cn.nc.SetDeadline(aLongTimeAgo)
}

// ioError is the error to report for err from the connection: the
// context's when the context aborted the I/O.
func (cn *conn) ioError(err error) error {
	if cn.aborted.Load() && cn.ctx != nil && cn.ctx.Err() != nil {
		return cn.ctx.Err()
	}
	return err
}
