package stdio

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/paygate/paygate/internal/backend"
)

// drainTimeout bounds how long a dead child's pipes are read after the
// process group was killed; only a process that escaped the group can hold
// them open that long.
const drainTimeout = 2 * time.Second

// errLineTooLong: the child wrote a line longer than MaxMessageBytes.
var errLineTooLong = errors.New("message exceeds the size limit")

// child is one running server process: a backend.Link speaking
// newline-delimited JSON on its stdin and stdout.
type child struct {
	mux *backend.Mux
	log *slog.Logger
	cfg *Config

	cmd    *exec.Cmd
	pid    int
	stdin  *os.File
	stdout *os.File
	stderr *os.File

	queue    chan []byte   // messages for the writer goroutine
	quit     chan struct{} // closed by Close: stop writing, close stdin
	quitOnce sync.Once

	exited   chan struct{} // the process has been reaped
	readDone chan struct{} // stdout reader finished
	errDone  chan struct{} // stderr reader finished
	done     chan struct{} // dead and reported to the Mux
	dieOnce  sync.Once
	stateErr error
}

var _ backend.Link = (*child)(nil)

// spawn starts the process in its own process group, so that everything it
// starts (npx starts node, which starts the server) can be signalled as one.
func spawn(cfg *Config, mux *backend.Mux, log *slog.Logger) (*child, error) {
	cmd := exec.Command(cfg.Argv[0], cfg.Argv[1:]...)
	cmd.Env = cfg.Env
	cmd.Dir = cfg.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}

	// Plain pipes rather than cmd.StdoutPipe: Wait must not close the read
	// ends while the reader is still draining what the child wrote.
	var files []*os.File
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		files = append(files, r, w)
		return r, w, err
	}
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	inR, inW, err := pipe()
	if err != nil {
		closeAll()
		return nil, err
	}
	outR, outW, err := pipe()
	if err != nil {
		closeAll()
		return nil, err
	}
	errR, errW, err := pipe()
	if err != nil {
		closeAll()
		return nil, err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	if err := cmd.Start(); err != nil {
		closeAll()
		return nil, err
	}
	// The child has its copies; ours would keep the pipes from ever
	// reporting EOF.
	inR.Close()
	outW.Close()
	errW.Close()

	c := &child{
		mux: mux, log: log, cfg: cfg,
		cmd: cmd, pid: cmd.Process.Pid,
		stdin: inW, stdout: outR, stderr: errR,
		queue:    make(chan []byte, 256),
		quit:     make(chan struct{}),
		exited:   make(chan struct{}),
		readDone: make(chan struct{}),
		errDone:  make(chan struct{}),
		done:     make(chan struct{}),
	}
	go c.write()
	go c.read()
	go c.logStderr()
	go c.wait()
	return c, nil
}

// Send implements backend.Conn. Writes are queued for one writer goroutine,
// so messages never interleave and a child that stops reading blocks only
// until ctx ends.
func (c *child) Send(ctx context.Context, out backend.Outgoing) error {
	select {
	case <-c.done:
		return c.notSent()
	case <-c.quit:
		return backend.ErrClosed
	default:
	}
	select {
	case c.queue <- out.Body:
		return nil
	case <-c.done:
		return c.notSent()
	case <-c.quit:
		return backend.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// notSent is Send's error once the process is gone: the message never
// entered the queue, so it cannot have reached the server.
func (c *child) notSent() error {
	return fmt.Errorf("%w: %w", backend.ErrNotDelivered, c.Err())
}

// Done implements backend.Link.
func (c *child) Done() <-chan struct{} { return c.done }

// Err implements backend.Link.
func (c *child) Err() error {
	select {
	case <-c.done:
		return c.stateErr
	default:
		return nil
	}
}

func (c *child) write() {
	defer c.stdin.Close() // EOF tells the server to exit
	w := bufio.NewWriterSize(c.stdin, 64<<10)
	for {
		select {
		case b := <-c.queue:
			writeLine(w, b)
			// Batch whatever else is queued into one flush.
			for more := true; more; {
				select {
				case b := <-c.queue:
					writeLine(w, b)
				default:
					more = false
				}
			}
			if err := w.Flush(); err != nil {
				// The child closed stdin or died: it cannot serve us any more.
				c.log.Warn("write to backend stdin", "err", err)
				c.kill()
				return
			}
		case <-c.quit:
			return
		case <-c.done:
			return
		}
	}
}

// writeLine writes one message as one line. A newline byte in valid JSON
// can only be whitespace between tokens, so it becomes a space.
func writeLine(w *bufio.Writer, b []byte) {
	if bytes.IndexByte(b, '\n') >= 0 || bytes.IndexByte(b, '\r') >= 0 {
		b = bytes.Map(func(r rune) rune {
			if r == '\n' || r == '\r' {
				return ' '
			}
			return r
		}, b)
	}
	w.Write(b)
	w.WriteByte('\n')
}

func (c *child) read() {
	defer close(c.readDone)
	r := bufio.NewReaderSize(c.stdout, 64<<10)
	for {
		line, err := readLine(r, c.cfg.MaxMessageBytes)
		if t := bytes.TrimSpace(line); len(t) > 0 {
			if t[0] == '{' || t[0] == '[' {
				c.mux.Receive(c, t, nil)
			} else {
				// Servers that print banners on stdout break the protocol for
				// that line only.
				c.log.Warn("non-JSON line on backend stdout", "line", truncate(string(t), 512))
			}
		}
		if err != nil {
			if errors.Is(err, errLineTooLong) {
				c.log.Error("backend wrote an oversized message; stopping it", "limit", c.cfg.MaxMessageBytes)
			}
			// No more output means no more responses: the child is useless
			// even if it still runs.
			c.kill()
			return
		}
	}
}

// readLine returns the next line in a fresh slice (the Mux keeps results
// that alias it), without the newline.
func readLine(r *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		frag, err := r.ReadSlice('\n')
		if len(line)+len(frag) > limit {
			return nil, errLineTooLong
		}
		line = append(line, frag...)
		if err != bufio.ErrBufferFull {
			return bytes.TrimSuffix(line, []byte("\n")), err
		}
	}
}

func (c *child) logStderr() {
	defer close(c.errDone)
	r := bufio.NewReaderSize(c.stderr, 8<<10)
	for {
		// A line longer than the buffer is logged in pieces.
		frag, err := r.ReadSlice('\n')
		if line := strings.TrimRight(string(frag), "\r\n"); line != "" {
			c.log.Info("backend stderr", "line", line)
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}

// wait reaps the child and reports its death once its output is drained.
func (c *child) wait() {
	werr := c.cmd.Wait()
	close(c.exited)
	// The leader is gone, so the server is gone: whatever it started would
	// otherwise keep running, and keep the pipes open.
	c.signalGroup(syscall.SIGKILL)
	t := time.NewTimer(drainTimeout)
	for _, ch := range []chan struct{}{c.readDone, c.errDone} {
		select {
		case <-ch:
		case <-t.C:
			// Something outside the group holds the pipes: stop reading.
			c.stdout.Close()
			c.stderr.Close()
			<-ch
		}
	}
	t.Stop()
	c.stdout.Close()
	c.stderr.Close()
	cause := errors.New("backend process exited")
	if werr != nil {
		cause = fmt.Errorf("backend process exited: %w", werr)
	}
	c.dieOnce.Do(func() {
		c.stateErr = cause
		close(c.done)
	})
	c.mux.Lost(c, cause)
}

// kill stops the whole process group at once.
func (c *child) kill() { c.signalGroup(syscall.SIGKILL) }

func (c *child) signalGroup(sig syscall.Signal) {
	// The group id is the leader's pid (Setpgid). ESRCH (already gone) is fine.
	_ = syscall.Kill(-c.pid, sig)
}

// Close implements backend.Link: close stdin and give the server
// StopTimeout to exit, then SIGTERM the group and give it TermTimeout, then
// SIGKILL. When ctx ends first, it kills at once.
func (c *child) Close(ctx context.Context) error {
	c.quitOnce.Do(func() { close(c.quit) })
	steps := []struct {
		sig   syscall.Signal
		after time.Duration
	}{{0, c.cfg.StopTimeout}, {syscall.SIGTERM, c.cfg.TermTimeout}}
	for _, s := range steps {
		if s.sig != 0 {
			c.signalGroup(s.sig)
		}
		if c.waitExit(ctx, s.after) {
			<-c.done
			return nil
		}
	}
	c.kill()
	<-c.done
	return ctx.Err()
}

func (c *child) waitExit(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.exited:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
