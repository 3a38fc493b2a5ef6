package streamable

import (
	"fmt"
	"testing"
)

func TestParseAccept(t *testing.T) {
	for _, tc := range []struct {
		accept    []string
		json, sse bool
	}{
		{nil, true, false},
		{[]string{""}, true, false},
		{[]string{"*/*"}, true, false},
		{[]string{"application/json"}, true, false},
		{[]string{"application/json; charset=utf-8"}, true, false},
		{[]string{"text/event-stream"}, false, true},
		{[]string{"application/json, text/event-stream"}, true, true},
		{[]string{"application/json", "text/event-stream"}, true, true},
		{[]string{"text/event-stream, */*;q=0.8"}, true, true},
		{[]string{"application/json;q=0, text/event-stream"}, false, true},
		{[]string{"text/html"}, false, false},
		{[]string{"Application/JSON"}, true, false},
	} {
		t.Run(fmt.Sprint(tc.accept), func(t *testing.T) {
			j, s := parseAccept(tc.accept)
			if j != tc.json || s != tc.sse {
				t.Fatalf("json %v sse %v, want %v %v", j, s, tc.json, tc.sse)
			}
		})
	}
}

func TestEventID(t *testing.T) {
	st := newStream(12, true, 4)
	id := string(st.eventID(nil, 345))
	if id != "12_345" {
		t.Fatal(id)
	}
	for _, tc := range []struct {
		in       string
		num, seq uint64
		ok       bool
	}{
		{"12_345", 12, 345, true},
		{"0_0", 0, 0, true},
		{"12", 0, 0, false},
		{"a_1", 0, 0, false},
		{"1_-1", 0, 0, false},
		{"1_2_3", 0, 0, false},
	} {
		num, seq, ok := parseEventID(tc.in)
		if ok != tc.ok || ok && (num != tc.num || seq != tc.seq) {
			t.Errorf("parseEventID(%q) = %d %d %v", tc.in, num, seq, ok)
		}
	}
}

// Pretty-printed JSON becomes several data lines, which SSE clients join
// with "\n" back into the same (whitespace-equivalent) JSON.
func TestEventEncoding(t *testing.T) {
	st := newStream(3, true, 4)
	var s sse
	s.appendEvent(st, &event{seq: 9, data: []byte("{\n  \"a\": 1\r\n}")})
	want := "id: 3_9\nevent: message\ndata: {\ndata:   \"a\": 1\ndata: \ndata: }\n\n"
	if string(s.buf) != want {
		t.Fatalf("got %q\nwant %q", s.buf, want)
	}
	st.ids = false
	s.buf = s.buf[:0]
	s.appendEvent(st, &event{seq: 1, data: []byte(`{}`)})
	if string(s.buf) != "event: message\ndata: {}\n\n" {
		t.Fatalf("got %q", s.buf)
	}
}

// The buffer drops the oldest events past its limit, but never a response
// no writer has written.
func TestStreamTrim(t *testing.T) {
	st := newStream(1, true, 2)
	for i, reply := range []bool{true, false, false, true, false} {
		if _, err := st.append(fmt.Appendf(nil, "%d", i+1), reply); err != nil {
			t.Fatal(err)
		}
	}
	var got []uint64
	for _, e := range st.events {
		got = append(got, e.seq)
	}
	if fmt.Sprint(got) != "[1 3 4 5]" {
		t.Fatalf("kept %v, want [1 3 4 5] (2 notifications, unwritten responses not counted)", got)
	}
	st.written = 5 // written responses may go
	st.trimLocked()
	got = got[:0]
	for _, e := range st.events {
		got = append(got, e.seq)
	}
	if fmt.Sprint(got) != "[4 5]" {
		t.Fatalf("kept %v, want [4 5]", got)
	}
	st.end()
	if _, err := st.append([]byte("x"), false); err != errStreamEnded {
		t.Fatalf("append after end: %v", err)
	}
}
