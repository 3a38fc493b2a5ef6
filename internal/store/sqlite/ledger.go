package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/paygate/paygate/internal/credits"
	"github.com/paygate/paygate/internal/store"
)

// Reserve charges every item of r or none, in one atomic step against
// memory, and queues one charge line per item.
func (s *Store) Reserve(ctx context.Context, r store.Reservation) (*store.Receipt, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	total, err := store.ValidateReservation(&r)
	if err != nil {
		return nil, err
	}
	now := r.Now
	if now.IsZero() {
		now = s.now()
	}

	claim, ok, checkDB := s.calls.claim(r.CallID)
	if !ok {
		return nil, fmt.Errorf("reserve call %s: %w", r.CallID, store.ErrDuplicateCall)
	}
	if checkDB && !r.FreshCallID {
		// The window has dropped older ids; ask the ledger's index.
		found, err := s.chargedInDB(ctx, r.CallID)
		if err != nil || found {
			s.calls.release(r.CallID, claim)
			if err == nil {
				err = store.ErrDuplicateCall
			}
			return nil, fmt.Errorf("reserve call %s: %w", r.CallID, err)
		}
	}
	rc, err := s.reserve(&r, claim, total, now)
	if err != nil {
		s.calls.release(r.CallID, claim)
		return nil, err
	}
	return rc, nil
}

func (s *Store) reserve(r *store.Reservation, claim *callInfo, total credits.Credits, now time.Time) (*store.Receipt, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	k := s.keys.byID[r.KeyID]
	if k == nil {
		return nil, fmt.Errorf("reserve call %s: key %s: %w", r.CallID, r.KeyID, store.ErrNotFound)
	}
	if k.revoked {
		return nil, fmt.Errorf("reserve call %s: key %s: %w", r.CallID, r.KeyID, store.ErrKeyInactive)
	}
	day, month := store.DayOf(now), store.MonthOf(now)
	n := int64(len(r.Items))

	mu := s.locks.of(k)
	mu.Lock()
	defer mu.Unlock()
	a := k.account() // work on a copy: nothing changes unless every check passes
	a.roll(day, month)
	if err := checkLimits(&a, r.Limits, total, n); err != nil {
		return nil, err
	}
	if a.balance < total {
		return nil, &store.LimitError{Kind: store.ErrInsufficientCredits, Need: total, Have: a.balance,
			Detail: fmt.Sprintf("balance %d, need %d", a.balance, total)}
	}
	a.spent += total
	a.calls += n
	a.dailyCalls += n
	a.monthlyCalls += n
	a.dailyCredits += total
	a.monthlyCredits += total
	a.lastUsed = nanos(now)

	items := make([]callItem, len(r.Items))
	b := s.w.lock()
	var seq int64
	for i, it := range r.Items {
		a.balance -= it.Amount
		items[i].amount = it.Amount
		seq = s.w.nextSeq()
		b.entries = append(b.entries, store.Entry{
			Seq: seq, Time: now, KeyID: k.id, Kind: store.EntryCharge, Delta: -it.Amount, BalanceAfter: a.balance,
			Tool: it.Tool, CallID: r.CallID, Item: i, RequestID: r.Meta.RequestID, Actor: r.Meta.Actor, Note: r.Meta.Note,
		})
	}
	b.accts = append(b.accts, acctRow{k.id, a})
	t := s.w.unlock(b)
	k.setAccount(a)
	s.calls.fill(claim, k.id, day, month, items)
	return &store.Receipt{Seq: seq, BalanceAfter: a.balance, Account: a.public(), Wait: t.wait}, nil
}

// checkLimits applies the spending limit and the quotas of the current
// periods (a already rolled).
func checkLimits(a *account, l store.Limits, total credits.Credits, n int64) error {
	if l.SpendingLimit > 0 && a.spent+total > l.SpendingLimit {
		return &store.LimitError{Kind: store.ErrSpendingLimit, Need: total, Have: max(l.SpendingLimit-a.spent, 0),
			Detail: fmt.Sprintf("spending limit %d, spent %d", l.SpendingLimit, a.spent)}
	}
	q := l.Quota
	quota := func(limit, used, need int64, what string) error {
		if limit > 0 && used+need > limit {
			return &store.LimitError{Kind: store.ErrQuotaExceeded, Need: need, Have: max(limit-used, 0),
				Detail: fmt.Sprintf("%s quota %d reached", what, limit), Period: store.QuotaPeriod(what)}
		}
		return nil
	}
	if err := quota(q.DailyCalls, a.dailyCalls, n, "daily call"); err != nil {
		return err
	}
	if err := quota(q.MonthlyCalls, a.monthlyCalls, n, "monthly call"); err != nil {
		return err
	}
	if err := quota(q.DailyCredits, a.dailyCredits, total, "daily credit"); err != nil {
		return err
	}
	return quota(q.MonthlyCredits, a.monthlyCredits, total, "monthly credit")
}

// Refund gives back one item of a call. A second refund of the item is a
// no-op that reports the current balance.
func (s *Store) Refund(ctx context.Context, r store.Refund) (*store.Receipt, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	if err := credits.Validate(r.Amount); err != nil {
		return nil, fmt.Errorf("refund call %s: %w", r.CallID, err)
	}
	c, keyID := s.calls.get(r.CallID)
	if c == nil {
		loaded, err := s.loadCall(ctx, r.CallID)
		if err != nil {
			return nil, fmt.Errorf("refund call %s: %w", r.CallID, err)
		}
		if loaded != nil {
			c, keyID = s.calls.adopt(r.CallID, loaded)
		}
	}
	if c == nil || keyID == "" || keyID != r.KeyID {
		return nil, fmt.Errorf("refund call %s item %d on key %s: charge %w", r.CallID, r.Item, r.KeyID, store.ErrNotFound)
	}
	now := r.Now
	if now.IsZero() {
		now = s.now()
	}

	s.mu.RLock()
	defer s.mu.RUnlock()
	k := s.keys.byID[r.KeyID]
	if k == nil {
		return nil, fmt.Errorf("refund call %s: key %s: %w", r.CallID, r.KeyID, store.ErrNotFound)
	}
	mu := s.locks.of(k)
	mu.Lock()
	defer mu.Unlock()
	if r.Item < 0 || r.Item >= len(c.items) {
		return nil, fmt.Errorf("refund call %s item %d: %w", r.CallID, r.Item, store.ErrNotFound)
	}
	it := &c.items[r.Item]
	if it.refunded {
		// Already given back: answer with the balance, durable no sooner
		// than the first refund.
		a := k.account()
		return &store.Receipt{BalanceAfter: a.balance, Account: a.public(), Wait: s.w.barrier().wait}, nil
	}
	amount := r.Amount
	if amount == 0 {
		amount = it.amount
	}
	if amount > it.amount {
		return nil, fmt.Errorf("refund call %s item %d: %d exceeds the charge of %d", r.CallID, r.Item, amount, it.amount)
	}
	a := k.account()
	a.balance += amount
	a.spent -= amount
	full := amount == it.amount
	if full {
		a.calls--
	}
	// Quota counters give back only within the period the charge counted in.
	if a.day == c.day {
		a.dailyCredits -= amount
		if full {
			a.dailyCalls--
		}
	}
	if a.month == c.month {
		a.monthlyCredits -= amount
		if full {
			a.monthlyCalls--
		}
	}
	b := s.w.lock()
	seq := s.w.nextSeq()
	b.entries = append(b.entries, store.Entry{
		Seq: seq, Time: now, KeyID: k.id, Kind: store.EntryRefund, Delta: amount, BalanceAfter: a.balance,
		Tool: r.Tool, CallID: r.CallID, Item: r.Item, RequestID: r.Meta.RequestID, Actor: r.Meta.Actor, Note: r.Meta.Note,
	})
	b.accts = append(b.accts, acctRow{k.id, a})
	t := s.w.unlock(b)
	k.setAccount(a)
	it.refunded = true
	return &store.Receipt{Seq: seq, BalanceAfter: a.balance, Account: a.public(), Wait: t.wait}, nil
}

// TopUp adds credits to a key: kind EntryTopUp (default) or EntryGrant,
// both positive, or EntryAdjustment, which may be negative and is the only
// way a balance goes below zero.
func (s *Store) TopUp(ctx context.Context, keyID string, amount credits.Credits, kind store.EntryKind, m store.Meta) (*store.Receipt, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	kind, err := store.ValidateTopUp(keyID, amount, kind)
	if err != nil {
		return nil, err
	}
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	k := s.keys.byID[keyID]
	if k == nil {
		return nil, fmt.Errorf("top up key %s: %w", keyID, store.ErrNotFound)
	}
	if k.revoked && kind != store.EntryAdjustment {
		return nil, fmt.Errorf("top up key %s: %w", keyID, store.ErrKeyInactive)
	}
	mu := s.locks.of(k)
	mu.Lock()
	defer mu.Unlock()
	a := k.account()
	if a.balance+amount > credits.Max {
		return nil, fmt.Errorf("top up key %s: balance %w", keyID, credits.ErrTooLarge)
	}
	a.balance += amount
	b := s.w.lock()
	seq := s.w.nextSeq()
	b.entries = append(b.entries, store.Entry{Seq: seq, Time: now, KeyID: k.id, Kind: kind, Delta: amount, BalanceAfter: a.balance,
		RequestID: m.RequestID, Actor: m.Actor, Note: m.Note})
	b.accts = append(b.accts, acctRow{k.id, a})
	t := s.w.unlock(b)
	k.setAccount(a)
	return &store.Receipt{Seq: seq, BalanceAfter: a.balance, Account: a.public(), Wait: t.wait}, nil
}

// Transfer moves credits between two keys in one step; both accounts are
// locked in id order so opposite transfers cannot deadlock.
func (s *Store) Transfer(ctx context.Context, from, to string, amount credits.Credits, m store.Meta) (*store.Receipt, *store.Receipt, error) {
	if err := s.usable(); err != nil {
		return nil, nil, err
	}
	if err := store.ValidateTransferAmount(from, to, amount); err != nil {
		return nil, nil, err
	}
	if from == to {
		return nil, nil, fmt.Errorf("transfer %s -> %s: same key: %w", from, to, store.ErrConflict)
	}
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	src, dst := s.keys.byID[from], s.keys.byID[to]
	switch {
	case src == nil:
		return nil, nil, fmt.Errorf("transfer from %s: %w", from, store.ErrNotFound)
	case dst == nil:
		return nil, nil, fmt.Errorf("transfer to %s: %w", to, store.ErrNotFound)
	case src.revoked:
		return nil, nil, fmt.Errorf("transfer from %s: %w", from, store.ErrKeyInactive)
	case dst.revoked:
		return nil, nil, fmt.Errorf("transfer to %s: %w", to, store.ErrKeyInactive)
	}
	defer s.locks.lockPair(src, dst)()
	sa, da := src.account(), dst.account()
	if sa.balance < amount {
		return nil, nil, &store.LimitError{Kind: store.ErrInsufficientCredits, Need: amount, Have: sa.balance,
			Detail: fmt.Sprintf("balance %d, transfer %d", sa.balance, amount)}
	}
	if da.balance+amount > credits.Max {
		return nil, nil, fmt.Errorf("transfer to %s: balance %w", to, credits.ErrTooLarge)
	}
	sa.balance -= amount
	da.balance += amount
	b := s.w.lock()
	outSeq := s.w.nextSeq()
	b.entries = append(b.entries, store.Entry{Seq: outSeq, Time: now, KeyID: from, Kind: store.EntryTransferOut, Delta: -amount,
		BalanceAfter: sa.balance, Counterparty: to, RequestID: m.RequestID, Actor: m.Actor, Note: m.Note})
	inSeq := s.w.nextSeq()
	b.entries = append(b.entries, store.Entry{Seq: inSeq, Time: now, KeyID: to, Kind: store.EntryTransferIn, Delta: amount,
		BalanceAfter: da.balance, Counterparty: from, RequestID: m.RequestID, Actor: m.Actor, Note: m.Note})
	b.accts = append(b.accts, acctRow{src.id, sa}, acctRow{dst.id, da})
	t := s.w.unlock(b)
	src.setAccount(sa)
	dst.setAccount(da)
	return &store.Receipt{Seq: outSeq, BalanceAfter: sa.balance, Account: sa.public(), Wait: t.wait},
		&store.Receipt{Seq: inSeq, BalanceAfter: da.balance, Account: da.public(), Wait: t.wait}, nil
}

// Account returns a key's account from memory.
func (s *Store) Account(_ context.Context, keyID string) (store.Account, error) {
	if s.closed.Load() {
		return store.Account{}, store.ErrClosed
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	k := s.keys.byID[keyID]
	if k == nil {
		return store.Account{}, fmt.Errorf("account %s: %w", keyID, store.ErrNotFound)
	}
	a := s.locks.snapshot(k)
	return a.public(), nil
}
