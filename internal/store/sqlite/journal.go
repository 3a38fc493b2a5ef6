package sqlite

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"

	"github.com/paygate/paygate/internal/credits"
	"github.com/paygate/paygate/internal/store"
)

// The money journal makes ledger lines durable with one write and one
// fdatasync, instead of a SQLite commit with its fsync.
//
// Why: a durable SQLite commit writes a WAL frame per touched page (the
// ledger, two of its indexes, the account row), each with its own pwrite,
// then fsyncs; on the development VM that is ~300 µs, and a charged reply
// waits for it. The journal appends one record per batch to a file whose
// blocks are already allocated, so the fdatasync has no metadata to write.
//
// With the journal on (sync=full, file-backed stores) the writer goroutine:
//   - appends each money-only batch (ledger lines and account rows) to the
//     journal, fdatasyncs it and only then answers the batch's callers;
//   - applies those batches to SQLite with synchronous=NORMAL while the
//     next batch's fdatasync runs, so SQLite's CPU overlaps the disk wait;
//   - commits any other batch (key rows, settings, usage and audit
//     records, barriers) with synchronous=FULL after applying everything
//     before it; that fsync makes every earlier SQLite commit durable, so
//     the journal is cleared.
//
// Open replays the journal's records that SQLite lacks (their seqs follow
// MAX(seq) of the ledger) in one FULL commit before anything else reads
// the store. A record is [len u32][crc32c u32][payload]; a zero length, a
// bad checksum, a short read or a seq that does not continue the previous
// record ends the journal.

const (
	journalSuffix = ".ledger-log"
	// journalPrealloc is written with zeros when the file is created so
	// that appends overwrite allocated blocks. Under load, half of it
	// filled makes a sync point: larger means fewer syncs of SQLite's
	// files (each flushes pages rewritten since the last one; measured
	// 1 MiB → 8 MiB: 48 → 34 µs per durable call) and a longer replay
	// after a crash (about 30,000 lines for 4 MiB).
	journalPrealloc = 8 << 20
	journalHeader   = 8
	// journalVersion is the first byte of every record's payload.
	journalVersion = 1
	// maxJournalRecord bounds a record's length so a corrupt length cannot
	// make recovery allocate gigabytes.
	maxJournalRecord = 256 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// journal is the append-only money log. Only the writer goroutine (and Open,
// before it starts) use it.
type journal struct {
	f    *os.File
	off  int64 // where the next record goes
	last int64 // where the last record began
	size int64 // bytes known allocated
	buf  []byte
	sync func(*os.File) error // fdatasync; tests replace it
}

func openJournal(path string) (*journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &journal{f: f, size: fi.Size(), sync: fdatasync}, nil
}

// prealloc makes sure the first journalPrealloc bytes exist on disk.
func (j *journal) prealloc() error {
	if j.size >= journalPrealloc {
		return nil
	}
	zeros := make([]byte, 64<<10) // in pieces: one buffer of the whole size would linger in RSS
	for off := j.size; off < journalPrealloc; off += int64(len(zeros)) {
		if _, err := j.f.WriteAt(zeros[:min(int64(len(zeros)), journalPrealloc-off)], off); err != nil {
			return err
		}
	}
	if err := j.f.Sync(); err != nil {
		return err
	}
	j.size = journalPrealloc
	return nil
}

// append writes b's ledger lines and account rows as one record; it is
// durable once sync returns nil.
func (j *journal) append(entries []store.Entry, accts []acctRow) error {
	j.buf = encodeJournalRecord(j.buf[:0], entries, accts)
	j.last = j.off
	if _, err := j.f.WriteAt(j.buf, j.off); err != nil {
		return err
	}
	j.off += int64(len(j.buf))
	j.size = max(j.size, j.off)
	return nil
}

// clear forgets every record: SQLite holds them durably. The first header
// is zeroed (and synced) so a restart reads an empty journal even where a
// restore has since lowered the ledger's last seq.
func (j *journal) clear() error {
	if j.off == 0 {
		return nil
	}
	var zero [journalHeader]byte
	if _, err := j.f.WriteAt(zero[:], 0); err != nil {
		return err
	}
	if err := j.sync(j.f); err != nil {
		return err
	}
	j.off = 0
	return nil
}

// unwrite invalidates the last record after its write or sync failed, as
// far as a failing disk allows: its callers were told it was not recorded.
func (j *journal) unwrite() {
	var zero [journalHeader]byte
	if _, err := j.f.WriteAt(zero[:], j.last); err == nil {
		_ = j.sync(j.f)
	}
	j.off = j.last
}

func (j *journal) close() error { return j.f.Close() }

// journalRecord is one decoded batch.
type journalRecord struct {
	entries []store.Entry
	accts   []acctRow
}

// encodeJournalRecord appends one record: header, then the payload of
// uvarint counts, varint numbers and length-prefixed strings.
func encodeJournalRecord(b []byte, entries []store.Entry, accts []acctRow) []byte {
	start := len(b)
	b = append(b, make([]byte, journalHeader)...)
	b = append(b, journalVersion)
	b = binary.AppendUvarint(b, uint64(len(entries)))
	for i := range entries {
		e := &entries[i]
		b = binary.AppendVarint(b, e.Seq)
		b = binary.AppendVarint(b, nanos(e.Time))
		b = appendLenStr(b, e.KeyID)
		b = appendLenStr(b, string(e.Kind))
		b = binary.AppendVarint(b, e.Delta)
		b = binary.AppendVarint(b, e.BalanceAfter)
		b = appendLenStr(b, e.Tool)
		b = appendLenStr(b, e.CallID)
		b = binary.AppendVarint(b, int64(e.Item))
		b = appendLenStr(b, e.RequestID)
		b = appendLenStr(b, e.Counterparty)
		b = appendLenStr(b, e.Actor)
		b = appendLenStr(b, e.Note)
	}
	b = binary.AppendUvarint(b, uint64(len(accts)))
	for i := range accts {
		r := &accts[i]
		a := &r.a
		b = appendLenStr(b, r.keyID)
		for _, v := range [...]int64{a.balance, a.spent, a.calls, a.lastUsed, int64(a.day), int64(a.month),
			a.dailyCalls, a.dailyCredits, a.monthlyCalls, a.monthlyCredits} {
			b = binary.AppendVarint(b, v)
		}
	}
	payload := b[start+journalHeader:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(payload, castagnoli))
	return b
}

func appendLenStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

var (
	errJournalCorrupt = errors.New("corrupt journal record")
	errJournalVersion = errors.New("journal record of an unknown format (written by a newer paygate?)")
)

// decodeJournalPayload parses a record's payload (checksum already
// verified). Any inconsistency is an error, never a panic.
func decodeJournalPayload(p []byte) (journalRecord, error) {
	if len(p) == 0 || p[0] != journalVersion {
		return journalRecord{}, errJournalVersion
	}
	d := journalDecoder{p: p[1:]}
	var rec journalRecord
	n := d.count()
	for i := uint64(0); i < n && d.err == nil; i++ {
		e := store.Entry{
			Seq:  d.varint(),
			Time: fromNanos(d.varint()),
		}
		e.KeyID = d.str()
		e.Kind = store.EntryKind(d.str())
		e.Delta = credits.Credits(d.varint())
		e.BalanceAfter = credits.Credits(d.varint())
		e.Tool = d.str()
		e.CallID = d.str()
		e.Item = int(d.varint())
		e.RequestID = d.str()
		e.Counterparty = d.str()
		e.Actor = d.str()
		e.Note = d.str()
		rec.entries = append(rec.entries, e)
	}
	n = d.count()
	for i := uint64(0); i < n && d.err == nil; i++ {
		r := acctRow{keyID: d.str()}
		a := &r.a
		a.balance, a.spent, a.calls, a.lastUsed = d.varint(), d.varint(), d.varint(), d.varint()
		a.day, a.month = int32(d.varint()), int32(d.varint())
		a.dailyCalls, a.dailyCredits, a.monthlyCalls, a.monthlyCredits = d.varint(), d.varint(), d.varint(), d.varint()
		rec.accts = append(rec.accts, r)
	}
	if d.err == nil && len(d.p) != 0 {
		d.err = errJournalCorrupt
	}
	if d.err != nil {
		return journalRecord{}, d.err
	}
	for i := 1; i < len(rec.entries); i++ {
		if rec.entries[i].Seq != rec.entries[i-1].Seq+1 {
			return journalRecord{}, fmt.Errorf("%w: seqs not consecutive", errJournalCorrupt)
		}
	}
	return rec, nil
}

type journalDecoder struct {
	p   []byte
	err error
}

// varint reads what binary.AppendVarint wrote: a zigzag-encoded uvarint.
func (d *journalDecoder) varint() int64 {
	u := d.uvarint()
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v
}

func (d *journalDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.p)
	if n <= 0 {
		d.err = errJournalCorrupt
		return 0
	}
	d.p = d.p[n:]
	return v
}

// count reads an element count; each element takes at least one byte, so
// a count beyond the bytes left is corrupt (and cannot drive a huge loop).
func (d *journalDecoder) count() uint64 {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.p)) {
		d.err = errJournalCorrupt
		return 0
	}
	return n
}

func (d *journalDecoder) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.p)) {
		d.err = errJournalCorrupt
		return ""
	}
	s := string(d.p[:n])
	d.p = d.p[n:]
	return s
}

// readJournal returns the records that continue a ledger whose last seq
// is lastSeq, in order. Records at or below lastSeq are already in SQLite
// and skipped; reading stops at the journal's end (a zero or bad header,
// a short read) or at a record that does not continue the sequence.
func readJournal(r io.ReaderAt, lastSeq int64) ([]journalRecord, error) {
	var out []journalRecord
	next := lastSeq + 1
	var hdr [journalHeader]byte
	for off := int64(0); ; {
		if _, err := r.ReadAt(hdr[:], off); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		n := binary.LittleEndian.Uint32(hdr[:4])
		if n == 0 || n > maxJournalRecord {
			return out, nil
		}
		payload := make([]byte, n)
		if _, err := r.ReadAt(payload, off+journalHeader); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil // torn at the end of the file
			}
			return nil, err
		}
		if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(hdr[4:]) {
			return out, nil // torn write, or an older record's leftovers
		}
		rec, err := decodeJournalPayload(payload)
		if errors.Is(err, errJournalVersion) {
			// Intact, but not ours to read: stopping here could drop
			// acknowledged charges, so refuse to open instead.
			return nil, fmt.Errorf("record at offset %d: %w", off, err)
		}
		if err != nil {
			return out, nil
		}
		off += journalHeader + int64(n)
		if len(rec.entries) == 0 {
			continue
		}
		first, last := rec.entries[0].Seq, rec.entries[len(rec.entries)-1].Seq
		switch {
		case last < next:
			continue // in SQLite already
		case first != next:
			return out, nil // not a continuation: stale leftovers
		}
		out = append(out, rec)
		next = last + 1
	}
}

// openJournal opens the store's journal, replays what SQLite lacks and
// leaves it empty and, with prealloc, preallocated.
func (s *Store) openJournal(prealloc bool) (*journal, error) {
	j, err := openJournal(s.opts.Path + journalSuffix)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	n, err := s.replayJournal(j)
	if err == nil && prealloc {
		err = j.prealloc()
	}
	if err != nil {
		j.close()
		return nil, fmt.Errorf("journal: %w", err)
	}
	if n > 0 {
		s.log.Info("sqlite: replayed ledger lines from the journal", "lines", n)
	}
	return j, nil
}

// dropJournal replays a journal a run with the journal on left behind,
// then removes it: this run does not use one.
func (s *Store) dropJournal() error {
	path := s.opts.Path + journalSuffix
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	j, err := s.openJournal(false)
	if err != nil {
		return err
	}
	j.close()
	return os.Remove(path)
}

// replayJournal brings SQLite up to date with the journal and clears it.
// It runs in Open, before keys are loaded.
func (s *Store) replayJournal(j *journal) (int, error) {
	var lastSeq int64
	if err := s.wdb.QueryRow("SELECT COALESCE(MAX(seq), 0) FROM ledger").Scan(&lastSeq); err != nil {
		return 0, err
	}
	recs, err := readJournal(j.f, lastSeq)
	if err != nil {
		return 0, fmt.Errorf("read journal: %w", err)
	}
	j.off = 1 // something may be on disk: clear() zeroes the header
	if len(recs) == 0 {
		return 0, j.clear()
	}
	b := &batch{}
	n := 0
	for _, r := range recs {
		b.entries = append(b.entries, r.entries...)
		b.accts = append(b.accts, r.accts...)
		n += len(r.entries)
	}
	// Recovery is rare: prepare what write needs on the spot.
	w := &writer{db: s.wdb, seen: make(map[string]int), dbPath: s.opts.Path}
	if err := w.prepare(context.Background()); err != nil {
		return 0, err
	}
	defer w.closeStmts()
	if err := w.write(b); err != nil {
		return 0, fmt.Errorf("replay journal: %w", err)
	}
	if err := w.syncSQLite(); err != nil {
		return 0, fmt.Errorf("replay journal: %w", err)
	}
	return n, j.clear()
}
