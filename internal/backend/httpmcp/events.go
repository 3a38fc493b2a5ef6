package httpmcp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"time"
)

// event is one server-sent event.
type event struct {
	name  string
	id    string
	data  []byte // a fresh slice: the Mux keeps results that alias it
	retry time.Duration
}

var errEventTooLarge = errors.New("server-sent event exceeds the size limit")

// readEvents parses the text/event-stream r and calls fn for each event
// until r ends, fails, or fn returns false. Events without data are passed
// too: they may carry an id or a retry.
func readEvents(r io.Reader, limit int, fn func(*event) bool) error {
	br := bufio.NewReaderSize(r, 32<<10)
	var ev event
	var data []byte
	seen := false
	for {
		line, err := readEventLine(br, limit)
		if err != nil {
			return err // an event cut off by EOF is dropped, as the SSE spec says
		}
		if len(line) == 0 {
			if seen {
				ev.data = data
				if !fn(&ev) {
					return nil
				}
			}
			ev, data, seen = event{}, nil, false
			continue
		}
		if line[0] == ':' {
			continue // comment (keep-alive)
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		seen = true
		switch string(field) {
		case "data":
			if len(data)+len(value) > limit {
				return errEventTooLarge
			}
			if data != nil {
				data = append(data, '\n')
			} else {
				data = make([]byte, 0, len(value))
			}
			data = append(data, value...)
		case "event":
			ev.name = string(value)
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				ev.id = string(value)
			}
		case "retry":
			if n, err := strconv.Atoi(string(value)); err == nil && n >= 0 {
				ev.retry = time.Duration(n) * time.Millisecond
			}
		}
	}
}

// readEventLine returns one line without its line ending.
func readEventLine(br *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(line)+len(frag) > limit+2 {
			return nil, errEventTooLarge
		}
		if err == bufio.ErrBufferFull {
			line = append(line, frag...)
			continue
		}
		if err != nil {
			return nil, err
		}
		if line != nil {
			frag = append(line, frag...)
		}
		frag = bytes.TrimSuffix(frag, []byte("\n"))
		return bytes.TrimSuffix(frag, []byte("\r")), nil
	}
}
