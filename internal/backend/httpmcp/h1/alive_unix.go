//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package h1

import "syscall"

// prober peeks at an idle connection's socket without blocking.
type prober struct {
	rc    syscall.RawConn
	fn    func(fd uintptr) bool // p.peek, bound once
	alive bool
	b     [1]byte
}

func (cn *conn) initProbe() {
	if sc, ok := cn.nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			cn.probe.rc = rc
			cn.probe.fn = cn.probe.peek
		}
	}
}

// alive reports whether an idle connection can still carry a request: the
// server has not closed it, and has sent nothing (an idle connection has
// nothing to say). Go's sockets are non-blocking, so peeking at an empty
// one answers EAGAIN at once.
func (cn *conn) alive() bool {
	p := &cn.probe
	if p.rc == nil {
		return true
	}
	p.alive = false
	return p.rc.Read(p.fn) == nil && p.alive
}

func (p *prober) peek(fd uintptr) bool {
	_, _, err := syscall.Recvfrom(int(fd), p.b[:], syscall.MSG_PEEK)
	p.alive = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
	return true // done: never wait for the socket to become readable
}
