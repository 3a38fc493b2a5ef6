//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package h1

// prober is empty where the socket cannot be peeked at: a connection the
// server closed is found when the request on it fails.
type prober struct{}

func (cn *conn) initProbe() {}

func (cn *conn) alive() bool { return true }
