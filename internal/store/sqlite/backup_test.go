package sqlite

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/store"
	"github.com/paygate/paygate/internal/store/storetest"
)

// fileStore opens a store on a file and checks it reconciles at cleanup.
func fileStore(t *testing.T) *Store {
	t.Helper()
	s := openT(t, Options{Path: filepath.Join(t.TempDir(), "paygate.db"), Sync: SyncNormal})
	t.Cleanup(func() {
		if err := s.Verify(ctx); err != nil {
			t.Errorf("Verify: %v", err)
		}
		s.Close()
	})
	return s
}

func snapshotT(t *testing.T, s *Store, audit bool) *store.Snapshot {
	t.Helper()
	snap, err := s.Snapshot(ctx, store.SnapshotOptions{Audit: audit})
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	if err := snap.Validate(); err != nil {
		t.Fatalf("snapshot does not validate: %v", err)
	}
	return snap
}

// populated returns a store with keys that were charged, refunded,
// topped up, transferred between, imported with opening counters, an
// alias, admin keys, settings and audit events.
func populated(t *testing.T) (*Store, []*store.Key) {
	s := fileStore(t)
	a, b := mkKey(t, s, 1, 1000), mkKey(t, s, 2, 50)
	for i := range 5 {
		if err := reserve(s, a.ID, fmt.Sprintf("call-a-%d", i), 7); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Refund(ctx, store.Refund{KeyID: a.ID, CallID: "call-a-1", Amount: 7, Now: storetest.T0}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Refund(ctx, store.Refund{KeyID: a.ID, CallID: "call-a-2", Amount: 3, Now: storetest.T0}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Transfer(ctx, a.ID, b.ID, 100, store.Meta{Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TopUp(ctx, b.ID, -20, store.EntryAdjustment, store.Meta{Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateKey(ctx, b.ID, func(k *store.Key) error { k.Alias = "bee"; k.Tags = map[string]string{"t": "1"}; return nil }); err != nil {
		t.Fatal(err)
	}
	sec := "pg_imported_0000000000000000000000"
	imp, _, err := s.ImportKey(ctx, &store.Key{ID: "key_00000000000000ff", Hash: storetest.HashOf(sec), Prefix: sec[:7],
		Suffix: sec[len(sec)-4:], Name: "imported"}, 40, store.Account{Spent: 60, Calls: 6}, store.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAdminKey(ctx, &store.AdminKey{ID: "adm_a", Hash: storetest.HashOf("ak_a"), Prefix: "ak_a", Suffix: "aaaa",
		Role: store.RoleSuperAdmin, CreatedAt: storetest.T0}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSetting(ctx, "maintenance", []byte(`{"on":false}`)); err != nil {
		t.Fatal(err)
	}
	s.AppendAudit(store.AuditEvent{Time: storetest.T0, Type: "key.created", Actor: "test", Metadata: map[string]any{"n": 1.0}})
	return s, []*store.Key{a, b, imp}
}

// state is what a restore must reproduce: keys, accounts and each key's
// ledger lines (without seqs, which merge renumbers).
func state(t *testing.T, s *Store) map[string]string {
	t.Helper()
	snap := snapshotT(t, s, false)
	out := map[string]string{}
	for _, ks := range snap.Keys {
		k := *ks.Key
		out[k.ID] = fmt.Sprintf("%+v %+v", k, ks.Account)
	}
	for _, e := range snap.Ledger {
		e.Seq = 0
		out[e.KeyID] += fmt.Sprintf("\n%+v", e)
	}
	return out
}

func TestSnapshotFullRestoreRoundTrip(t *testing.T) {
	src, ks := populated(t)
	snap := snapshotT(t, src, true)
	if len(snap.Keys) != 3 || len(snap.AdminKeys) != 1 || len(snap.Settings) != 1 || len(snap.Audit) != 1 {
		t.Fatalf("snapshot: %d keys, %d admin keys, %d settings, %d audit", len(snap.Keys), len(snap.AdminKeys), len(snap.Settings), len(snap.Audit))
	}
	dst := fileStore(t)
	mkKey(t, dst, 9, 5) // replaced by the full restore
	res, err := dst.Restore(ctx, snap, store.RestoreOptions{Mode: store.RestoreFull})
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if res.KeysAdded != 3 || res.KeysRemoved != 1 || res.LedgerEntries != len(snap.Ledger) || res.AuditRestored != 1 {
		t.Fatalf("result %+v", res)
	}
	if err := dst.Verify(ctx); err != nil {
		t.Fatalf("Verify after restore: %v", err)
	}
	if !reflect.DeepEqual(state(t, dst), state(t, src)) {
		t.Fatalf("restored state differs:\n%v\n---\n%v", state(t, dst), state(t, src))
	}
	// The seqs are the original ones, and new lines continue after them.
	after := snapshotT(t, dst, true)
	if !reflect.DeepEqual(after.Ledger, snap.Ledger) {
		t.Fatal("ledger lines differ after a full restore")
	}
	rc, err := dst.TopUp(ctx, ks[0].ID, 1, store.EntryTopUp, store.Meta{})
	if err != nil || rc.Seq <= snap.Ledger[len(snap.Ledger)-1].Seq {
		t.Fatalf("top up after restore: %+v, %v", rc, err)
	}
	// Secrets resolve, calls are remembered: a restored call cannot be
	// charged again and can still be refunded once.
	if k, err := dst.LookupHash(ctx, ks[1].Hash); err != nil || k.ID != ks[1].ID || k.Alias != "bee" {
		t.Fatalf("LookupHash: %+v, %v", k, err)
	}
	if err := reserve(dst, ks[0].ID, "call-a-3", 1); !errors.Is(err, store.ErrDuplicateCall) {
		t.Fatalf("reused call id: %v", err)
	}
	if _, err := dst.Refund(ctx, store.Refund{KeyID: ks[0].ID, CallID: "call-a-4", Amount: 7, Now: storetest.T0}); err != nil {
		t.Fatalf("refund of a restored call: %v", err)
	}
	if got, _ := dst.ListAdminKeys(ctx); len(got) != 1 || got[0].ID != "adm_a" {
		t.Fatalf("admin keys %+v", got)
	}
	if v, err := dst.GetSetting(ctx, "maintenance"); err != nil || string(v) != `{"on":false}` {
		t.Fatalf("setting %q, %v", v, err)
	}
}

func TestRestoreSurvivesReopen(t *testing.T) {
	src, _ := populated(t)
	snap := snapshotT(t, src, false)
	path := filepath.Join(t.TempDir(), "dst.db")
	dst := openT(t, Options{Path: path})
	if _, err := dst.Restore(ctx, snap, store.RestoreOptions{Mode: store.RestoreFull}); err != nil {
		t.Fatal(err)
	}
	want := state(t, dst)
	dst.Close()
	re := openT(t, Options{Path: path})
	defer re.Close()
	if err := re.Verify(ctx); err != nil {
		t.Fatalf("Verify after reopen: %v", err)
	}
	if got := state(t, re); !reflect.DeepEqual(got, want) {
		t.Fatal("state changed across reopen")
	}
}

func TestRestoreMerge(t *testing.T) {
	src, ks := populated(t)
	snap := snapshotT(t, src, false)
	dst := fileStore(t)
	own := mkKey(t, dst, 50, 10)
	if err := reserve(dst, own.ID, "own-call", 1); err != nil {
		t.Fatal(err)
	}
	// The first key exists already (same id, other balance): merge keeps it.
	if _, _, err := dst.CreateKey(ctx, ks[0].Clone(), 3, store.Meta{}); err != nil {
		t.Fatal(err)
	}
	before := state(t, dst)
	res, err := dst.Restore(ctx, snap, store.RestoreOptions{Mode: store.RestoreMerge})
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if res.KeysAdded != 2 || res.KeysSkipped != 1 || res.KeysOverwritten != 0 || res.AdminKeysAdded != 1 || res.SettingsRestored != 1 {
		t.Fatalf("result %+v", res)
	}
	got, want := state(t, dst), state(t, src)
	if got[ks[0].ID] != before[ks[0].ID] || got[own.ID] != before[own.ID] {
		t.Fatal("merge changed keys that existed")
	}
	for _, k := range ks[1:] {
		if got[k.ID] != want[k.ID] {
			t.Fatalf("merged key %s:\n%s\nwant\n%s", k.ID, got[k.ID], want[k.ID])
		}
	}
	// A second merge of the same backup adds nothing.
	res, err = dst.Restore(ctx, snap, store.RestoreOptions{Mode: store.RestoreMerge})
	if err != nil || res.KeysAdded != 0 || res.KeysSkipped != 3 || res.AdminKeysSkipped != 1 {
		t.Fatalf("second merge: %+v, %v", res, err)
	}
}

func TestRestoreOverwrite(t *testing.T) {
	src, ks := populated(t)
	snap := snapshotT(t, src, false)
	dst := fileStore(t)
	// Key 0 exists with other config and money; key 1 exists revoked and
	// rotated.
	a := ks[0].Clone()
	a.Name, a.AllowedTools = "renamed", []string{"x"}
	if _, _, err := dst.CreateKey(ctx, a, 5000, store.Meta{}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := reserve(dst, a.ID, fmt.Sprintf("dst-%d", i), 11); err != nil {
			t.Fatal(err)
		}
	}
	b := ks[1].Clone()
	b.Alias = ""
	if _, _, err := dst.CreateKey(ctx, b, 1, store.Meta{}); err != nil {
		t.Fatal(err)
	}
	newHash := storetest.HashOf("pg_rotated_secret_00000000000000")
	if _, err := dst.RotateKey(ctx, b.ID, newHash, "pg_rota", "0000"); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.UpdateKey(ctx, b.ID, func(k *store.Key) error { k.Revoked = true; return nil }); err != nil {
		t.Fatal(err)
	}
	res, err := dst.Restore(ctx, snap, store.RestoreOptions{Mode: store.RestoreOverwrite, Meta: store.Meta{Actor: "tester"}})
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if res.KeysOverwritten != 2 || res.KeysAdded != 1 || res.Adjustments != 2 || len(res.Warnings) != 2 {
		t.Fatalf("result %+v", res)
	}
	want := map[string]store.KeyState{}
	for _, k := range snap.Keys {
		want[k.Key.ID] = k
	}
	for _, id := range []string{a.ID, b.ID} {
		k, acct, err := dst.GetKey(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		w := want[id]
		if acct.Balance != w.Account.Balance || acct.Spent != w.Account.Spent || acct.Calls != w.Account.Calls {
			t.Fatalf("key %s account %+v, want %+v", id, acct, w.Account)
		}
		if k.Name != w.Key.Name || !reflect.DeepEqual(k.AllowedTools, w.Key.AllowedTools) || k.Alias != w.Key.Alias {
			t.Fatalf("key %s config %+v, want %+v", id, k, w.Key)
		}
	}
	kb, _, _ := dst.GetKey(ctx, b.ID)
	if !kb.Revoked || kb.Hash != newHash {
		t.Fatalf("overwrite un-revoked or un-rotated a key: %+v", kb)
	}
	// The history stays; one adjustment line moved the balance.
	es, err := dst.Entries(ctx, store.LedgerFilter{KeyID: a.ID})
	if err != nil {
		t.Fatal(err)
	}
	last := es[len(es)-1]
	if len(es) != 5 || last.Kind != store.EntryAdjustment || last.BalanceAfter != want[a.ID].Account.Balance || last.Actor != "tester" {
		t.Fatalf("ledger after overwrite: %+v", es)
	}
	// Spent keeps reconciling after more charges.
	if err := reserve(dst, a.ID, "after", 2); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreRefusalsChangeNothing: every refused restore leaves the
// store exactly as it was.
func TestRestoreRefusalsChangeNothing(t *testing.T) {
	src, ks := populated(t)
	snap := snapshotT(t, src, false)
	cases := []struct {
		name  string
		setup func(t *testing.T, dst *Store)
		mode  store.RestoreMode
		mod   func(s *store.Snapshot)
		want  string
	}{
		{"secret held by another key", func(t *testing.T, dst *Store) {
			k := ks[0].Clone()
			k.ID = "key_other000000000"
			if _, _, err := dst.CreateKey(ctx, k, 1, store.Meta{}); err != nil {
				t.Fatal(err)
			}
		}, store.RestoreMerge, nil, "its secret belongs to key key_other000000000"},
		{"alias taken", func(t *testing.T, dst *Store) {
			if _, _, err := dst.CreateKey(ctx, &store.Key{ID: "key_alias", Hash: storetest.HashOf("x"), Alias: "bee"}, 1, store.Meta{}); err != nil {
				t.Fatal(err)
			}
		}, store.RestoreOverwrite, nil, `alias "bee" belongs to key key_alias`},
		{"call id already charged", func(t *testing.T, dst *Store) {
			k := mkKey(t, dst, 77, 100)
			if err := reserve(dst, k.ID, "call-a-0", 1); err != nil {
				t.Fatal(err)
			}
		}, store.RestoreMerge, nil, "call call-a-0 is already"},
		{"does not reconcile", nil, store.RestoreFull, func(s *store.Snapshot) { s.Keys[0].Account.Balance++ }, "ledger lines sum"},
		{"bad mode", nil, "replace", nil, "mode"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dst := fileStore(t)
			mkKey(t, dst, 60, 10)
			if tc.setup != nil {
				tc.setup(t, dst)
			}
			s := snapshotT(t, src, false)
			if tc.mod != nil {
				tc.mod(s)
			}
			before := state(t, dst)
			beforeAdmins, _ := dst.ListAdminKeys(ctx)
			_, err := dst.Restore(ctx, s, store.RestoreOptions{Mode: tc.mode})
			if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrInvalid mentioning %q", err, tc.want)
			}
			if !reflect.DeepEqual(state(t, dst), before) {
				t.Fatal("a refused restore changed the store")
			}
			if admins, _ := dst.ListAdminKeys(ctx); len(admins) != len(beforeAdmins) {
				t.Fatal("a refused restore changed the admin keys")
			}
		})
	}
	_ = snap
}

func TestRestoreDryRun(t *testing.T) {
	src, _ := populated(t)
	snap := snapshotT(t, src, false)
	dst := fileStore(t)
	mkKey(t, dst, 60, 10)
	before := state(t, dst)
	res, err := dst.Restore(ctx, snap, store.RestoreOptions{Mode: store.RestoreFull, DryRun: true})
	if err != nil || !res.DryRun || res.KeysAdded != 3 || res.KeysRemoved != 1 {
		t.Fatalf("dry run: %+v, %v", res, err)
	}
	if !reflect.DeepEqual(state(t, dst), before) {
		t.Fatal("a dry run changed the store")
	}
}

func TestFullRestoreKeepsOperatorAdminKey(t *testing.T) {
	src, _ := populated(t)
	snap := snapshotT(t, src, false)
	dst := fileStore(t)
	op := &store.AdminKey{ID: "adm_op", Hash: storetest.HashOf("ak_op"), Prefix: "ak_op", Suffix: "oooo", Role: store.RoleSuperAdmin, CreatedAt: storetest.T0}
	if err := dst.CreateAdminKey(ctx, op); err != nil {
		t.Fatal(err)
	}
	other := &store.AdminKey{ID: "adm_gone", Hash: storetest.HashOf("ak_gone"), Prefix: "ak_g", Suffix: "gggg", Role: store.RoleAdmin, CreatedAt: storetest.T0}
	if err := dst.CreateAdminKey(ctx, other); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Restore(ctx, snap, store.RestoreOptions{Mode: store.RestoreFull, KeepAdminKey: "adm_op"}); err != nil {
		t.Fatal(err)
	}
	got, _ := dst.ListAdminKeys(ctx)
	ids := []string{}
	for _, k := range got {
		ids = append(ids, k.ID)
	}
	if len(ids) != 2 || !strings.Contains(strings.Join(ids, ","), "adm_op") || !strings.Contains(strings.Join(ids, ","), "adm_a") {
		t.Fatalf("admin keys after full restore: %v", ids)
	}
}

// TestSnapshotUnderLoad takes snapshots while money moves: each one must
// reconcile on its own.
func TestSnapshotUnderLoad(t *testing.T) {
	s := fileStore(t)
	var keys []*store.Key
	for i := range 4 {
		keys = append(keys, mkKey(t, s, 100+i, 1_000_000))
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var n atomic.Int64
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				k := keys[(w+i)%len(keys)]
				switch i % 3 {
				case 0, 1:
					_ = reserve(s, k.ID, fmt.Sprintf("w%d-%d", w, i), 3)
				case 2:
					_, _, _ = s.Transfer(ctx, k.ID, keys[(w+i+1)%len(keys)].ID, 1, store.Meta{})
				}
				n.Add(1)
			}
		}()
	}
	deadline := time.Now().Add(time.Second)
	snaps := 0
	for time.Now().Before(deadline) || snaps < 5 {
		snap := snapshotT(t, s, false) // fails the test if it does not reconcile
		if len(snap.Keys) != len(keys) {
			t.Fatalf("%d keys", len(snap.Keys))
		}
		snaps++
	}
	stop.Store(true)
	wg.Wait()
	if n.Load() == 0 {
		t.Fatal("no money moved during the snapshots")
	}
}

func TestInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	if pid, inUse, err := InUse(path); err != nil || inUse || pid != 0 {
		t.Fatalf("before open: %d %v %v", pid, inUse, err)
	}
	s := openT(t, Options{Path: path})
	pid, inUse, err := InUse(path)
	if err != nil || !inUse || pid <= 0 {
		t.Fatalf("while open: %d %v %v", pid, inUse, err)
	}
	s.Close()
	if _, inUse, err := InUse(path); err != nil || inUse {
		t.Fatalf("after close: %v %v", inUse, err)
	}
}

// TestInMemorySnapshotRestore: the in-memory store has one connection for
// reads and writes; snapshots and restores must not deadlock on it.
func TestInMemorySnapshotRestore(t *testing.T) {
	src, _ := populated(t)
	snap := snapshotT(t, src, true)
	mem := openT(t, Options{InMemory: true})
	defer mem.Close()
	k := mkKey(t, mem, 5, 10)
	done := make(chan struct{})
	go func() { // money keeps moving during the restore and the snapshot
		defer close(done)
		for i := range 50 {
			_ = reserve(mem, k.ID, fmt.Sprintf("m-%d", i), 1)
		}
	}()
	if _, err := mem.Restore(ctx, snap, store.RestoreOptions{Mode: store.RestoreMerge}); err != nil {
		t.Fatal(err)
	}
	again := snapshotT(t, mem, true)
	<-done
	if len(again.Keys) != 4 {
		t.Fatalf("%d keys", len(again.Keys))
	}
	if err := mem.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}
