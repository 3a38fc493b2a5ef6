package streamable

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

var errStreamEnded = errors.New("stream ended")

// An event is one SSE event of a stream: a JSON-RPC message and its
// sequence number (1, 2, … per stream).
type event struct {
	seq   uint64
	data  []byte
	reply bool // a response to a client request: never dropped unwritten
}

// stream is one logical SSE stream of a session: the standalone GET stream
// (number 0) or the stream of one POST (1, 2, …). Producers append events
// and never block; at most one writer, the goroutine serving an HTTP
// response, writes them. The retained events double as the replay buffer
// for Last-Event-ID, so a writer that attaches later (a reconnecting GET)
// starts from any cursor still buffered.
type stream struct {
	num   uint64
	ids   bool // events carry ids (false on stateless POSTs: nothing can resume them)
	limit int  // retained events beyond which the oldest are dropped

	mu      sync.Mutex
	events  []event // retained, ascending seq
	last    uint64  // seq of the newest event
	written uint64  // highest seq a writer has flushed
	w       *writer // the attached writer, nil when none
	ended   bool    // no event will be appended any more
}

// writer is the identity of the goroutine serving a stream; wake is
// signalled when there is something new to write or it was replaced.
type writer struct {
	wake chan struct{}
}

func newWriter() *writer { return &writer{wake: make(chan struct{}, 1)} }

func (w *writer) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func newStream(num uint64, ids bool, limit int) *stream {
	return &stream{num: num, ids: ids, limit: limit}
}

// append adds an event and wakes the writer. It fails once the stream has
// ended.
func (st *stream) append(data []byte, reply bool) (uint64, error) {
	st.mu.Lock()
	if st.ended {
		st.mu.Unlock()
		return 0, errStreamEnded
	}
	st.last++
	seq := st.last
	st.events = append(st.events, event{seq: seq, data: data, reply: reply})
	st.trimLocked()
	w := st.w
	st.mu.Unlock()
	if w != nil {
		w.signal()
	}
	return seq, nil
}

// trimLocked drops the oldest events beyond the limit. Responses no writer
// has written yet are neither dropped nor counted: a client must get them,
// and they are bounded by the size of the batch that asked for them.
func (st *stream) trimLocked() {
	pinned := func(e *event) bool { return e.reply && e.seq > st.written }
	n := 0
	for i := range st.events {
		if !pinned(&st.events[i]) {
			n++
		}
	}
	for i := 0; n > st.limit && i < len(st.events); {
		if pinned(&st.events[i]) {
			i++
			continue
		}
		if i == 0 {
			st.events[0] = event{}
			st.events = st.events[1:]
		} else {
			copy(st.events[i:], st.events[i+1:])
			st.events[len(st.events)-1] = event{}
			st.events = st.events[:len(st.events)-1]
		}
		n--
	}
}

// end marks the stream complete; the writer finishes after writing what is
// buffered.
func (st *stream) end() {
	st.mu.Lock()
	st.ended = true
	w := st.w
	st.mu.Unlock()
	if w != nil {
		w.signal()
	}
}

var errStreamBusy = errors.New("stream is being served by another request")

// attach makes w the stream's writer and returns the highest sequence
// written so far. With replace, a current writer is told to stop;
// otherwise attaching to a served stream fails.
func (st *stream) attach(w *writer, replace bool) (written uint64, err error) {
	st.mu.Lock()
	old := st.w
	if old != nil && !replace {
		st.mu.Unlock()
		return 0, errStreamBusy
	}
	st.w = w
	written = st.written
	st.mu.Unlock()
	if old != nil {
		old.signal()
	}
	return written, nil
}

func (st *stream) detach(w *writer) {
	st.mu.Lock()
	if st.w == w {
		st.w = nil
	}
	st.mu.Unlock()
}

// size returns the sequence number of the newest event (0: none yet).
func (st *stream) size() uint64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.last
}

func (st *stream) attached() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.w != nil
}

// eventID formats the SSE id of an event: "<stream>_<seq>".
func (st *stream) eventID(dst []byte, seq uint64) []byte {
	dst = strconv.AppendUint(dst, st.num, 10)
	dst = append(dst, '_')
	return strconv.AppendUint(dst, seq, 10)
}

// parseEventID parses a Last-Event-ID produced by eventID.
func parseEventID(s string) (num, seq uint64, ok bool) {
	a, b, found := strings.Cut(s, "_")
	if !found {
		return 0, 0, false
	}
	num, err1 := strconv.ParseUint(a, 10, 64)
	seq, err2 := strconv.ParseUint(b, 10, 64)
	return num, seq, err1 == nil && err2 == nil
}

// sse writes SSE frames to one HTTP response.
type sse struct {
	w            http.ResponseWriter
	rc           *http.ResponseController
	keepAlive    time.Duration
	writeTimeout time.Duration
	buf          []byte
	flushed      bool // the headers have gone out
}

func newSSE(w http.ResponseWriter, o *Options) *sse {
	return &sse{w: w, rc: http.NewResponseController(w), keepAlive: o.KeepAlive, writeTimeout: o.WriteTimeout}
}

// start writes the response headers of an event stream.
func (s *sse) start(header http.Header) {
	h := s.w.Header()
	for k, v := range header {
		h[k] = v
	}
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache, no-transform")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	h.Del("Content-Length")
	s.w.WriteHeader(http.StatusOK)
}

// flush sends buf, bounded by the write timeout.
func (s *sse) flush() error {
	err := s.write()
	if err == nil {
		err = s.rc.Flush()
		s.flushed = true
	}
	return err
}

// write hands buf to the response writer without flushing it: used for the
// last events of a stream, which the end of the handler flushes together
// with the end of the response (one write instead of two).
func (s *sse) write() error {
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.writeTimeout))
	_, err := s.w.Write(s.buf)
	s.buf = s.buf[:0]
	return err
}

func (s *sse) comment(text string) error {
	s.buf = append(s.buf, ": "...)
	s.buf = append(s.buf, text...)
	s.buf = append(s.buf, "\n\n"...)
	return s.flush()
}

// prime queues an event with an id and no data (2025-11-25 §"Sending
// Messages to the Server"): the client can resume from it even if the
// connection breaks before the first message. It goes out with the first
// message, or on its own as soon as the stream has to wait for one.
func (s *sse) prime(st *stream) {
	s.buf = append(s.buf, "id: "...)
	s.buf = st.eventID(s.buf, 0)
	s.buf = append(s.buf, "\ndata:\n\n"...)
}

// appendEvent encodes one message event. A message with line breaks
// (pretty-printed JSON) becomes several data lines, which the client joins
// with "\n".
func (s *sse) appendEvent(st *stream, e *event) {
	if st.ids {
		s.buf = append(s.buf, "id: "...)
		s.buf = st.eventID(s.buf, e.seq)
		s.buf = append(s.buf, '\n')
	}
	s.buf = append(s.buf, "event: message\n"...)
	data := e.data
	for {
		s.buf = append(s.buf, "data: "...)
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 {
			s.buf = append(s.buf, data...)
			break
		}
		s.buf = append(s.buf, data[:i]...)
		s.buf = append(s.buf, '\n')
		data = data[i+1:]
	}
	s.buf = append(s.buf, "\n\n"...)
}

// pump writes st's events after cursor until the stream has ended and
// everything is written (finished), or until the writer is replaced, ctx
// ends, a stop channel fires or a write fails (not finished). Keepalive
// comments go out while nothing else does.
func (st *stream) pump(ctx context.Context, out *sse, me *writer, cursor uint64, stops ...<-chan struct{}) (finished bool) {
	var stop1, stop2 <-chan struct{}
	if len(stops) > 0 {
		stop1 = stops[0]
	}
	if len(stops) > 1 {
		stop2 = stops[1]
	}
	tick := time.NewTicker(out.keepAlive)
	defer tick.Stop()
	var batch []event
	for {
		st.mu.Lock()
		if st.w != me {
			st.mu.Unlock()
			return false
		}
		batch = batch[:0]
		for i := range st.events {
			if st.events[i].seq > cursor {
				batch = append(batch, st.events[i:]...)
				break
			}
		}
		ended := st.ended
		st.mu.Unlock()

		if len(batch) > 0 {
			if ctx.Err() != nil {
				// The client is gone: what it has not got stays buffered
				// for a resumption rather than being written into a dead
				// connection and counted as delivered.
				return false
			}
			for i := range batch {
				out.appendEvent(st, &batch[i])
			}
			// The batch that completes a stream is left for the handler's
			// return to flush with the end of the response.
			send := out.flush
			if ended {
				send = out.write
			}
			if send() != nil {
				return false
			}
			cursor = batch[len(batch)-1].seq
			clear(batch) // do not pin message bytes in the reused slice
			st.mu.Lock()
			st.written = max(st.written, cursor)
			st.mu.Unlock()
			continue
		}
		if ended {
			return len(out.buf) == 0 || out.write() == nil
		}
		// Whatever is queued (a priming event), and the headers, go out
		// before waiting: clients time out waiting for headers.
		if (len(out.buf) > 0 || !out.flushed) && out.flush() != nil {
			return false
		}
		select {
		case <-me.wake:
		case <-tick.C:
			if out.comment("keepalive") != nil {
				return false
			}
		case <-ctx.Done():
			return false
		case <-stop1:
			return false
		case <-stop2:
			return false
		}
	}
}
