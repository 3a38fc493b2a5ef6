// Package toolalias maps deprecated tool names to the tools that replace
// them. The gateway rewrites a call to an alias into a call to its target
// before anything else looks at it, and marks the answer deprecated
// (Deprecation, Sunset and Link headers, RFC 9745 and RFC 8594). Aliases
// never chain: a target is never itself an alias.
//
// A Table is read on every tools/call, so a read is one atomic load and,
// when aliases exist, one map lookup without a lock; writers (config
// reload, the admin API) build a new map and swap it in.
package toolalias

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Alias maps the deprecated name From to the tool To.
type Alias struct {
	From string `json:"from"`
	To   string `json:"to"`
	// Sunset is when the alias is expected to stop working; zero: not
	// announced. The alias keeps working after it: removing it is the
	// operator's decision.
	Sunset time.Time `json:"sunset,omitzero"`
	// Link is a page about the deprecation (Link rel="deprecation").
	Link string `json:"link,omitempty"`
}

// Errors of Validate.
var (
	ErrEmpty = errors.New("alias and target names must not be empty")
	ErrChain = errors.New("aliases do not chain")
	ErrLink  = errors.New("link must be an http or https URL")
)

// Entry is a resolved alias with its precomputed headers and call count.
type Entry struct {
	Alias
	// SunsetHeader is Sunset as an HTTP-date; "" when unset.
	SunsetHeader string
	calls        *atomic.Int64
}

// Hit counts one call through the alias.
func (e *Entry) Hit() { e.calls.Add(1) }

// Status is an alias with the calls made through it since the start.
type Status struct {
	Alias
	Calls int64 `json:"calls"`
}

// Table is the current set of aliases. The zero Table has none.
type Table struct {
	set atomic.Pointer[map[string]*Entry] // nil: no aliases
	mu  sync.Mutex                        // serializes writers
}

// Resolve returns the alias named name, or nil.
func (t *Table) Resolve(name string) *Entry {
	m := t.set.Load()
	if m == nil {
		return nil
	}
	return (*m)[name]
}

// Active reports whether any alias exists.
func (t *Table) Active() bool { return t.set.Load() != nil }

// Replace swaps in list as the whole set (config reload). Call counts of
// aliases that stay are kept. Nothing changes when list is invalid.
func (t *Table) Replace(list []Alias) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.store(list)
}

// Set adds or changes one alias.
func (t *Table) Set(a Alias) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	list := t.listLocked()
	i := slices.IndexFunc(list, func(x Alias) bool { return x.From == a.From })
	if i >= 0 {
		list[i] = a
	} else {
		list = append(list, a)
	}
	return t.store(list)
}

// Delete removes the alias named from and reports whether it existed.
func (t *Table) Delete(from string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	list := t.listLocked()
	n := len(list)
	list = slices.DeleteFunc(list, func(x Alias) bool { return x.From == from })
	if len(list) == n {
		return false
	}
	_ = t.store(list) // a subset of a valid set is valid
	return true
}

// List returns every alias with its call count, sorted by name.
func (t *Table) List() []Status {
	m := t.set.Load()
	if m == nil {
		return []Status{}
	}
	out := make([]Status, 0, len(*m))
	for _, e := range *m {
		out = append(out, Status{Alias: e.Alias, Calls: e.calls.Load()})
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.From, b.From) })
	return out
}

func (t *Table) listLocked() []Alias {
	var list []Alias
	if m := t.set.Load(); m != nil {
		for _, e := range *m {
			list = append(list, e.Alias)
		}
	}
	return list
}

// store validates list and swaps it in, carrying call counts over.
func (t *Table) store(list []Alias) error {
	if err := Validate(list); err != nil {
		return err
	}
	if len(list) == 0 {
		t.set.Store(nil)
		return nil
	}
	var old map[string]*Entry
	if m := t.set.Load(); m != nil {
		old = *m
	}
	m := make(map[string]*Entry, len(list))
	for _, a := range list {
		e := &Entry{Alias: a, calls: new(atomic.Int64)}
		if prev := old[a.From]; prev != nil {
			e.calls = prev.calls
		}
		if !a.Sunset.IsZero() {
			e.SunsetHeader = a.Sunset.UTC().Format(http.TimeFormat)
		}
		m[a.From] = e
	}
	t.set.Store(&m)
	return nil
}

// Validate checks a whole set: names present, each alias listed once, no
// alias pointing to itself or to another alias, links that are URLs.
func Validate(list []Alias) error {
	from := make(map[string]bool, len(list))
	for _, a := range list {
		if strings.TrimSpace(a.From) == "" || strings.TrimSpace(a.To) == "" {
			return ErrEmpty
		}
		if from[a.From] {
			return fmt.Errorf("alias %q is listed twice", a.From)
		}
		from[a.From] = true
		if a.Link != "" {
			u, err := url.Parse(a.Link)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("alias %q: %w", a.From, ErrLink)
			}
		}
	}
	for _, a := range list {
		switch {
		case a.To == a.From:
			return fmt.Errorf("alias %q points to itself: %w", a.From, ErrChain)
		case from[a.To]:
			return fmt.Errorf("alias %q points to %q, which is an alias too: %w", a.From, a.To, ErrChain)
		}
	}
	return nil
}
