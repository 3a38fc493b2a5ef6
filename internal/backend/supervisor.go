package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Link is one established connection, as the Supervisor sees it.
type Link interface {
	Conn
	// Done is closed when the connection has died; Err then says why.
	// Transports report the death with Mux.Lost themselves, so that calls
	// fail at once; the Supervisor reports it again, which is harmless.
	Done() <-chan struct{}
	Err() error
	// Close ends the connection gracefully: a child process gets stdin
	// closed, then SIGTERM, then SIGKILL; an HTTP session is deleted. It
	// returns when the connection is gone or ctx ends.
	Close(ctx context.Context) error
}

// DialFunc opens a connection and completes the MCP handshake on it
// (Mux.Handshake, Mux.Attach). On error it must leave nothing running.
type DialFunc func(ctx context.Context) (Link, error)

// Supervisor keeps a backend connected: it dials, and whenever the
// connection dies it dials again after a backoff, until Close.
type Supervisor struct {
	mux     *Mux
	dial    DialFunc
	backoff Backoff
	log     *slog.Logger

	ctx    context.Context // ends at Close; aborts a dial in progress
	cancel context.CancelFunc

	startOnce sync.Once
	loopDone  chan struct{}

	mu     sync.Mutex
	link   Link
	closed bool
}

// NewSupervisor returns a Supervisor for mux that connects with dial.
func NewSupervisor(mux *Mux, dial DialFunc, b Backoff, log *slog.Logger) *Supervisor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Supervisor{
		mux: mux, dial: dial, backoff: b, log: log.With("backend", mux.Name()),
		ctx: ctx, cancel: cancel, loopDone: make(chan struct{}),
	}
}

// Start starts the connect loop (once) and waits until the backend is
// ready or ctx ends. The loop keeps trying in the background either way.
func (s *Supervisor) Start(ctx context.Context) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	s.startOnce.Do(func() { go s.loop() })
	select {
	case <-s.mux.Ready():
		return nil
	case <-s.loopDone:
		return ErrClosed
	case <-ctx.Done():
		if last := s.mux.Status().LastError; last != "" {
			return fmt.Errorf("start backend %s: %w (last error: %s)", s.mux.Name(), ctx.Err(), last)
		}
		return fmt.Errorf("start backend %s: %w", s.mux.Name(), ctx.Err())
	}
}

func (s *Supervisor) loop() {
	defer close(s.loopDone)
	for {
		link, err := s.dial(s.ctx)
		var uptime time.Duration
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			s.mux.DialFailed(err)
			s.log.Warn("backend connect failed", "err", err)
		} else {
			s.mu.Lock()
			if s.closed {
				// Close won the race with a successful dial: stop it here.
				s.mu.Unlock()
				s.stop(link)
				return
			}
			s.link = link
			s.mu.Unlock()
			up := time.Now()
			select {
			case <-link.Done():
			case <-s.ctx.Done():
				return // Close stops the link
			}
			uptime = time.Since(up)
			// Covers a link that died before it was attached.
			s.mux.Lost(link, link.Err())
			s.mu.Lock()
			s.link = nil
			s.mu.Unlock()
			// The dead link may hold resources (an HTTP session): release them
			// without delaying the reconnect.
			go s.stop(link)
		}
		t := time.NewTimer(s.backoff.Next(uptime))
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			return
		}
	}
}

func (s *Supervisor) stop(l Link) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.Close(ctx); err != nil && !errors.Is(err, ErrClosed) {
		s.log.Debug("closing dead connection", "err", err)
	}
}

// Close stops the loop, fails what is pending with ErrClosed and closes the
// current connection gracefully within ctx. It is idempotent.
func (s *Supervisor) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.mux.Shutdown(ctx)
	s.cancel()
	s.startOnce.Do(func() { close(s.loopDone) }) // never started: nothing to wait for
	select {
	case <-s.loopDone:
	case <-ctx.Done():
	}
	// The loop no longer installs links (closed is set): whatever is here
	// is ours to stop.
	s.mu.Lock()
	l := s.link
	s.link = nil
	s.mu.Unlock()
	if l == nil {
		return nil
	}
	return l.Close(ctx)
}
