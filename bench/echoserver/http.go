package echoserver

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// maxBody bounds a POST body.
const maxBody = 64 << 20

// Header values shared by every response; net/http only reads them.
var (
	ctJSON    = []string{"application/json"}
	ctSSE     = []string{"text/event-stream"}
	noCache   = []string{"no-cache"}
	allowPOST = []string{"POST, DELETE"}
	ssePrefix = []byte("event: message\ndata: ")
)

// HTTPHandler serves MCP's Streamable HTTP transport at whatever path it is
// mounted on. POST answers with a JSON body, or with an SSE stream when the
// client accepts only text/event-stream or SSE is set. Initialize hands out
// an Mcp-Session-Id; later requests may carry any session id, or none: the
// server keeps no per-session state, so there is nothing to validate.
type HTTPHandler struct {
	Server *Server
	// SSE answers with an SSE stream whenever the client accepts one.
	SSE bool

	bufs sync.Pool // *exchangeBufs
}

// exchangeBufs holds one POST's request body and reply, reused across
// requests so that the steady state allocates little.
type exchangeBufs struct {
	in  bytes.Buffer
	out []byte
}

func (h *HTTPHandler) buffers() *exchangeBufs {
	if b, ok := h.bufs.Get().(*exchangeBufs); ok {
		b.in.Reset()
		b.out = b.out[:0]
		return b
	}
	return &exchangeBufs{out: make([]byte, 0, 1024)}
}

func (h *HTTPHandler) release(b *exchangeBufs) {
	if b.in.Cap() <= 1<<20 && cap(b.out) <= 1<<20 { // don't pin huge buffers
		h.bufs.Put(b)
	}
}

// ServeHTTP implements http.Handler.
func (h *HTTPHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
		h.post(w, r)
	case http.MethodDelete:
		w.WriteHeader(http.StatusOK)
	default:
		w.Header()["Allow"] = allowPOST
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (h *HTTPHandler) post(w http.ResponseWriter, r *http.Request) {
	b := h.buffers()
	defer h.release(b)
	if _, err := b.in.ReadFrom(http.MaxBytesReader(w, r.Body, maxBody)); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	useSSE := h.wantSSE(r.Header.Get("Accept"))
	reply := b.out
	if useSSE {
		reply = append(reply, ssePrefix...)
	}
	reply, k := h.Server.appendReply(reply, b.in.Bytes())
	b.out = reply // keep the grown slice for the next request
	if k == kindNoReply {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	hdr := w.Header()
	if k == kindInitialize {
		hdr["Mcp-Session-Id"] = []string{newSessionID()}
	}
	if useSSE {
		reply = append(reply, '\n', '\n')
		b.out = reply
		hdr["Content-Type"] = ctSSE
		hdr["Cache-Control"] = noCache
	} else {
		hdr["Content-Type"] = ctJSON
	}
	hdr["Content-Length"] = []string{strconv.Itoa(len(reply))}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(reply)
}

// wantSSE decides the reply framing from the client's Accept header: SSE
// when it accepts only text/event-stream, or accepts it and h.SSE is set.
func (h *HTTPHandler) wantSSE(accept string) bool {
	if accept == "" {
		return false
	}
	var json, sse bool
	for part := range strings.SplitSeq(accept, ",") {
		mt, _, _ := strings.Cut(part, ";")
		switch strings.ToLower(strings.TrimSpace(mt)) {
		case "text/event-stream":
			sse = true
		case "application/json", "application/*", "*/*":
			json = true
		}
	}
	return sse && (!json || h.SSE)
}

func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b[:])
}
