package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestCanonical(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"absent", ``, `{}`},
		{"null", `null`, `{}`},
		{"empty object", ` { } `, `{}`},
		{"sorted keys and no whitespace", "{\n \"b\" : 1 ,\t\"a\":[ true , null ]}", `{"a":[true,null],"b":1}`},
		{"nested objects sorted", `{"z":{"y":1,"x":2},"a":0}`, `{"a":0,"z":{"x":2,"y":1}}`},
		{"duplicate key: last wins", `{"a":1,"a":2}`, `{"a":2}`},
		{"integer kept exactly", `{"id":123456789012345678901234567890}`, `{"id":123456789012345678901234567890}`},
		{"minus zero", `{"n":-0}`, `{"n":0}`},
		{"float that is an integer", `{"n":1.0}`, `{"n":1}`},
		{"exponent that is an integer", `{"n":1e2}`, `{"n":100}`},
		{"upper-case exponent", `{"n":2.5E0}`, `{"n":2.5}`},
		{"fraction", `{"n":0.50}`, `{"n":0.5}`},
		{"large float", `{"n":1.5e300}`, `{"n":1.5e+300}`},
		{"float zero", `{"n":-0.0}`, `{"n":0}`},
		{"out of range keeps literal", `{"n":1E999}`, `{"n":1e999}`},
		{"escapes normalized", `{"s":"\u0041\/\u00e9\n"}`, `{"s":"A/é\u000a"}`},
		{"html characters unescaped", `{"s":"<a&b>"}`, `{"s":"<a&b>"}`},
		{"quote and backslash", `{"s":"\"\\"}`, `{"s":"\"\\"}`},
		{"arrays keep order", `[3,1,2]`, `[3,1,2]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Canonical(nil, json.RawMessage(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("Canonical(%s) = %s, want %s", tc.in, got, tc.want)
			}
			if !json.Valid(got) {
				t.Fatalf("not JSON: %s", got)
			}
		})
	}
	for _, bad := range []string{`{`, `{"a":1} {}`, `{"a":1}x`, `nope`} {
		if _, err := Canonical(nil, json.RawMessage(bad)); !errors.Is(err, ErrNotJSON) {
			t.Errorf("Canonical(%s): %v, want ErrNotJSON", bad, err)
		}
	}
}

func TestNewKey(t *testing.T) {
	k := func(scope, tool, args string) Key {
		t.Helper()
		key, err := NewKey(scope, tool, json.RawMessage(args))
		if err != nil {
			t.Fatal(err)
		}
		return key
	}
	base := k("key_1", "search", `{"q":"x","n":1}`)
	if k("key_1", "search", ` { "n" : 1.0 , "q" : "x" } `) != base {
		t.Error("the same arguments written differently got different keys")
	}
	for name, other := range map[string]Key{
		"other scope":     k("key_2", "search", `{"q":"x","n":1}`),
		"other tool":      k("key_1", "search2", `{"q":"x","n":1}`),
		"other arguments": k("key_1", "search", `{"q":"y","n":1}`),
		"shifted split":   k("key_1s", "earch", `{"q":"x","n":1}`),
	} {
		if other == base {
			t.Errorf("%s: same key", name)
		}
	}
	if k("", "t", ``) != k("", "t", `{}`) {
		t.Error("absent and empty arguments differ")
	}
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func key(i int) Key {
	k, _ := NewKey("s", "t", json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)))
	return k
}

func TestTTL(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c := New(Options{MaxEntries: 10, MaxBytes: 1 << 20, Now: clk.Now})
	c.Put(key(1), "t", json.RawMessage(`{"v":1}`), 10*time.Second)
	c.Put(key(2), "t", json.RawMessage(`{"v":2}`), 0) // no TTL: not stored
	if v, ok := c.Get(key(1)); !ok || string(v) != `{"v":1}` {
		t.Fatalf("fresh entry: %s %v", v, ok)
	}
	clk.Add(9 * time.Second)
	if _, ok := c.Get(key(1)); !ok {
		t.Fatal("entry gone before its TTL")
	}
	clk.Add(time.Second)
	if _, ok := c.Get(key(1)); ok {
		t.Fatal("entry served at its expiry")
	}
	if _, ok := c.Get(key(2)); ok {
		t.Fatal("an entry without TTL was stored")
	}
	s := c.Stats()
	if s.Hits != 2 || s.Misses != 2 || s.Expired != 1 || s.Entries != 0 || s.Bytes != 0 || s.HitRate != 0.5 {
		t.Fatalf("stats %+v", s)
	}
}

func TestLRUBounds(t *testing.T) {
	result := json.RawMessage(`{"content":[]}`)
	size := int64(entryOverhead + len("t") + len(result))

	t.Run("entries", func(t *testing.T) {
		c := New(Options{MaxEntries: 3, MaxBytes: 1 << 20})
		for i := range 3 {
			c.Put(key(i), "t", result, time.Hour)
		}
		c.Get(key(0)) // 0 is now the most recently used; 1 the least
		c.Put(key(3), "t", result, time.Hour)
		if _, ok := c.Get(key(1)); ok {
			t.Fatal("the least recently used entry survived")
		}
		for _, i := range []int{0, 2, 3} {
			if _, ok := c.Get(key(i)); !ok {
				t.Fatalf("entry %d evicted", i)
			}
		}
		if s := c.Stats(); s.Entries != 3 || s.Evictions != 1 || s.Bytes != 3*size {
			t.Fatalf("stats %+v", s)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		c := New(Options{MaxEntries: 100, MaxBytes: 2*size + size/2})
		for i := range 5 {
			c.Put(key(i), "t", result, time.Hour)
		}
		if s := c.Stats(); s.Entries != 2 || s.Bytes != 2*size {
			t.Fatalf("stats %+v", s)
		}
		if _, ok := c.Get(key(4)); !ok {
			t.Fatal("newest entry evicted")
		}
		big := make(json.RawMessage, 3*size)
		c.Put(key(9), "t", big, time.Hour)
		if _, ok := c.Get(key(9)); ok {
			t.Fatal("an entry larger than the byte bound was stored")
		}
		c.SetLimits(100, size)
		if s := c.Stats(); s.Entries != 1 || s.MaxBytes != size {
			t.Fatalf("after shrinking: %+v", s)
		}
	})
	t.Run("replace", func(t *testing.T) {
		c := New(Options{MaxEntries: 10, MaxBytes: 1 << 20})
		c.Put(key(1), "t", json.RawMessage(`1`), time.Hour)
		c.Put(key(1), "t", json.RawMessage(`22`), time.Hour)
		if v, _ := c.Get(key(1)); string(v) != `22` {
			t.Fatalf("got %s", v)
		}
		if s := c.Stats(); s.Entries != 1 || s.Bytes != int64(entryOverhead+1+2) {
			t.Fatalf("stats %+v", s)
		}
	})
}

func TestPutCopies(t *testing.T) {
	c := New(Options{MaxEntries: 10, MaxBytes: 1 << 20})
	buf := []byte(`{"v":1}`)
	c.Put(key(1), "t", buf, time.Hour)
	copy(buf, `{"v":2}`)
	if v, _ := c.Get(key(1)); string(v) != `{"v":1}` {
		t.Fatalf("the cache kept the caller's buffer: %s", v)
	}
}

func TestClear(t *testing.T) {
	c := New(Options{MaxEntries: 10, MaxBytes: 1 << 20})
	for i := range 4 {
		tool := "a"
		if i%2 == 1 {
			tool = "b"
		}
		k, _ := NewKey("s", tool, json.RawMessage(fmt.Sprint(i)))
		c.Put(k, tool, json.RawMessage(`{}`), time.Hour)
	}
	if s := c.Stats(); s.Tools["a"] != 2 || s.Tools["b"] != 2 {
		t.Fatalf("per tool %+v", s.Tools)
	}
	if n := c.Clear("a"); n != 2 {
		t.Fatalf("Clear(a) = %d", n)
	}
	if n := c.Clear(""); n != 2 {
		t.Fatalf("Clear() = %d", n)
	}
	if s := c.Stats(); s.Entries != 0 || s.Bytes != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestConcurrentUse(t *testing.T) {
	c := New(Options{MaxEntries: 50, MaxBytes: 1 << 20})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				k := key((g*7 + i) % 100)
				if _, ok := c.Get(k); !ok {
					c.Put(k, "t", json.RawMessage(`{}`), time.Hour)
				}
				if i%97 == 0 {
					c.Clear("")
				}
			}
		}()
	}
	wg.Wait()
	if s := c.Stats(); s.Entries > 50 || s.Hits+s.Misses != 8*500 {
		t.Fatalf("stats %+v", s)
	}
}

func BenchmarkNewKey(b *testing.B) {
	args := json.RawMessage(`{"query":"paygate benchmarks","limit":10,"filters":{"lang":"en","since":"2026-01-01"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewKey("key_0123456789abcdef", "search", args); err != nil {
			b.Fatal(err)
		}
	}
}
