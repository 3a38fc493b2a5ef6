package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paygate/paygate/internal/store"
)

// logBuffer holds usage records and audit events until they are written.
// While Redis is unreachable it keeps up to max of them (the oldest are
// dropped, and counted, past that) and the flusher writes them when Redis
// answers again.
type logBuffer struct {
	mu      sync.Mutex
	usage   []store.UsageRecord
	audit   []store.AuditEvent
	max     int
	dropped int64
	kick    chan struct{}
}

func newLogBuffer(max int) *logBuffer {
	return &logBuffer{max: max, kick: make(chan struct{}, 1)}
}

func (b *logBuffer) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.usage) + len(b.audit)
}

// trim drops the oldest records past max; called with b.mu held.
func (b *logBuffer) trim() {
	for over := len(b.usage) + len(b.audit) - b.max; over > 0; over-- {
		if len(b.usage) >= len(b.audit) {
			b.usage = b.usage[1:]
		} else {
			b.audit = b.audit[1:]
		}
		b.dropped++
	}
}

func (b *logBuffer) signal() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// Dropped reports how many usage records and audit events were dropped
// because the buffer was full while Redis was unreachable.
func (s *Store) Dropped() int64 {
	s.logs.mu.Lock()
	defer s.logs.mu.Unlock()
	return s.logs.dropped
}

// AppendUsage queues records; they are written within FlushInterval, or
// when Redis answers again.
func (s *Store) AppendUsage(recs ...store.UsageRecord) {
	if len(recs) == 0 || s.closed.Load() {
		return
	}
	now := s.now()
	b := s.logs
	b.mu.Lock()
	for _, r := range recs {
		if r.Time.IsZero() {
			r.Time = now
		}
		b.usage = append(b.usage, r)
	}
	b.trim()
	b.mu.Unlock()
	b.signal()
}

// AppendAudit queues events like AppendUsage.
func (s *Store) AppendAudit(evs ...store.AuditEvent) {
	if len(evs) == 0 || s.closed.Load() {
		return
	}
	now := s.now()
	b := s.logs
	b.mu.Lock()
	for _, e := range evs {
		if e.Time.IsZero() {
			e.Time = now
		}
		b.audit = append(b.audit, e)
	}
	b.trim()
	b.mu.Unlock()
	b.signal()
}

// flushLoop writes buffered records FlushInterval after they arrive (so
// they go in batches), retrying with backoff while Redis is unreachable
// and logging that at most every 30s.
func (s *Store) flushLoop() {
	defer s.wg.Done()
	var logged time.Time
	sleep := func(d time.Duration) bool {
		select {
		case <-s.ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.logs.kick:
		}
		if !sleep(s.opts.FlushInterval) {
			return
		}
		var backoff time.Duration
		for s.logs.len() > 0 {
			ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
			err := s.flush(ctx)
			cancel()
			if err == nil {
				if backoff > 0 {
					s.log.Info("redis: buffered usage and audit records written")
				}
				break
			}
			if s.ctx.Err() != nil {
				return
			}
			if time.Since(logged) > 30*time.Second {
				logged = time.Now()
				s.log.Warn("redis: usage and audit records buffered in memory until Redis answers",
					"buffered", s.logs.len(), "dropped", s.Dropped(), "err", err)
			}
			backoff = min(max(2*backoff, 100*time.Millisecond), 2*time.Second)
			if !sleep(backoff) {
				return
			}
		}
	}
}

// flush writes every buffered record, in batches of one script each. A
// batch that fails goes back to the front of the buffer.
func (s *Store) flush(ctx context.Context) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	b := s.logs
	for {
		b.mu.Lock()
		nu, na := min(len(b.usage), 256), min(len(b.audit), 256)
		us, as := b.usage[:nu:nu], b.audit[:na:na]
		b.usage, b.audit = b.usage[nu:], b.audit[na:]
		b.mu.Unlock()
		if nu+na == 0 {
			return nil
		}
		var uerr, aerr error
		if nu > 0 {
			uerr = s.appendUsage(ctx, us)
		}
		if na > 0 && uerr == nil {
			aerr = s.appendAudit(ctx, as)
		}
		if uerr != nil || aerr != nil {
			b.mu.Lock()
			if uerr != nil {
				b.usage = append(us, b.usage...)
			}
			b.audit = append(as, b.audit...)
			b.trim()
			b.mu.Unlock()
			if uerr != nil {
				return uerr
			}
			return aerr
		}
	}
}

// appendUsage writes a batch of usage records in one script. When the
// reply is lost the batch may have been written: writing it again can
// duplicate usage records, never money.
func (s *Store) appendUsage(ctx context.Context, us []store.UsageRecord) error {
	args := []any{s.opts.UsageRetention}
	for _, u := range us {
		j, err := json.Marshal(usageDocOf(u))
		if err != nil {
			return err
		}
		args = append(args, string(j))
	}
	if _, _, err := s.run(ctx, scAppend, []string{s.k.usage, s.k.useq}, args...); err != nil {
		return s.unavailable("append usage", err)
	}
	return nil
}

func (s *Store) appendAudit(ctx context.Context, as []store.AuditEvent) error {
	args := []any{s.opts.AuditRetention}
	for _, a := range as {
		d := auditDoc{Time: nanos(a.Time), Type: a.Type, Actor: a.Actor, RequestID: a.RequestID,
			KeyMask: a.KeyMask, Message: a.Message, Metadata: a.Metadata}
		j, err := json.Marshal(d)
		if err != nil { // metadata JSON cannot hold: keep the event without it
			d.Metadata = map[string]any{"metadataError": err.Error()}
			j, _ = json.Marshal(d)
		}
		args = append(args, string(j))
	}
	if _, _, err := s.run(ctx, scAppend, []string{s.k.audit, s.k.aseq}, args...); err != nil {
		return s.unavailable("append audit", err)
	}
	return nil
}

type usageDoc struct {
	Time      int64  `json:"t"`
	KeyID     string `json:"k,omitempty"`
	KeyMask   string `json:"m,omitempty"`
	Namespace string `json:"ns,omitempty"`
	Method    string `json:"me,omitempty"`
	Tool      string `json:"to,omitempty"`
	Allowed   bool   `json:"a,omitempty"`
	Reason    string `json:"r,omitempty"`
	Credits   int64  `json:"c,omitempty"`
	Refunded  bool   `json:"rf,omitempty"`
	Outcome   string `json:"o,omitempty"`
	Duration  int64  `json:"du,omitempty"`
	RequestID string `json:"rq,omitempty"`
	CallID    string `json:"ca,omitempty"`
	ClientIP  string `json:"ip,omitempty"`
}

func usageDocOf(u store.UsageRecord) usageDoc {
	return usageDoc{Time: nanos(u.Time), KeyID: u.KeyID, KeyMask: u.KeyMask, Namespace: u.Namespace, Method: u.Method,
		Tool: u.Tool, Allowed: u.Allowed, Reason: u.Reason, Credits: u.Credits, Refunded: u.Refunded, Outcome: u.Outcome,
		Duration: int64(u.Duration), RequestID: u.RequestID, CallID: u.CallID, ClientIP: u.ClientIP}
}

func (d *usageDoc) record(seq int64) store.UsageRecord {
	return store.UsageRecord{Seq: seq, Time: fromNanos(d.Time), KeyID: d.KeyID, KeyMask: d.KeyMask, Namespace: d.Namespace,
		Method: d.Method, Tool: d.Tool, Allowed: d.Allowed, Reason: d.Reason, Credits: d.Credits, Refunded: d.Refunded,
		Outcome: d.Outcome, Duration: time.Duration(d.Duration), RequestID: d.RequestID, CallID: d.CallID, ClientIP: d.ClientIP}
}

type auditDoc struct {
	Time      int64          `json:"t"`
	Type      string         `json:"ty,omitempty"`
	Actor     string         `json:"a,omitempty"`
	RequestID string         `json:"rq,omitempty"`
	KeyMask   string         `json:"m,omitempty"`
	Message   string         `json:"msg,omitempty"`
	Metadata  map[string]any `json:"md,omitempty"`
}

// docOf decodes the JSON document of a usage or audit stream message.
func docOf(m redis.XMessage, v any) (int64, error) {
	seq, _, err := cutSeq(m.ID)
	if err != nil {
		return 0, err
	}
	j, _ := m.Values["j"].(string)
	if err := json.Unmarshal([]byte(j), v); err != nil {
		return 0, fmt.Errorf("record %s: %w", m.ID, err)
	}
	return seq, nil
}

// Usage queries the fleet's usage records (this instance's buffered ones
// are written first).
func (s *Store) Usage(ctx context.Context, f store.UsageFilter) ([]store.UsageRecord, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	if err := s.flush(ctx); err != nil {
		return nil, err
	}
	var (
		out  []store.UsageRecord
		derr error
	)
	err := s.walkStream(ctx, s.k.usage, f.AfterSeq, f.Desc, func(m redis.XMessage) bool {
		var d usageDoc
		seq, err := docOf(m, &d)
		if err != nil {
			derr = err
			return false
		}
		u := d.record(seq)
		if f.KeyID != "" && u.KeyID != f.KeyID || f.Namespace != "" && u.Namespace != f.Namespace ||
			f.Tool != "" && u.Tool != f.Tool || f.Allowed != nil && u.Allowed != *f.Allowed ||
			!f.Since.IsZero() && u.Time.Before(f.Since) || !f.Until.IsZero() && !u.Time.Before(f.Until) {
			return true
		}
		out = append(out, u)
		return f.Limit <= 0 || len(out) < f.Limit
	})
	if err == nil {
		err = derr
	}
	return out, err
}

// Audit queries the fleet's audit trail. Metadata numbers come back as
// float64 (JSON).
func (s *Store) Audit(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	if err := s.flush(ctx); err != nil {
		return nil, err
	}
	types := map[string]bool{}
	for _, t := range f.Types {
		types[t] = true
	}
	var (
		out  []store.AuditEvent
		derr error
	)
	err := s.walkStream(ctx, s.k.audit, f.AfterSeq, f.Desc, func(m redis.XMessage) bool {
		var d auditDoc
		seq, err := docOf(m, &d)
		if err != nil {
			derr = err
			return false
		}
		e := store.AuditEvent{Seq: seq, Time: fromNanos(d.Time), Type: d.Type, Actor: d.Actor, RequestID: d.RequestID,
			KeyMask: d.KeyMask, Message: d.Message, Metadata: d.Metadata}
		if len(types) > 0 && !types[e.Type] || f.Actor != "" && e.Actor != f.Actor ||
			!f.Since.IsZero() && e.Time.Before(f.Since) || !f.Until.IsZero() && !e.Time.Before(f.Until) {
			return true
		}
		out = append(out, e)
		return f.Limit <= 0 || len(out) < f.Limit
	})
	if err == nil {
		err = derr
	}
	return out, err
}

// PruneUsage trims the usage stream: records older than before (read
// from the oldest until the first newer one; instances flush in batches,
// so the cut is exact to a flush interval), then all but the newest keep.
// Seqs come from their own counter, so they keep increasing.
func (s *Store) PruneUsage(ctx context.Context, before time.Time, keep int) (int, error) {
	return s.prune(ctx, s.k.usage, "prune usage", before, keep, func() (int64, error) {
		minID, old := "", false
		err := s.walkStream(ctx, s.k.usage, 0, false, func(m redis.XMessage) bool {
			var d usageDoc
			if _, err := docOf(m, &d); err == nil && !fromNanos(d.Time).Before(before) {
				minID = m.ID
				return false
			}
			old = true
			return true
		})
		switch {
		case err != nil || !old:
			return 0, err
		case minID == "": // every record is old
			return s.rdb.XTrimMaxLen(ctx, s.k.usage, 0).Result()
		default:
			return s.rdb.XTrimMinID(ctx, s.k.usage, minID).Result()
		}
	})
}

// PruneAudit deletes events older than before, then all but the newest
// keep (0: no count limit).
func (s *Store) PruneAudit(ctx context.Context, before time.Time, keep int) (int, error) {
	return s.prune(ctx, s.k.audit, "prune audit", before, keep, func() (int64, error) {
		var old []string
		err := s.walkStream(ctx, s.k.audit, 0, false, func(m redis.XMessage) bool {
			var d auditDoc
			if _, err := docOf(m, &d); err == nil && fromNanos(d.Time).Before(before) {
				old = append(old, m.ID)
			}
			return true
		})
		var n int64
		for lo := 0; lo < len(old) && err == nil; lo += 500 {
			var d int64
			d, err = s.rdb.XDel(ctx, s.k.audit, old[lo:min(lo+500, len(old))]...).Result()
			n += d
		}
		return n, err
	})
}

// prune runs a stream's retention: byAge deletes what is older than the
// cut (when there is one), then all but the newest keep go.
func (s *Store) prune(ctx context.Context, stream, what string, before time.Time, keep int, byAge func() (int64, error)) (int, error) {
	if err := s.usable(); err != nil {
		return 0, err
	}
	if err := s.flush(ctx); err != nil {
		return 0, err
	}
	n := 0
	if !before.IsZero() {
		d, err := byAge()
		n += int(d)
		if err != nil {
			return n, s.unavailable(what, err)
		}
	}
	if keep > 0 {
		d, err := s.rdb.XTrimMaxLen(ctx, stream, int64(keep)).Result()
		if err != nil {
			return n, s.unavailable(what, err)
		}
		n += int(d)
	}
	return n, nil
}
