package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paygate/paygate/internal/store"
)

// ticket is shared by every operation committed in one batch: the batch's
// one transaction makes them durable together.
type ticket struct {
	done chan struct{}
	err  error
	wait func(context.Context) error // built once per batch, not per operation
}

func newTicket() *ticket {
	t := &ticket{done: make(chan struct{})}
	t.wait = t.waitFor
	return t
}

func (t *ticket) waitFor(ctx context.Context) error {
	select {
	case <-t.done:
		return t.err
	default:
	}
	select {
	case <-t.done:
		return t.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (t *ticket) finish(err error) {
	t.err = err
	close(t.done)
}

// failedTicket returns a ticket that already reports err.
func failedTicket(err error) *ticket {
	t := newTicket()
	t.finish(err)
	return t
}

// execOp is a write other than ledger lines (key rows, admin keys,
// settings, pruning). It runs inside the batch transaction, in queue order,
// on the writer goroutine, so a read-check-write inside fn is atomic.
type execOp struct {
	fn  func(*wtx) error
	err error // the operation's own answer; valid once the ticket is done
}

// refusal is an execOp answer that wrote nothing (a conflict, a missing
// row): it fails that operation only, not the batch.
type refusal struct{ err error }

func (r refusal) Error() string { return r.err.Error() }
func (r refusal) Unwrap() error { return r.err }

// acctRow is an account's state right after one operation, written so the
// accounts table matches the ledger lines of the same commit.
type acctRow struct {
	keyID string
	a     account
}

// batch is what one transaction writes.
type batch struct {
	execs   []*execOp
	entries []store.Entry
	accts   []acctRow
	usage   []store.UsageRecord
	audit   []store.AuditEvent
	t       *ticket
	barrier bool // someone waits on t though the batch may stay empty
}

func (b *batch) size() int {
	return len(b.execs) + len(b.entries) + len(b.usage) + len(b.audit)
}

func (b *batch) reset() {
	clear(b.execs)
	b.execs = b.execs[:0]
	clear(b.entries) // drop string references
	b.entries = b.entries[:0]
	clear(b.accts)
	b.accts = b.accts[:0]
	clear(b.usage)
	b.usage = b.usage[:0]
	clear(b.audit)
	b.audit = b.audit[:0]
	b.t = nil
	b.barrier = false
}

// maxPendingLogs bounds the usage and audit records waiting for the writer
// so a stalled disk cannot grow memory without limit; beyond it records are
// dropped and counted.
const maxPendingLogs = 200_000

// writer owns the write connection. Operations append to the open batch;
// the single writer goroutine commits batches one after another, so a batch
// forms naturally while the previous commit (and its fsync) runs.
type writer struct {
	log        *slog.Logger
	db         *sql.DB
	flushEvery time.Duration
	maxBatch   int

	mu          sync.Mutex
	seq         int64    // last ledger seq handed out
	open        *batch   // accepting operations
	sealed      []*batch // full batches, oldest first
	free        []*batch
	pendingLogs int
	// Usage and audit records wait here, apart from the money batches, and
	// join one batch per flush (every flushEvery, at logBatch records, or
	// for a barrier). Riding along with every money commit would make each
	// small commit touch the usage table's and indexes' pages too: on a busy
	// gateway that doubled the writer's cost per call.
	logUsage []store.UsageRecord
	logAudit []store.AuditEvent
	logsDue  bool  // the flush timer fired
	lastOps  int   // money operations in the last batch committed (writer goroutine only)
	closed   error // set by close: no more operations
	dropped  int64

	kick    chan struct{} // operations waiting: commit now
	logKick chan struct{} // records waiting: commit within flushEvery
	stop    chan struct{}
	exited  chan struct{}

	failed atomic.Pointer[error]

	stmts struct {
		ledger, account, usage, audit *sql.Stmt
		// ledgerN and usageN insert multiRows rows at once: one statement
		// execution instead of multiRows, which saves most of the driver's
		// per-row overhead when batches are large.
		ledgerN, usageN *sql.Stmt
	}
	args []any          // reused argument buffer for the multi-row statements
	recs []byte         // reused buffer of the encoded usage records of a batch
	seen map[string]int // reused by commit to keep the last row per account

	// afterBegin, when set by tests, runs inside each transaction first.
	afterBegin func(*wtx) error

	// With a journal (journal.go), money-only batches are durable once
	// journaled; they wait in pending until applied to SQLite.
	j            *journal
	dbPath       string   // the database, whose WAL syncSQLite flushes
	pending      []*batch // journaled, not yet in SQLite
	pendingLines int      // ledger lines in pending
	dirty        bool     // SQLite has commits not yet synced
	lastSync     time.Time
	merged       batch // scratch: pending batches applied as one
	syncReq      chan struct{}
	syncDone     chan error
	// skipApply, set by tests, leaves every commit that would not be
	// synced at once out of SQLite (as a power loss would lose them) and
	// the journal uncleared.
	skipApply atomic.Bool
}

// wtx is the writer's transaction as execOps see it.
type wtx struct {
	ctx context.Context
	tx  *sql.Tx
}

func (x *wtx) exec(query string, args ...any) (sql.Result, error) {
	return x.tx.ExecContext(x.ctx, query, args...)
}

func (x *wtx) queryRow(query string, args ...any) *sql.Row {
	return x.tx.QueryRowContext(x.ctx, query, args...)
}

func newWriter(ctx context.Context, db *sql.DB, lastSeq int64, flushEvery time.Duration, maxBatch int, log *slog.Logger, j *journal, dbPath string) (*writer, error) {
	w := &writer{
		log: log, db: db, flushEvery: flushEvery, maxBatch: maxBatch,
		seq:     lastSeq,
		kick:    make(chan struct{}, 1),
		logKick: make(chan struct{}, 1),
		stop:    make(chan struct{}),
		exited:  make(chan struct{}),
		seen:    make(map[string]int),
		j:       j,
		dbPath:  dbPath,
	}
	w.lastSync = time.Now()
	if err := w.prepare(ctx); err != nil {
		return nil, err
	}
	w.open = w.newBatch()
	if j != nil {
		w.syncReq, w.syncDone = make(chan struct{}), make(chan error)
		go w.syncer()
	}
	go w.run()
	return w, nil
}

// prepare prepares the writer's statements.
func (w *writer) prepare(ctx context.Context) error {
	var err error
	prep := func(dst **sql.Stmt, q string) {
		if err == nil {
			*dst, err = w.db.PrepareContext(ctx, q)
		}
	}
	prep(&w.stmts.ledger, ledgerInsert+valuesList(ledgerCols, 1))
	prep(&w.stmts.ledgerN, ledgerInsert+valuesList(ledgerCols, multiRows))
	prep(&w.stmts.account, `UPDATE accounts SET balance = ?, spent = ?, calls = ?, last_used_at = ?, day = ?, daily_calls = ?,
		daily_credits = ?, month = ?, monthly_calls = ?, monthly_credits = ? WHERE key_id = ?`)
	prep(&w.stmts.usage, usageInsert+valuesList(usageCols, 1))
	prep(&w.stmts.usageN, usageInsert+valuesList(usageCols, multiRows))
	prep(&w.stmts.audit, `INSERT INTO audit (time, type, actor, request_id, key_mask, message, metadata) VALUES (?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		w.closeStmts()
	}
	return err
}

func (w *writer) newBatch() *batch {
	var b *batch
	if n := len(w.free); n > 0 {
		b, w.free = w.free[n-1], w.free[:n-1]
	} else {
		b = &batch{}
	}
	b.t = newTicket()
	return b
}

// lock locks the queue and returns the batch to append to. The caller
// appends, then calls unlock. When the store is closed or failed it returns
// a scratch batch whose ticket already reports the error.
func (w *writer) lock() *batch {
	w.mu.Lock()
	if err := w.refuseErr(); err != nil {
		return &batch{t: failedTicket(err)}
	}
	if w.open.size() >= w.maxBatch {
		w.sealed = append(w.sealed, w.open)
		w.open = w.newBatch()
	}
	return w.open
}

// nextSeq hands out a ledger seq; call between lock and unlock.
func (w *writer) nextSeq() int64 {
	w.seq++
	return w.seq
}

// unlock releases the queue and wakes the writer for an operation that a
// caller will wait on.
func (w *writer) unlock(b *batch) *ticket {
	t := b.t
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
	return t
}

func (w *writer) refuseErr() error {
	if w.closed != nil {
		return w.closed
	}
	if p := w.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// exec queues fn and waits for its answer.
func (w *writer) exec(ctx context.Context, fn func(*wtx) error) error {
	op := &execOp{fn: fn}
	b := w.lock()
	b.execs = append(b.execs, op)
	t := w.unlock(b)
	if err := t.wait(ctx); err != nil {
		return err
	}
	return op.err
}

// barrier returns a ticket done once everything queued so far, records
// included, is committed.
func (w *writer) barrier() *ticket {
	b := w.lock()
	b.barrier = true
	return w.unlock(b)
}

// appendLogs queues usage records and audit events; the writer commits them
// within flushEvery, or at once when a batch fills.
func (w *writer) appendLogs(usage []store.UsageRecord, audit []store.AuditEvent) {
	n := len(usage) + len(audit)
	if n == 0 {
		return
	}
	w.mu.Lock()
	if w.refuseErr() != nil || w.pendingLogs+n > maxPendingLogs {
		w.dropped += int64(n)
		d := w.dropped
		w.mu.Unlock()
		if d == int64(n) || d%10000 < int64(n) { // the first drop, then every ~10,000
			w.log.Warn("sqlite: usage/audit records dropped", "dropped_total", d, "err", w.refuseErr())
		}
		return
	}
	w.logUsage = append(w.logUsage, usage...)
	w.logAudit = append(w.logAudit, audit...)
	w.pendingLogs += n
	full := len(w.logUsage)+len(w.logAudit) >= logBatch
	w.mu.Unlock()
	ch := w.logKick
	if full {
		ch = w.kick
	}
	select {
	case ch <- struct{}{}:
	default:
	}
}

// logBatch is how many waiting records make a flush due at once.
const logBatch = 2048

// take removes the oldest batch with work, or returns nil. The waiting
// usage and audit records join it when their flush is due (the timer
// fired, enough of them, a barrier, or the writer is stopping).
func (w *writer) take(stopping bool) *batch {
	w.mu.Lock()
	defer w.mu.Unlock()
	var b *batch
	if len(w.sealed) > 0 {
		b = w.sealed[0]
		w.sealed[0] = nil
		w.sealed = w.sealed[1:]
	} else {
		b = w.open
	}
	logs := len(w.logUsage) + len(w.logAudit)
	if logs > 0 && (w.logsDue || b.barrier || stopping || logs >= logBatch) {
		b.usage, w.logUsage = append(b.usage, w.logUsage...), w.logUsage[:0]
		b.audit, w.logAudit = append(b.audit, w.logAudit...), w.logAudit[:0]
		clear(w.logUsage[:cap(w.logUsage)]) // drop string references
		clear(w.logAudit[:cap(w.logAudit)])
		w.logsDue = false
	}
	if b == w.open {
		if b.size() == 0 && !b.barrier {
			return nil
		}
		w.open = w.newBatch()
	}
	w.pendingLogs -= len(b.usage) + len(b.audit)
	return b
}

func (w *writer) run() {
	defer close(w.exited)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := false
	// syncTimer bounds how long SQLite commits stay unsynced next to a
	// journal while the writer idles (journal.go).
	syncTimer := time.NewTimer(time.Hour)
	syncTimer.Stop()
	syncArmed := false
	stopping := false
	for {
		select {
		case <-w.kick:
		case <-w.logKick:
			if !armed {
				timer.Reset(w.flushEvery)
				armed = true
			}
			continue
		case <-timer.C:
			armed = false
			w.mu.Lock()
			w.logsDue = true
			w.mu.Unlock()
		case <-syncTimer.C:
			syncArmed = false
		case <-w.stop:
			stopping = true
		}
		for {
			w.gather()
			b := w.take(stopping)
			if b == nil {
				break
			}
			w.lastOps = len(b.entries) + len(b.execs)
			if w.commit(b) {
				continue // journaled: recycled once applied
			}
			w.recycle(b)
		}
		if w.j == nil {
			if stopping {
				return
			}
			continue
		}
		// Idle: what was journaled goes into SQLite now, off every
		// caller's path, and SQLite is synced once it has been dirty for
		// syncEvery (or at once when stopping).
		w.applyPending()
		if w.dirty && (stopping || time.Since(w.lastSync) >= syncEvery) {
			w.syncPoint()
		}
		if stopping {
			close(w.syncReq)
			return
		}
		if w.dirty && !syncArmed {
			syncTimer.Reset(syncEvery - time.Since(w.lastSync))
			syncArmed = true
		}
	}
}

// gather lets a batch grow for a moment when calls arrive concurrently.
// Every commit costs about the same whatever it carries (the pages it
// touches), so under load fewer, larger commits cost far less per call;
// when the last batch held a single operation (one caller at a time) the
// writer does not wait at all, so a lone call's latency is unchanged.
func (w *writer) gather() {
	if w.lastOps < 2 {
		return
	}
	for i := 0; i < 4; i++ {
		w.mu.Lock()
		n := len(w.open.entries) + len(w.open.execs)
		w.mu.Unlock()
		if n >= w.lastOps || n >= 64 {
			return
		}
		runtime.Gosched() // the callers adding operations run now
	}
}

func (w *writer) recycle(b *batch) {
	w.mu.Lock()
	b.reset()
	w.free = append(w.free, b)
	w.mu.Unlock()
}

// commit makes b durable and answers its callers. It reports whether b
// was journaled and waits in pending for SQLite (it is recycled then).
func (w *writer) commit(b *batch) (pending bool) {
	if p := w.failed.Load(); p != nil {
		w.finish(b, *p)
		return false
	}
	journaled := false
	if w.j != nil && len(b.execs) == 0 && len(b.entries) > 0 {
		if err := w.journal(b); err != nil {
			// b's record may have reached the disk anyway; its callers
			// hear it was not recorded, so it must not be replayed.
			w.j.unwrite()
			w.fail(err, b)
			return false
		}
		if b.moneyOnly() {
			w.finish(b, nil)
			w.pending = append(w.pending, b)
			w.pendingLines += len(b.entries)
			if w.j.off > journalPrealloc/2 {
				// Keep the journal within its preallocated blocks, where
				// a sync has no file-system metadata to write.
				w.syncPoint()
			}
			return true
		}
		journaled = true // b's records or barrier go to SQLite below
	}
	if w.j != nil {
		// Everything journaled before b goes into SQLite first, in order:
		// if that fails, b must not get there either (a restart replays
		// from SQLite's last seq, so lines before it would be skipped).
		if err := w.applyPending(); err != nil {
			if journaled {
				err = nil // b is durable in the journal
			}
			w.finish(b, err)
			return false
		}
	}
	if b.size() == 0 || (w.j != nil && len(b.execs) == 0 && w.skipApply.Load()) {
		w.finish(b, nil)
		return false
	}
	if err := w.write(b); err != nil {
		if journaled {
			// b's lines are durable in the journal, which a restart
			// replays: they were recorded.
			w.fail(err, nil)
			w.finish(b, nil)
			return false
		}
		w.fail(err, b)
		return false
	}
	if w.j != nil {
		// Without fsync: b's usage and audit records are synced within
		// syncEvery; other writes (key rows, settings) are answered only
		// once synced. Their ledger lines are not journaled: replaying
		// them without their key rows would break the books.
		w.dirty = true
		if len(b.execs) > 0 && !w.syncPoint() {
			w.finish(b, *w.failed.Load())
			return false
		}
	}
	w.finish(b, nil)
	return false
}

// moneyOnly reports whether b holds only ledger lines and account rows,
// all of which the journal carries.
func (b *batch) moneyOnly() bool {
	return len(b.entries) > 0 && len(b.execs) == 0 && len(b.usage) == 0 && len(b.audit) == 0 && !b.barrier
}

// applyAt is how many journaled lines make the writer apply them to
// SQLite while a journal sync runs; fewer wait until the writer idles.
// Larger applies cost less per line (multi-row inserts, one commit).
const applyAt = 64

// syncEvery bounds how long SQLite's commits stay unsynced while the
// writer idles next to a journal.
const syncEvery = time.Second

// journal appends b's ledger lines and account rows to the journal and
// syncs it. While the journal syncs, lines journaled earlier may be
// applied to SQLite, so SQLite's CPU work overlaps the disk's wait; an
// apply failure fails the store, not b (once synced, b is durable).
func (w *writer) journal(b *batch) error {
	if err := w.j.append(b.entries, b.accts); err != nil {
		return err
	}
	if w.pendingLines < applyAt {
		return w.j.sync(w.j.f)
	}
	w.syncReq <- struct{}{}
	_ = w.applyPending()
	return <-w.syncDone
}

// syncPoint applies what is pending, makes SQLite durable and clears the
// journal. It reports false when that failed (the store is failed then).
func (w *writer) syncPoint() bool {
	if w.failed.Load() != nil {
		return false // SQLite may lack journaled lines: the journal stays
	}
	if err := w.applyPending(); err != nil {
		return false
	}
	if w.skipApply.Load() {
		return true // SQLite "lost" what was journaled: keep the journal
	}
	err := w.syncSQLite()
	if err == nil {
		err = w.j.clear()
	}
	if err != nil {
		w.fail(err, nil)
		return false
	}
	w.dirty = false
	w.lastSync = time.Now()
	return true
}

// syncer runs the journal's fdatasync for journal while it applies.
func (w *writer) syncer() {
	for range w.syncReq {
		w.syncDone <- w.j.sync(w.j.f)
	}
}

// applyPending writes the journaled batches to SQLite in one transaction
// (without fsync: they are durable in the journal) and recycles them.
func (w *writer) applyPending() error {
	if len(w.pending) == 0 {
		return nil
	}
	var err error
	if p := w.failed.Load(); p != nil {
		err = *p
	} else if !w.skipApply.Load() {
		m := &w.merged
		for _, b := range w.pending {
			m.entries = append(m.entries, b.entries...)
			m.accts = append(m.accts, b.accts...)
		}
		err = w.write(m)
		clear(m.entries)
		m.entries = m.entries[:0]
		clear(m.accts)
		m.accts = m.accts[:0]
		if err != nil {
			w.fail(err, nil) // the journal holds them: a restart replays it
		}
		w.dirty = true
	}
	for i, b := range w.pending {
		w.recycle(b)
		w.pending[i] = nil
	}
	w.pending = w.pending[:0]
	w.pendingLines = 0
	return err
}

// syncSQLite makes every SQLite commit so far durable: the connection runs
// with synchronous=NORMAL next to a journal, which writes the WAL at each
// commit and syncs it only at checkpoints. Syncing the WAL file (and the
// database, for checkpointed pages) does what synchronous=FULL would have.
func (w *writer) syncSQLite() error {
	for _, p := range []string{w.dbPath + "-wal", w.dbPath} {
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// fail marks the store failed: writes are refused from now on. b, if not
// nil, gets the error.
func (w *writer) fail(err error, b *batch) {
	err = fmt.Errorf("%w: sqlite commit: %w", store.ErrUnavailable, err)
	w.failed.CompareAndSwap(nil, &err)
	if b != nil {
		w.log.Error("sqlite: commit failed; refusing further writes", "err", err,
			"entries", len(b.entries), "records", len(b.usage)+len(b.audit))
		w.finish(b, err)
		return
	}
	w.log.Error("sqlite: commit failed; refusing further writes", "err", err)
}

func (w *writer) finish(b *batch, err error) {
	for _, op := range b.execs {
		if err != nil {
			op.err = err
		}
	}
	b.t.finish(err)
}

// write commits b in one transaction: execs, ledger lines, the last state
// of each touched account, then records.
func (w *writer) write(b *batch) (err error) {
	ctx := context.Background()       // no Done channel: the driver skips its interrupt watcher
	tx, err := w.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE (DSN _txlock)
	if err != nil {
		return err
	}
	x := &wtx{ctx: ctx, tx: tx}
	defer func() {
		if err != nil {
			if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
				err = errors.Join(err, rerr)
			}
		}
	}()
	account := tx.StmtContext(ctx, w.stmts.account)
	if w.afterBegin != nil {
		if err := w.afterBegin(x); err != nil {
			return err
		}
	}
	for _, op := range b.execs {
		if ferr := op.fn(x); ferr != nil {
			var r refusal
			if !errors.As(ferr, &r) {
				return ferr
			}
			op.err = r.err
		}
	}
	if err := w.insertRows(ctx, tx, w.stmts.ledger, w.stmts.ledgerN, len(b.entries), func(args []any, i int) []any {
		e := &b.entries[i]
		return append(args, e.Seq, nanos(e.Time), e.KeyID, string(e.Kind), e.Delta, e.BalanceAfter,
			e.Tool, e.CallID, e.Item, e.RequestID, e.Counterparty, e.Actor, e.Note)
	}); err != nil {
		return fmt.Errorf("insert ledger: %w", err)
	}
	clear(w.seen)
	for i, r := range b.accts {
		w.seen[r.keyID] = i
	}
	for i, r := range b.accts {
		if w.seen[r.keyID] != i {
			continue // a later row of the same batch has the account's state at commit
		}
		a := &r.a
		if _, err := account.ExecContext(ctx, a.balance, a.spent, a.calls, a.lastUsed, a.day, a.dailyCalls,
			a.dailyCredits, a.month, a.monthlyCalls, a.monthlyCredits, r.keyID); err != nil {
			return fmt.Errorf("update account %s: %w", r.keyID, err)
		}
	}
	w.recs = w.recs[:0]
	if err := w.insertRows(ctx, tx, w.stmts.usage, w.stmts.usageN, len(b.usage), func(args []any, i int) []any {
		u := &b.usage[i]
		start := len(w.recs)
		w.recs = appendUsageRec(w.recs, u)
		return append(args, nanos(u.Time), u.KeyID, w.recs[start:len(w.recs):len(w.recs)])
	}); err != nil {
		return fmt.Errorf("insert usage: %w", err)
	}
	audit := tx.StmtContext(ctx, w.stmts.audit)
	for i := range b.audit {
		a := &b.audit[i]
		var meta any
		if len(a.Metadata) > 0 {
			j, jerr := json.Marshal(a.Metadata)
			if jerr != nil {
				// A record we cannot encode loses its metadata, not the batch.
				j, _ = json.Marshal(map[string]string{"error": "metadata not encodable: " + jerr.Error()})
			}
			meta = string(j)
		}
		if _, err := audit.ExecContext(ctx, nanos(a.Time), a.Type, a.Actor, a.RequestID, a.KeyMask, a.Message, meta); err != nil {
			return fmt.Errorf("insert audit: %w", err)
		}
	}
	return tx.Commit()
}

// close stops accepting operations, commits everything queued and stops
// the goroutine.
func (w *writer) close() {
	w.mu.Lock()
	if w.closed == nil {
		w.closed = store.ErrClosed
	}
	w.mu.Unlock()
	select {
	case <-w.exited:
		return
	default:
	}
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.exited
	w.closeStmts()
}

func (w *writer) closeStmts() {
	for _, s := range []*sql.Stmt{w.stmts.ledger, w.stmts.account, w.stmts.usage, w.stmts.audit, w.stmts.ledgerN, w.stmts.usageN} {
		if s != nil {
			s.Close()
		}
	}
}

// multiRows is how many rows one multi-row INSERT carries. SQLite allows
// 32766 bound parameters; 32 rows × 15 columns stays far below.
const multiRows = 32

const (
	ledgerInsert = `INSERT INTO ledger (seq, time, key_id, kind, delta, balance_after, tool, call_id, item, request_id, counterparty, actor, note) VALUES `
	ledgerCols   = 13
	usageInsert  = `INSERT INTO usage (time, key_id, rec) VALUES `
	usageCols    = 3
)

// valuesList returns "(?, …), (?, …)" for rows rows of cols columns.
func valuesList(cols, rows int) string {
	one := "(?" + strings.Repeat(", ?", cols-1) + ")"
	return one + strings.Repeat(", "+one, rows-1)
}

// insertRows inserts n rows, multiRows at a time through many and the rest
// one by one through one. row appends the i-th row's arguments.
func (w *writer) insertRows(ctx context.Context, tx *sql.Tx, one, many *sql.Stmt, n int, row func(args []any, i int) []any) error {
	i := 0
	if n >= multiRows {
		st := tx.StmtContext(ctx, many)
		for ; i+multiRows <= n; i += multiRows {
			args := w.args[:0]
			for j := i; j < i+multiRows; j++ {
				args = row(args, j)
			}
			w.args = args
			if _, err := st.ExecContext(ctx, args...); err != nil {
				return err
			}
		}
	}
	if i < n {
		st := tx.StmtContext(ctx, one)
		for ; i < n; i++ {
			args := row(w.args[:0], i)
			w.args = args
			if _, err := st.ExecContext(ctx, args...); err != nil {
				return err
			}
		}
	}
	clear(w.args) // drop string references
	return nil
}
