package echoserver

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
)

// ServeStdio answers newline-delimited JSON-RPC messages read from r on w
// until r ends. Replies go through one writer goroutine that flushes only
// when no other reply is waiting, so a burst of requests costs one write.
// With Delay set, each request is answered on its own goroutine (replies
// may then come out of order, as JSON-RPC allows).
func (s *Server) ServeStdio(r io.Reader, w io.Writer) error {
	replies := make(chan *[]byte, 1024)
	var pool sync.Pool // *[]byte
	getBuf := func() *[]byte {
		if b, ok := pool.Get().(*[]byte); ok {
			*b = (*b)[:0]
			return b
		}
		b := make([]byte, 0, 1024)
		return &b
	}

	writeErr := make(chan error, 1)
	go func() {
		bw := bufio.NewWriterSize(w, 64<<10)
		var err error
		for b := range replies {
			if err == nil {
				_, err = bw.Write(*b)
				if err == nil && len(replies) == 0 {
					err = bw.Flush()
				}
			}
			if cap(*b) <= 1<<20 {
				pool.Put(b)
			}
		}
		if err == nil {
			err = bw.Flush()
		}
		writeErr <- err
	}()

	answer := func(line []byte) {
		b := getBuf()
		if out := s.AppendReply(*b, line); len(out) > 0 {
			*b = append(out, '\n')
			replies <- b
			return
		}
		pool.Put(b)
	}

	var inflight sync.WaitGroup
	br := bufio.NewReaderSize(r, 64<<10)
	var long []byte // a line longer than the reader's buffer
	var readErr error
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, line...)
			continue
		}
		if long != nil {
			line = append(long, line...)
			long = nil
		}
		if len(bytes.TrimSpace(line)) > 0 {
			if s.Delay > 0 {
				own := bytes.Clone(line)
				inflight.Go(func() { answer(own) })
			} else {
				answer(line) // ReadSlice's bytes are valid until the next read
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				readErr = fmt.Errorf("read stdin: %w", err)
			}
			break
		}
	}
	inflight.Wait()
	close(replies)
	if err := <-writeErr; err != nil {
		return fmt.Errorf("write stdout: %w", err)
	}
	return readErr
}
