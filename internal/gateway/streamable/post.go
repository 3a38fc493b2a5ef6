package streamable

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paygate/paygate/internal/mcp"
)

// respMode is how a POST's response is written, from its Accept header.
type respMode uint8

const (
	modeJSON respMode = iota // one JSON body: Accept application/json, */* or none
	modeSSE                  // an event stream from the start: Accept text/event-stream (both, by default)
	modeLazy                 // JSON unless a related message comes before the response: both, with PreferJSON
)

// servePOST handles client messages: requests are answered on the
// response, notifications and responses get 202.
func (s *Server) servePOST(w http.ResponseWriter, r *http.Request) {
	mode, herr := postMode(r, s.opts.PreferJSON)
	if herr != nil {
		herr.write(w)
		return
	}
	var sess *Session
	if id := r.Header.Get(HeaderSessionID); id != "" {
		if sess = s.acquire(id); sess == nil {
			writeError(w, http.StatusNotFound, nil, codeSessionNotFound, "session not found")
			return
		}
		defer sess.release()
		if msg, ok := checkSessionVersion(r, sess); !ok {
			writeError(w, http.StatusBadRequest, nil, mcp.CodeInvalidRequest, msg)
			return
		}
	}
	in, herr := s.readPOST(w, r, sess)
	if herr != nil {
		herr.write(w)
		return
	}
	if in.init != nil {
		if sess, herr = s.openSession(in.init); herr != nil {
			herr.write(w)
			return
		}
		defer sess.release()
	}

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	var p *post
	if in.requests > 0 {
		p = newPost(s, sess, in.init != nil, mode, in.batch, in.requests)
	}
	// Messages are taken in body order: notifications and responses
	// synchronously, requests each on a goroutine of its own.
	i := 0
	for _, m := range in.msgs {
		switch {
		case m.IsRequest():
			ex := p.exchange(m, i, r)
			s.workers.run(func() { s.handle(ctx, ex) })
			i++
		case m.IsNotification():
			s.h.HandleNotification(ctx, sess, r, m)
		default:
			s.h.HandleResponse(ctx, sess, r, m)
		}
	}
	if p == nil {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	p.serve(ctx, w)
}

// httpError is a refusal written as an HTTP status with a JSON-RPC error
// body.
type httpError struct {
	status int
	id     mcp.ID
	code   int64
	msg    string
}

func (e *httpError) write(w http.ResponseWriter) { writeError(w, e.status, e.id, e.code, e.msg) }

func badRequest(id mcp.ID, msg string) *httpError {
	return &httpError{http.StatusBadRequest, id, mcp.CodeInvalidRequest, msg}
}

// postMode checks a POST's Content-Type and picks the response mode from
// its Accept header.
func postMode(r *http.Request, preferJSON bool) (respMode, *httpError) {
	if ct := r.Header.Get("Content-Type"); ct != "application/json" && !isJSONMediaType(ct) {
		return 0, &httpError{http.StatusUnsupportedMediaType, nil, mcp.CodeInvalidRequest, "Content-Type must be application/json"}
	}
	switch jsonOK, sseOK := parseAccept(r.Header.Values("Accept")); {
	case jsonOK && sseOK && preferJSON:
		return modeLazy, nil
	case sseOK:
		return modeSSE, nil
	case jsonOK:
		return modeJSON, nil
	}
	return 0, &httpError{http.StatusNotAcceptable, nil, mcp.CodeInvalidRequest, "Accept must list application/json or text/event-stream"}
}

// inbound is the decoded body of a POST.
type inbound struct {
	msgs     []*mcp.Message
	batch    bool
	requests int          // how many of msgs are requests
	init     *mcp.Message // the initialize request, if the body is one
}

// readPOST reads and decodes a POST body and applies the rules on its
// shape: batches only where the revision has them, initialize alone and
// outside a session.
func (s *Server) readPOST(w http.ResponseWriter, r *http.Request, sess *Session) (*inbound, *httpError) {
	body, herr := s.readBody(w, r)
	if herr != nil {
		return nil, herr
	}
	msgs, errs, isBatch, err := mcp.DecodeBatch(body)
	if err == nil {
		for i, e := range errs {
			if e != nil {
				err = fmt.Errorf("message %d: %w", i, e)
				break
			}
		}
	}
	if err != nil {
		if errors.Is(err, mcp.ErrParse) {
			return nil, &httpError{http.StatusBadRequest, nil, mcp.CodeParseError, err.Error()}
		}
		return nil, badRequest(nil, err.Error())
	}
	in := &inbound{msgs: msgs, batch: isBatch}
	for _, m := range msgs {
		if m.IsRequest() {
			in.requests++
		}
		if m.Method == mcp.MethodInitialize {
			in.init = m
		}
	}

	version := mcp.DefaultHTTPVersion
	switch init := in.init; {
	case init != nil && isBatch:
		return nil, badRequest(nil, "initialize must not be part of a batch")
	case init != nil && !init.IsRequest():
		return nil, badRequest(nil, "initialize must be a request with an id")
	case init != nil && sess != nil:
		return nil, badRequest(init.ID, "initialize must be sent without "+HeaderSessionID)
	case sess != nil:
		version = sess.version
	case init == nil:
		var ok bool
		if version, ok = statelessVersion(r.Header.Get(HeaderProtocolVersion)); !ok {
			return nil, badRequest(nil, unsupportedVersion(r))
		}
	}
	if isBatch && !mcp.BatchesAllowed(version) {
		return nil, badRequest(nil, "batches are not supported in protocol revision "+version)
	}
	return in, nil
}

// openSession creates the session of an initialize request, acquired.
func (s *Server) openSession(init *mcp.Message) (*Session, *httpError) {
	params, err := parseInitParams(init.Params)
	if err != nil {
		return nil, &httpError{http.StatusBadRequest, init.ID, mcp.CodeInvalidParams, "invalid initialize params: " + err.Error()}
	}
	sess, err := s.newSession(params)
	if err != nil {
		return nil, &httpError{http.StatusServiceUnavailable, init.ID, mcp.CodeServiceUnavailable, "cannot open a session: " + err.Error()}
	}
	return sess, nil
}

// handle runs one request; a panicking handler answers -32603 instead of
// taking the process down.
func (s *Server) handle(ctx context.Context, ex *Exchange) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("handler panicked", "method", ex.Msg.Method, "panic", v, "stack", string(debug.Stack()))
			ex.ReplyError(&mcp.WireError{Code: mcp.CodeInternalError, Message: "internal error"})
		}
	}()
	s.h.HandleRequest(ctx, ex)
}

func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *httpError) {
	limit := s.opts.MaxBodyBytes
	if r.ContentLength > limit {
		return nil, &httpError{http.StatusRequestEntityTooLarge, nil, mcp.CodeInvalidRequest, tooLarge(limit)}
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit)); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, &httpError{http.StatusRequestEntityTooLarge, nil, mcp.CodeInvalidRequest, tooLarge(limit)}
		}
		return nil, badRequest(nil, "reading body: "+err.Error())
	}
	return buf.Bytes(), nil
}

func tooLarge(limit int64) string {
	return "request body exceeds " + strconv.FormatInt(limit, 10) + " bytes"
}

// parseAccept reports whether an Accept header admits a JSON body and an
// event stream. A missing header and */* mean JSON: curl users get plain
// answers. Types with q=0 are refused types and ignored.
func parseAccept(values []string) (jsonOK, sseOK bool) {
	// What MCP clients send, answered without parsing.
	if len(values) == 1 {
		switch values[0] {
		case "application/json, text/event-stream", "text/event-stream, application/json":
			return true, true
		case "application/json", "*/*":
			return true, false
		case "text/event-stream":
			return false, true
		}
	}
	seen := false
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			seen = true
			if qs, ok := params["q"]; ok {
				if q, err := strconv.ParseFloat(qs, 64); err == nil && q == 0 {
					continue
				}
			}
			switch mt {
			case "application/json", "application/*", "*/*":
				jsonOK = true
			case "text/event-stream", "text/*":
				sseOK = true
			}
		}
	}
	if !seen {
		jsonOK = true
	}
	return jsonOK, sseOK
}

// checkSessionVersion validates the MCP-Protocol-Version header of a
// request on a session: absent or any supported revision. The spec only
// requires refusing invalid or unsupported values; clients (the MCP
// conformance suite among them) may send an older supported revision on a
// session negotiated at a newer one, and the session's revision still
// governs the request.
func checkSessionVersion(r *http.Request, sess *Session) (string, bool) {
	v := r.Header.Get(HeaderProtocolVersion)
	if v == "" || v == sess.version || mcp.IsSupportedVersion(v) {
		return "", true
	}
	return unsupportedVersion(r), false
}

// statelessVersion returns the revision of a request outside any session:
// its MCP-Protocol-Version header, 2025-03-26 when absent. A well-formed
// revision newer than paygate's latest passes through: such a client may be
// probing with server/discover, which is the handler's to answer.
func statelessVersion(v string) (string, bool) {
	switch {
	case v == "":
		return mcp.DefaultHTTPVersion, true
	case mcp.IsSupportedVersion(v):
		return v, true
	case v > mcp.LatestVersion && isRevision(v):
		return v, true
	}
	return "", false
}

func isRevision(v string) bool {
	_, err := time.Parse(time.DateOnly, v)
	return err == nil
}

func unsupportedVersion(r *http.Request) string {
	return fmt.Sprintf("unsupported %s %s (supported: %s)", HeaderProtocolVersion,
		quote(r.Header.Get(HeaderProtocolVersion)), strings.Join(mcp.SupportedVersions, ", "))
}

// post is the response to one POST that carries requests. The serving
// goroutine writes it; the exchanges feed it from handler goroutines.
type post struct {
	srv     *Server
	sess    *Session // nil: stateless
	newSess bool     // the POST is initialize and created sess
	mode    respMode
	batch   bool
	firstID mcp.ID  // id of the first request, for error bodies of a single request
	me      *writer // the serving goroutine; its wake is signalled on every change

	mu         sync.Mutex
	header     http.Header // headers staged by the exchanges
	replies    [][]byte    // JSON mode: the response of each request, in request order
	pending    int         // requests not answered yet
	st         *stream     // the event stream once the response is SSE
	started    bool        // the SSE headers are out; later headers are dropped
	gone       bool        // the HTTP response is over
	initFailed bool        // initialize was answered with an error
}

func newPost(s *Server, sess *Session, newSess bool, mode respMode, batch bool, n int) *post {
	p := &post{srv: s, sess: sess, newSess: newSess, mode: mode, batch: batch, me: newWriter(),
		replies: make([][]byte, n), pending: n}
	if mode == modeSSE {
		p.startSSELocked() // not shared yet
	}
	return p
}

func (p *post) exchange(m *mcp.Message, i int, r *http.Request) *Exchange {
	if i == 0 {
		p.firstID = m.ID
	}
	ex := &Exchange{Msg: m, Session: p.sess, Request: r, Header: make(http.Header)}
	ex.impl = &postExchange{p: p, ex: ex, idx: i, init: m.Method == mcp.MethodInitialize}
	return ex
}

// startSSELocked turns the response into an event stream: responses that
// have already arrived become its first events.
func (p *post) startSSELocked() {
	st := newStream(0, p.sess != nil, p.srv.opts.EventBufferSize)
	st.w = p.me
	if p.sess != nil {
		p.sess.addStream(st)
	}
	for _, rep := range p.replies {
		if rep != nil {
			_, _ = st.append(rep, true)
		}
	}
	p.replies = nil
	p.st = st
}

// stageLocked records an exchange's response headers; later values of the
// same header win. Once the response has started streaming its headers are
// being written (from p.header, not copied), so later ones are dropped.
func (p *post) stageLocked(h http.Header) {
	if len(h) == 0 || p.started {
		return
	}
	if p.header == nil && !p.batch {
		// The only exchange replied: the handler is done with its headers
		// (Exchange.Header is not touched after Reply), so they are taken
		// over rather than copied.
		p.header = h
		return
	}
	if p.header == nil {
		p.header = make(http.Header, len(h))
	}
	for k, v := range h {
		p.header[k] = slices.Clone(v)
	}
}

// serve waits for the responses and writes them: as one JSON body, or as
// an event stream once the response has switched to SSE.
func (p *post) serve(ctx context.Context, w http.ResponseWriter) {
	var sessDone <-chan struct{}
	if p.sess != nil {
		sessDone = p.sess.doneChan()
	}
	for {
		p.mu.Lock()
		// Per the Exchange contract, streaming starts with the first event:
		// an SSE-only response waits for it, so the handler's headers make it.
		if p.st != nil && (p.mode != modeSSE || p.st.size() > 0) {
			hdr := p.header
			if p.batch {
				hdr = hdr.Clone() // later replies of the batch keep staging into it
			}
			p.started = true
			p.mu.Unlock()
			p.serveSSE(ctx, w, hdr, sessDone)
			return
		}
		if p.pending == 0 {
			body, hdr, failed := p.jsonBodyLocked(), p.header, p.initFailed
			p.gone = true
			p.mu.Unlock()
			p.writeJSON(w, hdr, body, failed)
			if failed {
				p.srv.endSession(p.sess)
			}
			return
		}
		p.mu.Unlock()
		select {
		case <-p.me.wake:
		case <-ctx.Done():
			p.abandon()
			return
		case <-sessDone:
			p.abandon()
			writeError(w, http.StatusNotFound, p.errorID(), codeSessionNotFound, "session ended")
			return
		case <-p.srv.done:
			p.abandon()
			writeError(w, http.StatusServiceUnavailable, p.errorID(), mcp.CodeServiceUnavailable, "server is shutting down")
			return
		}
	}
}

// abandon ends a response before anything was written. A session this
// initialize created is dropped: its client never learned the id; so is an
// SSE-only stream whose id no client has seen.
func (p *post) abandon() {
	p.mu.Lock()
	p.gone = true
	st := p.st
	p.mu.Unlock()
	if st != nil {
		st.detach(p.me)
		st.end()
		if p.sess != nil {
			p.sess.removeStream(st)
		}
	}
	if p.newSess {
		p.srv.endSession(p.sess)
	}
}

func (p *post) errorID() mcp.ID {
	if p.batch {
		return nil
	}
	return p.firstID
}

func (p *post) jsonBodyLocked() []byte {
	if !p.batch {
		return p.replies[0]
	}
	n := 2
	for _, r := range p.replies {
		n += len(r) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, r := range p.replies {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, r...)
	}
	return append(b, ']')
}

func (p *post) writeJSON(w http.ResponseWriter, hdr http.Header, body []byte, initFailed bool) {
	h := w.Header()
	for k, v := range hdr {
		h[k] = v
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if p.newSess && !initFailed {
		h.Set(HeaderSessionID, p.sess.id)
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func (p *post) serveSSE(ctx context.Context, w http.ResponseWriter, hdr http.Header, sessDone <-chan struct{}) {
	st := p.st
	if p.newSess {
		if hdr == nil {
			hdr = make(http.Header)
		}
		hdr.Set(HeaderSessionID, p.sess.id)
	}
	out := newSSE(w, &p.srv.opts)
	out.start(hdr)
	if p.mode == modeSSE && st.ids && p.sess.version >= mcp.Version20251125 {
		out.prime(st)
	}
	finished := st.pump(ctx, out, p.me, 0, sessDone, p.srv.done)
	st.detach(p.me)

	p.mu.Lock()
	p.gone = true
	failed := p.initFailed
	p.mu.Unlock()
	if p.sess != nil {
		if finished {
			p.sess.removeStream(st)
		} else {
			p.sess.pruneDetached() // st stays resumable, within bounds
		}
	}
	if failed {
		p.srv.endSession(p.sess)
	}
}

// postExchange is the transport side of an Exchange received in a POST.
type postExchange struct {
	p       *post
	ex      *Exchange
	idx     int
	init    bool
	replied atomic.Bool
}

var _ exchangeImpl = (*postExchange)(nil)

func (e *postExchange) reply(msg []byte) {
	if !e.replied.CompareAndSwap(false, true) {
		return
	}
	p := e.p
	failed := e.init && isErrorResponse(msg)
	p.mu.Lock()
	p.stageLocked(e.ex.Header)
	p.pending--
	if failed {
		p.initFailed = true
	}
	if p.st != nil {
		_, _ = p.st.append(msg, true) // fails only once the stream was dropped
		if p.pending == 0 {
			p.st.end()
		}
	} else {
		p.replies[e.idx] = msg
	}
	gone := p.gone
	p.mu.Unlock()
	p.me.signal()
	if failed && gone {
		p.srv.endSession(p.sess)
	}
}

// deliver sends a related message on the POST's stream, switching a lazy
// response to SSE; when the POST cannot carry it (JSON only, response
// over, request answered) it falls back to the session's GET stream.
func (e *postExchange) deliver(msg []byte) error {
	p := e.p
	if !e.replied.Load() && p.mode != modeJSON {
		p.mu.Lock()
		if !p.started {
			p.stageLocked(e.ex.Header)
		}
		if p.st == nil && !p.gone {
			p.startSSELocked()
		}
		st := p.st
		usable := st != nil && (!p.gone || st.ids) // a stateless stream cannot be resumed
		p.mu.Unlock()
		if usable {
			if _, err := st.append(bytes.Clone(msg), false); err == nil {
				return nil
			}
		}
	}
	if p.sess != nil {
		return p.sess.Deliver(msg)
	}
	return ErrNoStream
}

func (e *postExchange) supports(method string) bool {
	if e.p.sess != nil {
		return e.p.sess.Supports(method)
	}
	return supports(0, method) // a stateless client declared no capabilities
}

func isErrorResponse(msg []byte) bool {
	m, err := mcp.Decode(msg)
	return err != nil || m.Error != nil
}

// isJSONMediaType reports whether a Content-Type is application/json,
// with parameters (charset) allowed.
func isJSONMediaType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}
