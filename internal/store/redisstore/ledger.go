package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/internal/credits"
	"github.com/paygate/paygate/internal/store"
)

// acctFields are the account hash's fields, in the order accountOf reads.
var acctFields = []string{"bal", "sp", "calls", "last", "day", "dc", "dcr", "mon", "mc", "mcr"}

// accountOf decodes an HMGET of acctFields; ok is false when the account
// does not exist.
func accountOf(vals []any) (store.Account, bool) {
	str := make([]string, len(acctFields)+1)
	for i, v := range vals {
		s, _ := v.(string)
		str[i] = s
	}
	if vals[0] == nil {
		return store.Account{}, false
	}
	str[len(acctFields)] = "0"
	a, _ := parseAccount(str)
	return a, true
}

// parseAccount decodes the account fields of a script reply (acctFields
// then seq) and returns the account and the seq.
func parseAccount(f []string) (store.Account, int64) {
	n := func(i int) int64 {
		v, _ := strconv.ParseInt(f[i], 10, 64)
		return v
	}
	return store.Account{
		Balance: n(0), Spent: n(1), Calls: n(2), LastUsedAt: fromNanos(n(3)),
		Day: int32(n(4)), DailyCalls: n(5), DailyCredits: n(6),
		Month: int32(n(7)), MonthlyCalls: n(8), MonthlyCredits: n(9),
	}, n(10)
}

// receipt builds a Receipt from a script's account fields. Durability is
// the Redis server's (AOF); Wait reports only a replica shortfall.
func receipt(f []string, waitErr error) *store.Receipt {
	a, seq := parseAccount(f)
	return &store.Receipt{Seq: seq, BalanceAfter: a.Balance, Account: a,
		Wait: func(context.Context) error { return waitErr }}
}

func ns(t int64) string { return strconv.FormatInt(t, 10) }

func num(s string) int64 {
	v, _ := strconv.ParseInt(s, 10, 64)
	return v
}

// Reserve charges every item of r or none, in one script: revoked,
// duplicate call id, spending limit, quotas and balance are checked and
// the charge entries appended in the same atomic step. When the reply is
// lost (the connection broke after sending), the call is voided as soon as
// Redis answers again: refunded if it ran, its id taken if it did not, so
// a call the gateway refused is never left charged.
func (s *Store) Reserve(ctx context.Context, r store.Reservation) (*store.Receipt, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	if _, err := store.ValidateReservation(&r); err != nil {
		return nil, fmt.Errorf("%w: %w", err, store.ErrInvalid)
	}
	now := r.Now
	if now.IsZero() {
		now = s.now()
	}
	q := r.Limits.Quota
	args := make([]any, 0, 13+2*len(r.Items))
	args = append(args, r.KeyID, r.CallID, store.DayOf(now), store.MonthOf(now), ns(now.UnixNano()), r.Limits.SpendingLimit,
		q.DailyCalls, q.MonthlyCalls, q.DailyCredits, q.MonthlyCredits, r.Meta.RequestID, r.Meta.Actor, r.Meta.Note)
	for _, it := range r.Items {
		args = append(args, it.Tool, it.Amount)
	}
	keys := []string{s.k.acct(r.KeyID), s.k.call(r.CallID), s.k.ledger, s.k.seq, s.k.lk(r.KeyID)}
	res, waitErr, err := s.run(ctx, scReserve, keys, args...)
	if err != nil {
		if !replyError(err) {
			s.fixes.add(fix{void: true, refund: store.Refund{KeyID: r.KeyID, CallID: r.CallID, Now: now,
				Meta: store.Meta{RequestID: r.Meta.RequestID, Actor: "paygate", Note: "void: reserve outcome unknown (Redis unreachable)"}}})
			s.kickFixes()
		}
		return nil, s.unavailable("reserve call "+r.CallID, err)
	}
	rep, err := toReply(res)
	if err != nil {
		return nil, err
	}
	switch rep[0] {
	case "OK":
		rc := receipt(rep[1:], waitErr)
		if waitErr != nil {
			// Too few replicas have the charge: the gateway will not serve
			// the call, so the charge must not stand either.
			var once sync.Once
			rc.Wait = func(context.Context) error {
				once.Do(func() {
					s.fixes.add(fix{void: true, refund: store.Refund{KeyID: r.KeyID, CallID: r.CallID, Now: now,
						Meta: store.Meta{RequestID: r.Meta.RequestID, Actor: "paygate", Note: "void: charge not replicated"}}})
					s.kickFixes()
				})
				return waitErr
			}
		}
		return rc, nil
	case "NOTFOUND":
		return nil, fmt.Errorf("reserve call %s: key %s: %w", r.CallID, r.KeyID, store.ErrNotFound)
	case "REVOKED":
		return nil, fmt.Errorf("reserve call %s: key %s: %w", r.CallID, r.KeyID, store.ErrKeyInactive)
	case "DUP":
		return nil, fmt.Errorf("reserve call %s: %w", r.CallID, store.ErrDuplicateCall)
	case "SPEND":
		return nil, &store.LimitError{Kind: store.ErrSpendingLimit, Need: num(rep[1]), Have: num(rep[2]),
			Detail: fmt.Sprintf("spending limit %s, spent %s", rep[3], rep[4])}
	case "QUOTA":
		return nil, &store.LimitError{Kind: store.ErrQuotaExceeded, Need: num(rep[1]), Have: num(rep[2]),
			Detail: fmt.Sprintf("%s quota %s reached", rep[4], rep[3]), Period: store.QuotaPeriod(fmt.Sprint(rep[4]))}
	case "INSUF":
		return nil, &store.LimitError{Kind: store.ErrInsufficientCredits, Need: num(rep[1]), Have: num(rep[2]),
			Detail: fmt.Sprintf("balance %s, need %s", rep[2], rep[1])}
	}
	return nil, statusErr("reserve", rep)
}

// Refund gives back one item of a call; a second refund of the item is a
// no-op reporting the balance. A refund that cannot reach Redis is queued
// and retried (it is idempotent) until Redis answers again.
func (s *Store) Refund(ctx context.Context, r store.Refund) (*store.Receipt, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	if err := credits.Validate(r.Amount); err != nil {
		return nil, fmt.Errorf("refund call %s: %w: %w", r.CallID, store.ErrInvalid, err)
	}
	if r.Now.IsZero() {
		r.Now = s.now()
	}
	rc, err := s.refund(ctx, r)
	if errors.Is(err, store.ErrUnavailable) {
		s.fixes.add(fix{refund: r})
		s.kickFixes()
		return nil, fmt.Errorf("%w (queued; retried when Redis answers)", err)
	}
	return rc, err
}

func (s *Store) refund(ctx context.Context, r store.Refund) (*store.Receipt, error) {
	keys := []string{s.k.acct(r.KeyID), s.k.call(r.CallID), s.k.ledger, s.k.seq, s.k.lk(r.KeyID)}
	res, waitErr, err := s.run(ctx, scRefund, keys, r.KeyID, r.CallID, r.Item, r.Amount, ns(r.Now.UnixNano()), r.Tool,
		r.Meta.RequestID, r.Meta.Actor, r.Meta.Note)
	if err != nil {
		return nil, s.unavailable("refund call "+r.CallID, err)
	}
	rep, err := toReply(res)
	if err != nil {
		return nil, err
	}
	switch rep[0] {
	case "OK":
		return receipt(rep[1:], waitErr), nil
	case "NOTFOUND":
		return nil, fmt.Errorf("refund call %s item %d on key %s: charge %w", r.CallID, r.Item, r.KeyID, store.ErrNotFound)
	case "TOOMUCH":
		return nil, fmt.Errorf("refund call %s item %d: %s exceeds the charge of %s: %w", r.CallID, r.Item, rep[1], rep[2], store.ErrInvalid)
	}
	return nil, statusErr("refund", rep)
}

func (s *Store) kickFixes() {
	select {
	case s.fixKick <- struct{}{}:
	default:
	}
}

// void settles a Reserve whose reply was lost (see scVoid).
func (s *Store) void(ctx context.Context, r store.Refund) error {
	keys := []string{s.k.acct(r.KeyID), s.k.call(r.CallID), s.k.ledger, s.k.seq, s.k.lk(r.KeyID)}
	res, _, err := s.run(ctx, scVoid, keys, r.KeyID, r.CallID, ns(r.Now.UnixNano()), r.Meta.Actor, r.Meta.Note)
	if err != nil {
		return s.unavailable("void call "+r.CallID, err)
	}
	rep, err := toReply(res)
	if err != nil {
		return err
	}
	switch rep[0] {
	case "OK", "TOMBSTONE":
		return nil
	}
	return statusErr("void", rep)
}

// TopUp adds credits: kind EntryTopUp (default) or EntryGrant, positive,
// or EntryAdjustment, which may be negative and is the only way a balance
// goes below zero.
func (s *Store) TopUp(ctx context.Context, keyID string, amount credits.Credits, kind store.EntryKind, m store.Meta) (*store.Receipt, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	kind, err := store.ValidateTopUp(keyID, amount, kind)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, store.ErrInvalid)
	}
	keys := []string{s.k.acct(keyID), s.k.ledger, s.k.seq, s.k.lk(keyID)}
	res, waitErr, err := s.run(ctx, scTopUp, keys, keyID, amount, string(kind), ns(s.now().UnixNano()), m.RequestID, m.Actor,
		m.Note, credits.Max)
	if err != nil {
		return nil, s.unavailable("top up key "+keyID, err)
	}
	rep, err := toReply(res)
	if err != nil {
		return nil, err
	}
	switch rep[0] {
	case "OK":
		return receipt(rep[1:], waitErr), nil
	case "NOTFOUND":
		return nil, fmt.Errorf("top up key %s: %w", keyID, store.ErrNotFound)
	case "REVOKED":
		return nil, fmt.Errorf("top up key %s: %w", keyID, store.ErrKeyInactive)
	case "TOOLARGE":
		return nil, fmt.Errorf("top up key %s: balance %w: %w", keyID, store.ErrInvalid, credits.ErrTooLarge)
	}
	return nil, statusErr("top up", rep)
}

// Transfer moves credits between two keys in one script.
func (s *Store) Transfer(ctx context.Context, from, to string, amount credits.Credits, m store.Meta) (*store.Receipt, *store.Receipt, error) {
	if err := s.usable(); err != nil {
		return nil, nil, err
	}
	if err := store.ValidateTransferAmount(from, to, amount); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", err, store.ErrInvalid)
	}
	if from == to {
		return nil, nil, fmt.Errorf("transfer %s -> %s: same key: %w", from, to, store.ErrInvalid)
	}
	keys := []string{s.k.acct(from), s.k.acct(to), s.k.ledger, s.k.seq, s.k.lk(from), s.k.lk(to)}
	res, waitErr, err := s.run(ctx, scTransfer, keys, from, to, amount, ns(s.now().UnixNano()), m.RequestID, m.Actor, m.Note,
		credits.Max)
	if err != nil {
		return nil, nil, s.unavailable("transfer "+from+" -> "+to, err)
	}
	rep, err := toReply(res)
	if err != nil {
		return nil, nil, err
	}
	switch rep[0] {
	case "OK":
		return receipt(rep[1:12], waitErr), receipt(rep[12:23], waitErr), nil
	case "NOTFOUND", "REVOKED":
		id := from
		if rep[1] == "to" {
			id = to
		}
		kind := store.ErrNotFound
		if rep[0] == "REVOKED" {
			kind = store.ErrKeyInactive
		}
		return nil, nil, fmt.Errorf("transfer %s %s: %w", rep[1], id, kind)
	case "INSUF":
		return nil, nil, &store.LimitError{Kind: store.ErrInsufficientCredits, Need: num(rep[1]), Have: num(rep[2]),
			Detail: fmt.Sprintf("balance %s, transfer %s", rep[2], rep[1])}
	case "TOOLARGE":
		return nil, nil, fmt.Errorf("transfer to %s: balance %w: %w", to, store.ErrInvalid, credits.ErrTooLarge)
	}
	return nil, nil, statusErr("transfer", rep)
}

// Account returns a key's account, read from Redis (one HMGET).
func (s *Store) Account(ctx context.Context, keyID string) (store.Account, error) {
	if err := s.usable(); err != nil {
		return store.Account{}, err
	}
	vals, err := s.rdb.HMGet(ctx, s.k.acct(keyID), acctFields...).Result()
	if err != nil {
		return store.Account{}, s.unavailable("account "+keyID, err)
	}
	a, ok := accountOf(vals)
	if !ok {
		return store.Account{}, fmt.Errorf("account %s: %w", keyID, store.ErrNotFound)
	}
	return a, nil
}

// entryOf decodes a ledger stream message.
func entryOf(m redis.XMessage) store.Entry {
	str := func(k string) string { v, _ := m.Values[k].(string); return v }
	seq, _, _ := cutSeq(m.ID)
	return store.Entry{
		Seq: seq, Time: fromNanos(num(str("t"))), KeyID: str("k"), Kind: store.EntryKind(str("kd")),
		Delta: num(str("d")), BalanceAfter: num(str("b")), Tool: str("tool"), CallID: str("call"), Item: int(num(str("i"))),
		RequestID: str("req"), Counterparty: str("cp"), Actor: str("actor"), Note: str("note"),
	}
}

// cutSeq parses a stream id "<seq>-0".
func cutSeq(id string) (int64, bool, error) {
	for i := 0; i < len(id); i++ {
		if id[i] == '-' {
			v, err := strconv.ParseInt(id[:i], 10, 64)
			return v, true, err
		}
	}
	v, err := strconv.ParseInt(id, 10, 64)
	return v, false, err
}

// Entries returns ledger entries: a key's through its index of seqs, all
// keys' by walking the ledger stream, in pages either way.
func (s *Store) Entries(ctx context.Context, f store.LedgerFilter) ([]store.Entry, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	kinds := map[store.EntryKind]bool{}
	for _, k := range f.Kinds {
		kinds[k] = true
	}
	var out []store.Entry
	keep := func(e store.Entry) bool {
		if len(kinds) > 0 && !kinds[e.Kind] || !f.Since.IsZero() && e.Time.Before(f.Since) || !f.Until.IsZero() && !e.Time.Before(f.Until) {
			return true
		}
		out = append(out, e)
		return f.Limit <= 0 || len(out) < f.Limit
	}
	var err error
	if f.KeyID != "" {
		err = s.keyEntries(ctx, f, keep)
	} else {
		err = s.walkStream(ctx, s.k.ledger, f.AfterSeq, f.Desc, func(m redis.XMessage) bool { return keep(entryOf(m)) })
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Store) keyEntries(ctx context.Context, f store.LedgerFilter, keep func(store.Entry) bool) error {
	strs, err := s.rdb.LRange(ctx, s.k.lk(f.KeyID), 0, -1).Result()
	if err != nil {
		return s.unavailable("ledger of "+f.KeyID, err)
	}
	seqs := make([]int64, 0, len(strs))
	for _, v := range strs {
		if q := num(v); q > f.AfterSeq {
			seqs = append(seqs, q)
		}
	}
	if f.Desc {
		for i, j := 0, len(seqs)-1; i < j; i, j = i+1, j-1 {
			seqs[i], seqs[j] = seqs[j], seqs[i]
		}
	}
	for lo := 0; lo < len(seqs); lo += 500 {
		hi := min(lo+500, len(seqs))
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.XMessageSliceCmd, hi-lo)
		for i, q := range seqs[lo:hi] {
			id := ns(q) + "-0"
			cmds[i] = pipe.XRange(ctx, s.k.ledger, id, id)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return s.unavailable("ledger of "+f.KeyID, err)
		}
		for _, c := range cmds {
			for _, m := range c.Val() {
				if !keep(entryOf(m)) {
					return nil
				}
			}
		}
	}
	return nil
}

// walkStream calls fn on the messages of a "<seq>-0" stream after seq
// after, oldest first (newest first with desc), until fn returns false.
func (s *Store) walkStream(ctx context.Context, stream string, after int64, desc bool, fn func(redis.XMessage) bool) error {
	const page = 1000
	lo, hi := "-", "+"
	if after > 0 {
		lo = "(" + ns(after) + "-0"
	}
	for {
		var (
			msgs []redis.XMessage
			err  error
		)
		if desc {
			msgs, err = s.rdb.XRevRangeN(ctx, stream, hi, lo, page).Result()
		} else {
			msgs, err = s.rdb.XRangeN(ctx, stream, lo, hi, page).Result()
		}
		if err != nil {
			return s.unavailable("read "+stream, err)
		}
		for _, m := range msgs {
			if !fn(m) {
				return nil
			}
		}
		if len(msgs) < page {
			return nil
		}
		last := msgs[len(msgs)-1].ID
		if desc {
			hi = "(" + last
		} else {
			lo = "(" + last
		}
	}
}
