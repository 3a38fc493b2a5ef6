package h1

import (
	"bufio"
	"net"
	"sync"
	"testing"
)

// rawServer accepts connections on a loopback port and runs serve for
// each request on them until it returns false, then closes the
// connection. It returns the base URL.
func rawServer(tb testing.TB, serve func(c net.Conn, br *bufio.Reader) bool) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for serve(c, br) {
				}
			})
		}
	})
	tb.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "http://" + l.Addr().String() + "/mcp"
}
