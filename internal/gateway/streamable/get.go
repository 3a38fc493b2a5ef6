package streamable

import (
	"net/http"
	"strconv"

	"github.com/paygate/paygate/internal/mcp"
)

// serveGET opens the session's server-to-client stream, or resumes a
// stream after Last-Event-ID: the GET stream (number 0) or a POST stream
// whose connection broke.
//
// A second GET for the session's stream replaces the first, which ends:
// a client reconnecting after a network failure must not be refused
// because the server has not noticed the old connection is dead, and the
// spec forbids sending a message on two streams. A POST stream that is
// still being served cannot be taken over (409): its request would be
// cancelled with its connection.
func (s *Server) serveGET(w http.ResponseWriter, r *http.Request) {
	if _, sseOK := parseAccept(r.Header.Values("Accept")); !sseOK {
		writeError(w, http.StatusNotAcceptable, nil, mcp.CodeInvalidRequest, "GET needs Accept: text/event-stream")
		return
	}
	id := r.Header.Get(HeaderSessionID)
	if id == "" {
		writeError(w, http.StatusBadRequest, nil, mcp.CodeInvalidRequest, "GET needs an "+HeaderSessionID+" header")
		return
	}
	sess := s.acquire(id)
	if sess == nil {
		writeError(w, http.StatusNotFound, nil, codeSessionNotFound, "session not found")
		return
	}
	defer sess.release()
	if msg, ok := checkSessionVersion(r, sess); !ok {
		writeError(w, http.StatusBadRequest, nil, mcp.CodeInvalidRequest, msg)
		return
	}

	var (
		st     *stream
		cursor uint64
		resume bool
		err    error
	)
	if lei := r.Header.Get(headerLastEventID); lei != "" {
		num, seq, ok := parseEventID(lei)
		if !ok {
			writeError(w, http.StatusBadRequest, nil, mcp.CodeInvalidRequest, "malformed Last-Event-ID "+quote(lei))
			return
		}
		resume, cursor = true, seq
		if num != 0 {
			if st = sess.postStream(num); st == nil {
				writeError(w, http.StatusBadRequest, nil, mcp.CodeInvalidRequest,
					"stream "+strconv.FormatUint(num, 10)+" of this session cannot be resumed")
				return
			}
		}
	}
	if st == nil {
		if st, err = sess.getStream(); err != nil {
			writeError(w, http.StatusNotFound, nil, codeSessionNotFound, "session not found")
			return
		}
	}
	me := newWriter()
	written, err := st.attach(me, st.num == 0)
	if err != nil {
		writeError(w, http.StatusConflict, nil, mcp.CodeInvalidRequest, err.Error())
		return
	}
	if !resume {
		cursor = written // whatever no earlier GET has written
	}

	out := newSSE(w, &s.opts)
	out.start(nil)
	// A comment puts the headers on the wire at once, also through proxies
	// that hold headers until the first body bytes.
	_ = out.comment("stream open")
	finished := st.pump(r.Context(), out, me, cursor, sess.doneChan(), s.done)
	st.detach(me)
	switch {
	case st.num == 0:
	case finished:
		sess.removeStream(st)
	default:
		sess.pruneDetached()
	}
}

// serveDELETE ends a session.
func (s *Server) serveDELETE(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get(HeaderSessionID)
	if id == "" {
		writeError(w, http.StatusBadRequest, nil, mcp.CodeInvalidRequest, "DELETE needs an "+HeaderSessionID+" header")
		return
	}
	sess := s.acquire(id)
	if sess == nil {
		writeError(w, http.StatusNotFound, nil, codeSessionNotFound, "session not found")
		return
	}
	sess.release()
	s.endSession(sess)
	w.WriteHeader(http.StatusNoContent)
}
