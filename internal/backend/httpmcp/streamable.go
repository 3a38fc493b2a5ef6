package httpmcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/paygate/paygate/internal/backend"
	"github.com/paygate/paygate/internal/mcp"
)

// deleteTimeout bounds the DELETE that ends a session.
const deleteTimeout = 5 * time.Second

// maxResumes bounds how often one call's stream is resumed with
// Last-Event-ID after the server closed it early.
const maxResumes = 5

// streamLink is one Streamable HTTP connection (spec 2025-03-26 and
// later): every request is a POST whose reply is JSON or an SSE stream
// carrying the response and the messages related to it; a GET stream
// carries the rest. The session is renewed in place when the server
// forgets it, so the link only dies when the server cannot be reached.
type streamLink struct {
	b   *Backend
	mux *backend.Mux
	log *slog.Logger

	ctx    context.Context // the link's lifetime; aborts every request
	cancel context.CancelFunc

	mu       sync.Mutex
	session  string        // Mcp-Session-Id; "" for a server without sessions
	version  string        // negotiated protocol version, sent once initialized
	gen      int           // bumped by every session renewal
	renewing chan struct{} // non-nil while a renewal runs
	renewErr error

	done    chan struct{}
	dieOnce sync.Once
	err     error
}

var _ backend.Link = (*streamLink)(nil)

func (b *Backend) dialStreamable(ctx context.Context) (backend.Link, error) {
	l := &streamLink{b: b, mux: b.mux, log: b.log, done: make(chan struct{})}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	ctx, cancel := context.WithTimeout(ctx, b.cfg.InitTimeout)
	defer cancel()
	res, err := b.mux.Handshake(ctx, l)
	if err == nil {
		l.setVersion(res.ProtocolVersion)
		err = b.attach(ctx, l, res, transportStreamable, b.dialStreamable)
	}
	if err != nil {
		// Best effort: end the session the server may have created.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		l.shutdown(ctx, err)
		return nil, err
	}
	go l.listen()
	return l, nil
}

func (l *streamLink) setVersion(v string) {
	l.mu.Lock()
	l.version = v
	l.mu.Unlock()
}

// sessionFor returns the session a message goes out on, waiting while the
// session is being renewed. The renewal's own initialize and initialized
// messages do not wait: they are the renewal.
func (l *streamLink) sessionFor(ctx context.Context, method string) (session, version string, gen int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch method {
	case mcp.MethodInitialize:
		return "", "", l.gen, nil
	case mcp.NotificationInitialized:
		return l.session, l.version, l.gen, nil
	}
	for l.renewing != nil {
		ch := l.renewing
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			l.mu.Lock()
			return "", "", 0, ctx.Err()
		}
		l.mu.Lock()
	}
	return l.session, l.version, l.gen, nil
}

// Send implements backend.Conn. A request's POST runs in its own
// goroutine, which feeds the reply to the Mux; notifications and responses
// are posted before Send returns.
//
// The request's POST cannot run in the caller's goroutine: Mux.Call must
// return as soon as its call is answered by other means (a client's
// notifications/cancelled, the link's death), while the POST may still be
// waiting for the server, and a cancelled call's stream is read on for
// CancelDrain. Measured, the synchronous variant gained nothing anyway:
// with the lean client there is no hand-off left but this one.
func (l *streamLink) Send(ctx context.Context, out backend.Outgoing) error {
	select {
	case <-l.done:
		return l.err
	default:
	}
	if out.IsRequest() {
		go l.roundTrip(ctx, out)
		return nil
	}
	session, version, gen, err := l.sessionFor(ctx, out.Method)
	if err != nil {
		return err
	}
	rep, err := l.post(ctx, out.Body, session, version)
	if err != nil {
		return l.transportError(ctx, err)
	}
	defer rep.close()
	if rep.status == http.StatusNotFound && session != "" {
		// The message belonged to the forgotten session: nothing to resend.
		go l.renew(gen)
		return rep.statusError()
	}
	if rep.status/100 != 2 {
		return rep.statusError()
	}
	return nil
}

func setSession(req *http.Request, session, version string) {
	if session != "" {
		req.Header.Set(hdrSession, session)
	}
	if version != "" {
		req.Header.Set(hdrVersion, version)
	}
}

// transportError handles a request that got no HTTP answer at all. Unless
// the request itself was abandoned, the server is unreachable: the link
// dies, and the supervisor reconnects.
func (l *streamLink) transportError(ctx context.Context, err error) error {
	if ctx.Err() == nil && l.ctx.Err() == nil {
		l.die(err)
	}
	return err
}

// roundTrip POSTs one request and feeds its reply to the Mux.
func (l *streamLink) roundTrip(callCtx context.Context, out backend.Outgoing) {
	// The POST outlives a cancelled call by CancelDrain: the server may
	// still send messages about it on the stream.
	ctx, abort := context.WithCancel(l.ctx)
	defer abort()
	stop := context.AfterFunc(callCtx, func() { time.AfterFunc(l.b.cfg.CancelDrain, abort) })
	defer stop()

	for attempt := 0; ; attempt++ {
		session, version, gen, err := l.sessionFor(ctx, out.Method)
		if err != nil {
			l.mux.Fail(l, out.ID, err)
			return
		}
		rep, err := l.post(ctx, out.Body, session, version)
		if err != nil {
			// Fail first: the link's death fails every call on it as lost,
			// and this one may be known never to have been sent.
			l.mux.Fail(l, out.ID, undelivered(err))
			l.transportError(ctx, err)
			return
		}
		if rep.status == http.StatusNotFound && session != "" && attempt == 0 {
			// 404 for a session means the server forgot it and did not
			// process the request: renew the session and send it once more.
			rep.close()
			l.log.Info("backend session expired; starting a new one")
			if err := l.renew(gen); err != nil {
				l.mux.Fail(l, out.ID, err)
				return
			}
			continue
		}
		if out.Method == mcp.MethodInitialize {
			l.mu.Lock()
			l.session = rep.session
			l.mu.Unlock()
		}
		l.readReply(ctx, &rep, out)
		return
	}
}

// readReply feeds a POST's reply to the Mux and fails the call if the
// reply ended without its response.
func (l *streamLink) readReply(ctx context.Context, rep *reply, out backend.Outgoing) {
	defer rep.close()
	switch {
	case rep.status/100 != 2:
		l.refused(rep, out)
		return
	case rep.ctype == "text/event-stream":
		l.readStream(ctx, rep.body, out)
	case rep.ctype == "application/json":
		body, err := rep.readAll(l.b.cfg.MaxMessageBytes)
		if err != nil {
			l.mux.Fail(l, out.ID, err)
			return
		}
		l.mux.Receive(l, body, out.ID)
	}
	if l.mux.Pending(out.ID) {
		l.mux.Fail(l, out.ID, fmt.Errorf("HTTP %d %q reply without a response", rep.status, rep.ctype))
	}
}

// refused handles a request the server answered with an HTTP error. A
// JSON-RPC error in the body is the server's answer (the spec lets it omit
// the id, so it is given the request's). A bare 400 means the server would
// not accept the request, which the client learns as an invalid request.
// Anything else is a failure of the server, not an answer.
func (l *streamLink) refused(rep *reply, out backend.Outgoing) {
	body := rep.head(64 << 10)
	if rep.ctype == "application/json" {
		if m, err := mcp.Decode(body); err == nil && m.IsResponse() && m.Error != nil {
			l.mux.Receive(l, mcp.AppendError(nil, out.ID, m.Error), out.ID)
			return
		}
	}
	se := &StatusError{Method: http.MethodPost, Code: rep.status, Body: truncate(strings.TrimSpace(string(body)), 512)}
	if rep.status == http.StatusBadRequest && out.Method != mcp.MethodInitialize {
		we := &mcp.WireError{Code: mcp.CodeInvalidRequest, Message: "backend refused the request: " + se.Error()}
		l.mux.Receive(l, mcp.AppendError(nil, out.ID, we), out.ID)
		return
	}
	if out.Method == mcp.MethodInitialize {
		// initialize keeps the status: auto-detection reads it.
		l.mux.Fail(l, out.ID, se)
		return
	}
	l.mux.Fail(l, out.ID, statusFailure(se))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// readStream reads a POST's SSE stream until the response, resuming it
// with Last-Event-ID when the server closes it early (spec 2025-11-25).
func (l *streamLink) readStream(ctx context.Context, body io.ReadCloser, out backend.Outgoing) {
	var lastID string
	var retry time.Duration
	for resumes := 0; ; resumes++ {
		err := readEvents(body, l.b.cfg.MaxMessageBytes, func(ev *event) bool {
			if ev.id != "" {
				lastID = ev.id
			}
			if ev.retry > 0 {
				retry = ev.retry
			}
			if len(ev.data) == 0 || (ev.name != "" && ev.name != "message") {
				return true
			}
			// Everything on this stream concerns this request.
			return !l.mux.Receive(l, ev.data, out.ID)
		})
		body.Close()
		if !l.mux.Pending(out.ID) {
			return
		}
		if lastID == "" || ctx.Err() != nil || resumes == maxResumes {
			if err == nil || errors.Is(err, io.EOF) {
				err = errors.New("stream ended before the response")
			}
			l.mux.Fail(l, out.ID, err)
			return
		}
		if !sleep(ctx, max(retry, 10*time.Millisecond)) {
			return
		}
		resp, err := l.get(ctx, lastID)
		if err != nil {
			l.mux.Fail(l, out.ID, err)
			return
		}
		if resp.StatusCode != http.StatusOK || mediaType(resp) != "text/event-stream" {
			l.mux.Fail(l, out.ID, statusError(resp))
			drain(resp)
			return
		}
		body = resp.Body
	}
}

// get opens an SSE stream: the session's own, or the continuation of the
// stream lastID belongs to.
func (l *streamLink) get(ctx context.Context, lastID string) (*http.Response, error) {
	session, version, _, err := l.sessionFor(ctx, "")
	if err != nil {
		return nil, err
	}
	req, err := l.b.newRequest(ctx, http.MethodGet, l.b.cfg.URL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	setSession(req, session, version)
	if lastID != "" {
		req.Header.Set(hdrLastEventID, lastID)
	}
	return l.b.client.Do(req)
}

// listen keeps the session's GET stream open for server messages that
// belong to no request (list changes, resource updates, requests of its
// own). A 405 means the server offers none.
func (l *streamLink) listen() {
	bo := backend.Backoff{Min: l.b.cfg.BackoffMin, Max: l.b.cfg.BackoffMax}
	var lastID string
	lastGen := -1
	for l.ctx.Err() == nil {
		session, _, gen, _ := l.sessionFor(l.ctx, "")
		if gen != lastGen { // a new session starts its stream afresh
			lastID, lastGen = "", gen
		}
		resp, err := l.get(l.ctx, lastID)
		var uptime time.Duration
		switch {
		case err != nil:
			if l.ctx.Err() != nil {
				return
			}
			l.log.Debug("GET stream", "err", err)
		case resp.StatusCode == http.StatusMethodNotAllowed:
			drain(resp)
			return
		case resp.StatusCode == http.StatusNotFound && session != "":
			drain(resp)
			if l.renew(gen) != nil {
				return
			}
			continue
		case resp.StatusCode != http.StatusOK || mediaType(resp) != "text/event-stream":
			l.log.Debug("GET stream refused", "err", statusError(resp))
			drain(resp)
		default:
			up := time.Now()
			var retry time.Duration
			readEvents(resp.Body, l.b.cfg.MaxMessageBytes, func(ev *event) bool {
				if ev.id != "" {
					lastID = ev.id
				}
				if ev.retry > 0 {
					retry = ev.retry
				}
				if len(ev.data) > 0 && (ev.name == "" || ev.name == "message") {
					l.mux.Receive(l, ev.data, nil)
				}
				return true
			})
			resp.Body.Close()
			uptime = time.Since(up)
			if retry > 0 && !sleep(l.ctx, retry) {
				return
			}
		}
		if !sleep(l.ctx, bo.Next(uptime)) {
			return
		}
	}
}

// renew replaces a session the server forgot: a new initialize on this
// link, which the Mux records as a restart. Concurrent callers that saw the
// same session wait for one renewal.
func (l *streamLink) renew(gen int) error {
	l.mu.Lock()
	for l.renewing != nil {
		ch := l.renewing
		l.mu.Unlock()
		select {
		case <-ch:
		case <-l.ctx.Done():
			return backend.ErrClosed
		}
		l.mu.Lock()
	}
	if l.gen != gen {
		err := l.renewErr
		l.mu.Unlock()
		return err
	}
	ch := make(chan struct{})
	l.renewing = ch
	l.session = ""
	l.mu.Unlock()

	ctx, cancel := context.WithTimeout(l.ctx, l.b.cfg.InitTimeout)
	res, err := l.mux.Handshake(ctx, l)
	if err == nil {
		l.setVersion(res.ProtocolVersion)
		err = l.mux.Attach(ctx, l, res)
	}
	cancel()

	l.mu.Lock()
	l.gen++
	l.renewErr = err
	l.renewing = nil
	l.mu.Unlock()
	close(ch)
	if err != nil {
		err = fmt.Errorf("renew session: %w", err)
		l.die(err)
	}
	return err
}

// Done implements backend.Link.
func (l *streamLink) Done() <-chan struct{} { return l.done }

// Err implements backend.Link.
func (l *streamLink) Err() error {
	select {
	case <-l.done:
		return l.err
	default:
		return nil
	}
}

func (l *streamLink) die(err error) {
	l.dieOnce.Do(func() {
		l.err = err
		close(l.done)
		l.cancel()
		l.mux.Lost(l, err)
	})
}

// Close implements backend.Link: it ends the session with DELETE.
func (l *streamLink) Close(ctx context.Context) error {
	return l.shutdown(ctx, backend.ErrClosed)
}

func (l *streamLink) shutdown(ctx context.Context, cause error) error {
	l.mu.Lock()
	session, version := l.session, l.version
	l.session = ""
	l.mu.Unlock()
	l.die(cause)
	if session == "" {
		return nil
	}
	// A server slow to end the session must not hold up paygate's shutdown.
	ctx, cancel := context.WithTimeout(ctx, deleteTimeout)
	defer cancel()
	req, err := l.b.newRequest(ctx, http.MethodDelete, l.b.cfg.URL, nil)
	if err != nil {
		return err
	}
	setSession(req, session, version)
	resp, err := l.b.client.Do(req)
	if err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	drain(resp)
	// 405: the server does not let clients end sessions; 404: already gone.
	if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusMethodNotAllowed && resp.StatusCode != http.StatusNotFound {
		return fmt.Errorf("end session: HTTP %d", resp.StatusCode)
	}
	return nil
}

// sleep waits for d or until ctx ends, reporting whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
