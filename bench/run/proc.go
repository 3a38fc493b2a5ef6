package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// proc is a child process the runner started, with its output in a log file.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	started time.Time
	done    chan struct{} // closed when the process has exited
	err     error         // its exit status, once done is closed
}

// startProc starts bin with args, output to logPath. The child gets its own
// process group so that a Ctrl-C at the terminal reaches only the runner,
// which then stops its children in order.
func startProc(name, logPath, bin string, args ...string) (*proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to grace, then kills the process.
func (p *proc) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// logTail returns the last n lines of the process's output.
func (p *proc) logTail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// describeExit explains why a process is gone, with the end of its log.
func (p *proc) describeExit() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s exited (%v)", p.name, p.err)
	if tail := p.logTail(15); tail != "" {
		fmt.Fprintf(&b, "; last output (%s):\n%s", p.logPath, indent(tail))
	} else {
		fmt.Fprintf(&b, " with no output")
	}
	return b.String()
}

func indent(s string) string { return "    " + strings.ReplaceAll(s, "\n", "\n    ") }

// waitReady polls ready every 5 ms until it reports true, the process
// exits, or timeout passes. It returns the time from process start.
func (p *proc) waitReady(ctx context.Context, timeout time.Duration, ready func(context.Context) bool) (time.Duration, error) {
	deadline := time.Now().Add(timeout)
	for {
		if ready(ctx) {
			return time.Since(p.started), nil
		}
		if p.exited() {
			return 0, errors.New(p.describeExit())
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s not ready after %s; last output (%s):\n%s", p.name, timeout, p.logPath, indent(p.logTail(15)))
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-p.done:
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// httpOK returns a readiness probe: GET url answers 200.
func httpOK(client *http.Client, url string) func(context.Context) bool {
	return func(ctx context.Context) bool {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false
		}
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
}

// tcpOpen returns a readiness probe: something accepts on addr.
func tcpOpen(addr string) func(context.Context) bool {
	return func(ctx context.Context) bool {
		c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
}

// freePort asks the kernel for a free port on 127.0.0.1. Another process
// could take it before the child binds it; on this single-user bench
// machine that is rare enough.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
