package sqlite

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/internal/store/storetest"
)

func journalEntries(first int64, n int) []store.Entry {
	es := make([]store.Entry, n)
	for i := range es {
		es[i] = store.Entry{
			Seq: first + int64(i), Time: time.Unix(1700000000, int64(i)*1000).UTC(), KeyID: "key_" + strconv.Itoa(i%3),
			Kind: store.EntryCharge, Delta: -int64(i + 1), BalanceAfter: 1000 - int64(i), Tool: "tool/ü",
			CallID: "call_" + strconv.Itoa(i), Item: i % 2, RequestID: "req", Counterparty: "cp", Actor: "a", Note: "n\x00te",
		}
	}
	return es
}

func journalAccts() []acctRow {
	return []acctRow{
		{"key_0", account{totals{balance: 5, spent: -3, calls: 7, lastUsed: 1700000000123456789},
			periods{day: 20000, month: 650, dailyCalls: 1, dailyCredits: 2, monthlyCalls: 3, monthlyCredits: 4}}},
		{"key_1", account{totals: totals{balance: -9}}},
	}
}

// TestJournalRecordRoundTrip: every field of ledger lines and account
// rows survives encoding.
func TestJournalRecordRoundTrip(t *testing.T) {
	es, as := journalEntries(41, 5), journalAccts()
	b := encodeJournalRecord(nil, es, as)
	if got := int(binary.LittleEndian.Uint32(b)); got != len(b)-journalHeader {
		t.Fatalf("length %d, payload %d", got, len(b)-journalHeader)
	}
	rec, err := decodeJournalPayload(b[journalHeader:])
	if err != nil {
		t.Fatal(err)
	}
	for i := range es {
		es[i].Time = es[i].Time.Local()
		rec.entries[i].Time = rec.entries[i].Time.Local()
	}
	if !reflect.DeepEqual(rec.entries, es) {
		t.Fatalf("entries:\n got %+v\nwant %+v", rec.entries, es)
	}
	if !reflect.DeepEqual(rec.accts, as) {
		t.Fatalf("accounts:\n got %+v\nwant %+v", rec.accts, as)
	}
}

// TestReadJournal: what recovery takes from a journal and where it stops.
func TestReadJournal(t *testing.T) {
	rec := func(first int64, n int) []byte {
		return encodeJournalRecord(nil, journalEntries(first, n), journalAccts())
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	torn := rec(4, 2)
	torn = torn[:len(torn)-3]
	badCRC := rec(4, 2)
	badCRC[len(badCRC)-1] ^= 1
	cases := []struct {
		name    string
		data    []byte
		lastSeq int64
		want    []int64 // first seq of each record taken
	}{
		{"empty", nil, 0, nil},
		{"zeros", make([]byte, 4096), 0, nil},
		{"all new", cat(rec(1, 3), rec(4, 2), rec(6, 1)), 0, []int64{1, 4, 6}},
		{"already in sqlite", cat(rec(1, 3), rec(4, 2)), 5, nil},
		{"part in sqlite", cat(rec(1, 3), rec(4, 2), rec(6, 1)), 3, []int64{4, 6}},
		{"torn tail", cat(rec(1, 3), torn), 0, []int64{1}},
		{"bad checksum", cat(rec(1, 3), badCRC, rec(6, 1)), 0, []int64{1}},
		{"gap", cat(rec(1, 3), rec(5, 1)), 0, []int64{1}},
		{"not from the next seq", cat(rec(7, 3)), 3, nil},
		{"stale leftovers after a new run", cat(rec(10, 2), rec(3, 2), rec(5, 2)), 9, []int64{10}},
		{"zero header ends it", cat(rec(1, 3), make([]byte, 8), rec(4, 2)), 0, []int64{1}},
		// SQLite applies whole records, so its last seq never falls inside
		// one; if it does, the journal is not trusted past that point.
		{"record straddling the last seq", cat(rec(1, 5), rec(6, 1)), 3, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			recs, err := readJournal(bytes.NewReader(c.data), c.lastSeq)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, r := range recs {
				got = append(got, r.entries[0].Seq)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("took records starting at %v, want %v", got, c.want)
			}
		})
	}
}

// FuzzJournalRead: no journal content makes recovery panic, and whatever
// it takes continues the ledger without gaps.
func FuzzJournalRead(f *testing.F) {
	f.Add(encodeJournalRecord(nil, journalEntries(1, 3), journalAccts()), int64(0))
	f.Add(append(encodeJournalRecord(nil, journalEntries(1, 1), nil), encodeJournalRecord(nil, journalEntries(2, 2), journalAccts())...), int64(1))
	f.Add([]byte{5, 0, 0, 0, 1, 2, 3, 4, 0xff, 0xff, 0xff, 0xff, 0xff}, int64(0))
	f.Fuzz(func(t *testing.T, data []byte, lastSeq int64) {
		recs, err := readJournal(bytes.NewReader(data), lastSeq)
		if errors.Is(err, errJournalVersion) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		next := lastSeq + 1
		for _, r := range recs {
			if len(r.entries) == 0 {
				t.Fatal("empty record taken")
			}
			if r.entries[0].Seq != next {
				t.Fatalf("record %d..%d does not continue %d", r.entries[0].Seq, r.entries[len(r.entries)-1].Seq, next)
			}
			next = r.entries[len(r.entries)-1].Seq + 1
			again := encodeJournalRecord(nil, r.entries, r.accts)
			if _, err := decodeJournalPayload(again[journalHeader:]); err != nil {
				t.Fatalf("re-encoded record does not decode: %v", err)
			}
		}
	})
}

// TestJournalReplay simulates a power loss: SQLite never gets the money
// lines (as if its unsynced commits were lost), only the journal has them.
// Reopening must replay every acknowledged line exactly once.
func TestJournalReplay(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s := openT(t, Options{Path: path})
	k1, k2 := mkKey(t, s, 1, 1000), mkKey(t, s, 2, 50)
	s.w.skipApply.Store(true) // from here on, journaled lines stay out of SQLite
	for i := range 20 {
		if err := reserve(s, k1.ID, "c"+strconv.Itoa(i), int64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	rc, err := s.Refund(ctx, store.Refund{KeyID: k1.ID, CallID: "c3", Item: 0, Now: storetest.T0})
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	from, to, err := s.Transfer(ctx, k1.ID, k2.ID, 7, store.Meta{Actor: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if err := to.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	want1, want2 := from.BalanceAfter, to.BalanceAfter
	if want1 != 1000-210+4-7 || want2 != 57 {
		t.Fatalf("balances %d, %d", want1, want2)
	}
	// What SQLite has (the key rows and their grants) and what it lacks.
	var inSQL int
	if err := s.wdb.QueryRow("SELECT COUNT(*) FROM ledger").Scan(&inSQL); err != nil {
		t.Fatal(err)
	}
	if inSQL != 2 {
		t.Fatalf("SQLite has %d ledger lines before the crash, want the 2 grants", inSQL)
	}
	s.Close() // skipApply: Close leaves the journal as a crash would

	for round := range 2 { // the second open must not apply anything twice
		s = openT(t, Options{Path: path})
		a1, err := s.Account(ctx, k1.ID)
		if err != nil {
			t.Fatal(err)
		}
		a2, _ := s.Account(ctx, k2.ID)
		if a1.Balance != want1 || a2.Balance != want2 {
			t.Fatalf("round %d: balances after replay %d, %d; want %d, %d", round, a1.Balance, a2.Balance, want1, want2)
		}
		if a1.Calls != 19 {
			t.Fatalf("round %d: calls %d, want 19 (20 charges, one refunded)", round, a1.Calls)
		}
		var n int
		if err := s.rdb.QueryRow("SELECT COUNT(*) FROM ledger").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 2+20+1+2 {
			t.Fatalf("round %d: %d ledger lines, want 25", round, n)
		}
		if err := s.Verify(ctx); err != nil {
			t.Fatalf("round %d: Verify: %v", round, err)
		}
		storetest.CheckInvariant(t, s, k1.ID, k2.ID)
		// A duplicate of a replayed call is still refused.
		if err := reserve(s, k1.ID, "c5", 1); err == nil {
			t.Fatalf("round %d: duplicate of a replayed call accepted", round)
		}
		s.Close()
	}
}

// TestJournalClearedBySync: a FULL point (a key row is written) clears
// the journal, and a cleared journal replays nothing even when the ledger
// is later emptied (as a restore may do).
func TestJournalClearedBySync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s := openT(t, Options{Path: path})
	k := mkKey(t, s, 1, 1000)
	for i := range 5 {
		if err := reserve(s, k.ID, "c"+strconv.Itoa(i), 1); err != nil {
			t.Fatal(err)
		}
	}
	mkKey(t, s, 2, 0) // a key row: answered only once SQLite is synced
	var off int64
	s.w.mu.Lock() // the writer owns j; it is idle once mkKey returned
	off = s.w.j.off
	s.w.mu.Unlock()
	if off != 0 {
		t.Fatalf("journal offset %d after a synced write, want 0", off)
	}
	s.Close()
	data, err := os.ReadFile(path + journalSuffix)
	if err != nil {
		t.Fatal(err)
	}
	if recs, _ := readJournal(bytes.NewReader(data), 0); len(recs) != 0 {
		t.Fatalf("cleared journal still yields %d records from seq 0", len(recs))
	}
	if len(data) < journalPrealloc {
		t.Fatalf("journal is %d bytes, want it preallocated to %d", len(data), journalPrealloc)
	}
}

// TestNoJournal: sync=full without the journal still works, and
// in-memory and sync=normal stores never create one.
func TestNoJournal(t *testing.T) {
	dir := t.TempDir()
	for _, o := range []Options{
		{Path: filepath.Join(dir, "a"), NoJournal: true},
		{Path: filepath.Join(dir, "b"), Sync: SyncNormal},
	} {
		s := openT(t, o)
		k := mkKey(t, s, 1, 10)
		if err := reserve(s, k.ID, "c", 3); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if _, err := os.Stat(o.Path + journalSuffix); !os.IsNotExist(err) {
			t.Fatalf("%+v: journal exists (%v)", o, err)
		}
	}
}

// FuzzJournalPayload: the payload decoder (past the checksum) refuses any
// inconsistency with an error, never a panic, and what it accepts encodes
// back to a record that decodes the same.
func FuzzJournalPayload(f *testing.F) {
	f.Add(encodeJournalRecord(nil, journalEntries(1, 3), journalAccts())[journalHeader:])
	f.Add([]byte{1, 2, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		rec, err := decodeJournalPayload(p)
		if err != nil {
			return
		}
		again, err := decodeJournalPayload(encodeJournalRecord(nil, rec.entries, rec.accts)[journalHeader:])
		if err != nil {
			t.Fatalf("re-encoded payload: %v", err)
		}
		if len(again.entries) != len(rec.entries) || len(again.accts) != len(rec.accts) {
			t.Fatal("re-encoded payload differs")
		}
		for i := range rec.entries {
			a, b := rec.entries[i], again.entries[i]
			if a.Seq != b.Seq || a.KeyID != b.KeyID || a.Delta != b.Delta || a.BalanceAfter != b.BalanceAfter || a.CallID != b.CallID || !a.Time.Equal(b.Time) {
				t.Fatalf("entry %d: %+v != %+v", i, a, b)
			}
		}
	})
}

// TestJournalMixedBatch: ledger lines that share a batch with a barrier
// (or with usage records) are journaled too: a power loss after their
// Wait returned must not lose them.
func TestJournalMixedBatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s := openT(t, Options{Path: path})
	k := mkKey(t, s, 1, 100)
	s.w.skipApply.Store(true)
	// Hold the writer inside a transaction so the charge and the barrier
	// queue into the same batch.
	inside, release := make(chan struct{}), make(chan struct{})
	go s.w.exec(ctx, func(*wtx) error {
		close(inside)
		<-release
		return nil
	})
	<-inside
	rc, err := s.Reserve(ctx, store.Reservation{KeyID: k.ID, CallID: "mixed", Now: storetest.T0,
		Items: []store.Item{{Tool: "t", Amount: 30}}})
	if err != nil {
		t.Fatal(err)
	}
	bt := s.w.barrier()
	close(release)
	if err := rc.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := bt.wait(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()
	reopenWantBalance(t, path, k.ID, 70)
}

// crashWithJournal leaves a store at path whose last charges (one of 40
// credits on a key of 100) only the journal holds, as after a power loss.
func crashWithJournal(t *testing.T, path string) string {
	t.Helper()
	s := openT(t, Options{Path: path})
	k := mkKey(t, s, 1, 100)
	s.w.skipApply.Store(true)
	if err := reserve(s, k.ID, "lost-without-journal", 40); err != nil {
		t.Fatal(err)
	}
	s.Close()
	return k.ID
}

// TestJournalReplayedInAnyMode: a journal left by a sync=full run is
// replayed even when the next run uses sync=normal (which keeps no
// journal), and is then removed.
func TestJournalReplayedInAnyMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	id := crashWithJournal(t, path)
	s := openT(t, Options{Path: path, Sync: SyncNormal})
	defer s.Close()
	a, err := s.Account(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if a.Balance != 60 {
		t.Fatalf("balance %d after opening with sync=normal, want 60 (the journal's charge)", a.Balance)
	}
	if _, err := os.Stat(path + journalSuffix); !os.IsNotExist(err) {
		t.Fatalf("journal still there after a run without one: %v", err)
	}
}

// TestJournalUnknownVersion: an intact record of another format stops
// Open with a clear error instead of being skipped (it may hold charges).
func TestJournalUnknownVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	crashWithJournal(t, path)
	data, err := os.ReadFile(path + journalSuffix)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint32(data)
	data[journalHeader] = journalVersion + 1
	binary.LittleEndian.PutUint32(data[4:], crc32.Checksum(data[journalHeader:journalHeader+int(n)], castagnoli))
	if err := os.WriteFile(path+journalSuffix, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, Options{Path: path})
	if err == nil {
		s.Close()
		t.Fatal("Open accepted a journal of an unknown format")
	}
	if !errors.Is(err, errJournalVersion) || !strings.Contains(err.Error(), "newer paygate") {
		t.Fatalf("error %q does not say what is wrong", err)
	}
}

// TestJournalApplyFailure: when applying journaled lines to SQLite fails,
// the store fails, nothing later reaches SQLite ahead of them, and the
// journal is kept: a restart replays every acknowledged line (a later
// batch in SQLite would have made the restart skip the earlier ones).
func TestJournalApplyFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s := openT(t, Options{Path: path, MaxBatch: 2})
	k := mkKey(t, s, 1, 100)
	armed, failed := false, false
	s.w.afterBegin = func(*wtx) error { // runs on the writer goroutine
		if armed && !failed {
			failed = true
			return errors.New("injected apply failure")
		}
		return nil
	}
	// Hold the writer so that two charges seal one batch and a third
	// charge shares the next batch with a barrier.
	inside, release := make(chan struct{}), make(chan struct{})
	go s.w.exec(ctx, func(*wtx) error {
		close(inside)
		<-release
		armed = true // the next transaction is the apply of the first batch
		return nil
	})
	<-inside
	var rcs []*store.Receipt
	for i := range 3 {
		rc, err := s.Reserve(ctx, store.Reservation{KeyID: k.ID, CallID: "c" + strconv.Itoa(i), Now: storetest.T0,
			Items: []store.Item{{Tool: "t", Amount: 10}}})
		if err != nil {
			t.Fatal(err)
		}
		rcs = append(rcs, rc)
	}
	bt := s.w.barrier()
	close(release)
	for i, rc := range rcs {
		if err := rc.Wait(ctx); err != nil {
			t.Fatalf("charge %d: %v (it is durable in the journal)", i, err)
		}
	}
	_ = bt.wait(ctx)
	if !failed {
		t.Fatal("the apply never ran")
	}
	if err := s.Ping(ctx); err == nil {
		t.Fatal("store still takes writes after a failed apply")
	}
	s.Close()
	reopenWantBalance(t, path, k.ID, 70)
}

// reopenWantBalance reopens the store at path and requires keyID's balance
// to be want (an acknowledged charge lost, or applied twice, changes it)
// and the ledger to verify.
func reopenWantBalance(t *testing.T, path, keyID string, want int64) {
	t.Helper()
	s := openT(t, Options{Path: path})
	defer s.Close()
	a, err := s.Account(ctx, keyID)
	if err != nil {
		t.Fatal(err)
	}
	if a.Balance != want {
		t.Fatalf("balance after reopening %d, want %d: an acknowledged charge was lost or applied twice", a.Balance, want)
	}
	if err := s.Verify(ctx); err != nil {
		t.Fatalf("Verify after reopening: %v", err)
	}
}
