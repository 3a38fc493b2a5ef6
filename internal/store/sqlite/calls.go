package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"github.com/paygate/paygate/internal/credits"
	"github.com/paygate/paygate/internal/store"
)

// callInfo is what a charged call left behind: enough to refuse its call
// id again and to refund its items without SQL.
type callInfo struct {
	keyID string // "" while the Reserve that claimed the id is in progress
	day   int32  // quota periods the charge counted in
	month int32
	items []callItem // guarded by the owning account's lock once keyID is set
}

type callItem struct {
	amount   credits.Credits
	refunded bool
}

// callWindow remembers the most recent call ids in two generations: when
// the current one fills, the older one is dropped. Lookups move hits to the
// current generation so a call being refunded is not dropped mid-way.
type callWindow struct {
	mu       sync.Mutex
	cur, old map[string]*callInfo
	genSize  int
	// complete is true while the window holds every call id the ledger
	// has; then a miss proves a call id is new without asking SQLite.
	complete bool
}

func newCallWindow(capacity int) *callWindow {
	g := max(capacity/2, 1)
	return &callWindow{cur: make(map[string]*callInfo), old: map[string]*callInfo{}, genSize: g, complete: true}
}

func (w *callWindow) putLocked(id string, c *callInfo) {
	if len(w.cur) >= w.genSize {
		if len(w.old) > 0 {
			w.complete = false
		}
		w.old, w.cur = w.cur, make(map[string]*callInfo, w.genSize)
	}
	w.cur[id] = c
}

func (w *callWindow) getLocked(id string) *callInfo {
	if c := w.cur[id]; c != nil {
		return c
	}
	if c := w.old[id]; c != nil {
		delete(w.old, id)
		w.putLocked(id, c)
		return c
	}
	return nil
}

// claim reserves id for a new charge. ok is false when the id is known;
// checkDB is true when the window cannot prove the id is new.
func (w *callWindow) claim(id string) (c *callInfo, ok, checkDB bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.getLocked(id) != nil {
		return nil, false, false
	}
	c = &callInfo{}
	w.putLocked(id, c)
	return c, true, !w.complete
}

// release forgets a claim whose Reserve failed.
func (w *callWindow) release(id string, c *callInfo) {
	w.mu.Lock()
	if w.cur[id] == c {
		delete(w.cur, id)
	} else if w.old[id] == c {
		delete(w.old, id)
	}
	w.mu.Unlock()
}

// fill completes a claim; called with the key's account lock held.
func (w *callWindow) fill(c *callInfo, keyID string, day, month int32, items []callItem) {
	w.mu.Lock()
	c.keyID, c.day, c.month, c.items = keyID, day, month, items
	w.mu.Unlock()
}

// get returns the call's info and its key id, or nil.
func (w *callWindow) get(id string) (*callInfo, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.getLocked(id)
	if c == nil {
		return nil, ""
	}
	return c, c.keyID
}

// adopt installs c for id unless another goroutine did first.
func (w *callWindow) adopt(id string, c *callInfo) (*callInfo, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if have := w.getLocked(id); have != nil {
		return have, have.keyID
	}
	w.putLocked(id, c)
	return c, c.keyID
}

// loadCalls fills the window with the newest calls of the ledger.
func (s *Store) loadCalls(ctx context.Context, db *sql.DB) error {
	// Only the newest calls: a refund of an older one reads it from the
	// ledger (the window is then incomplete), and a large window loaded at
	// every start would be idle memory (a few MB per 30k calls).
	limit := min(s.calls.genSize, startupCalls)
	// Newest first: a call's refunds come before its charges, and its items
	// arrive last to first, so item 0 closes a complete call.
	rows, err := db.QueryContext(ctx, `SELECT call_id, key_id, kind, item, delta, time FROM ledger
		WHERE call_id <> '' ORDER BY seq DESC LIMIT ?`, limit*2+1)
	if err != nil {
		return err
	}
	defer rows.Close()
	type partial struct {
		c        *callInfo
		refunded map[int]bool
	}
	seen := make(map[string]*partial)
	n := 0
	for rows.Next() {
		n++
		var (
			id, keyID, kind string
			item            int
			delta, t        int64
		)
		if err := rows.Scan(&id, &keyID, &kind, &item, &delta, &t); err != nil {
			return err
		}
		p := seen[id]
		if p == nil {
			p = &partial{c: &callInfo{keyID: keyID}}
			seen[id] = p
		}
		switch store.EntryKind(kind) {
		case store.EntryRefund:
			if p.refunded == nil {
				p.refunded = make(map[int]bool)
			}
			p.refunded[item] = true
		case store.EntryCharge:
			if p.c.items == nil {
				p.c.items = make([]callItem, item+1)
				day, month := store.DayOf(fromNanos(t)), store.MonthOf(fromNanos(t))
				p.c.day, p.c.month = day, month
			}
			if item < len(p.c.items) {
				p.c.items[item] = callItem{amount: -delta, refunded: p.refunded[item]}
			}
			if item == 0 && len(s.calls.cur) < limit {
				s.calls.cur[id] = p.c
			}
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	s.calls.complete = n <= limit*2 && len(s.calls.cur) < limit
	return nil
}

// startupCalls bounds how many recent calls Open loads into the window.
const startupCalls = 4096

// The call queries repeat the partial index's predicate (a non-empty call_id):
// SQLite uses a partial index only when the query's WHERE clause implies
// it, and a bound parameter alone does not.
const (
	qCallCharged = "SELECT 1 FROM ledger WHERE call_id = ? AND call_id <> '' LIMIT 1"
	qCallLines   = "SELECT key_id, kind, item, delta, time FROM ledger WHERE call_id = ? AND call_id <> '' ORDER BY seq"
)

// chargedInDB reports whether the ledger has any line for call id.
func (s *Store) chargedInDB(ctx context.Context, id string) (bool, error) {
	var one int
	err := s.rq.callCharged.QueryRowContext(ctx, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w: check call id: %w", store.ErrUnavailable, err)
	}
	return true, nil
}

// loadCall reads a call's charges and refunds from the ledger, for a
// refund whose call has left the window.
func (s *Store) loadCall(ctx context.Context, id string) (*callInfo, error) {
	rows, err := s.rdb.QueryContext(ctx, qCallLines, id)
	if err != nil {
		return nil, fmt.Errorf("%w: load call: %w", store.ErrUnavailable, err)
	}
	defer rows.Close()
	var c *callInfo
	for rows.Next() {
		var (
			keyID, kind string
			item        int
			delta, t    int64
		)
		if err := rows.Scan(&keyID, &kind, &item, &delta, &t); err != nil {
			return nil, err
		}
		switch store.EntryKind(kind) {
		case store.EntryCharge:
			if c == nil {
				c = &callInfo{keyID: keyID, day: store.DayOf(fromNanos(t)), month: store.MonthOf(fromNanos(t))}
			}
			for len(c.items) <= item {
				c.items = append(c.items, callItem{})
			}
			c.items[item].amount = -delta
		case store.EntryRefund:
			if c != nil && item < len(c.items) {
				c.items[item].refunded = true
			}
		}
	}
	return c, rows.Err()
}
