package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/paygate/paygate/internal/store"
)

func testUsage(f *fixture) {
	t := f.t
	recs := []store.UsageRecord{
		{Time: T0, KeyID: "key_a", KeyMask: "pg_aaaa...aaaa", Namespace: "default", Method: "tools/call", Tool: "search",
			Allowed: true, Credits: 5, Outcome: "ok", Duration: 1500 * time.Millisecond, RequestID: "r1", CallID: "c1", ClientIP: "192.0.2.1"},
		{Time: T0.Add(time.Minute), KeyID: "key_a", Namespace: "default", Method: "tools/call", Tool: "fetch", Allowed: false,
			Reason: "insufficient_credits"},
		{Time: T0.Add(2 * time.Minute), KeyID: "key_b", Namespace: "acme", Method: "tools/call", Tool: "search", Allowed: true,
			Credits: 0, Refunded: true, Outcome: "backend_down"},
		{Time: T0.Add(3 * time.Minute), Namespace: "default", Method: "tools/call", Tool: "search", Allowed: false,
			Reason: "shadow:invalid_api_key"},
	}
	f.st.AppendUsage(recs[:2]...)
	f.st.AppendUsage(recs[2:]...)
	var all []store.UsageRecord
	eventually(t, "usage visible", func() error {
		var err error
		all, err = f.st.Usage(f.ctx, store.UsageFilter{})
		if err == nil && len(all) != len(recs) {
			err = fmt.Errorf("%d records, want %d", len(all), len(recs))
		}
		return err
	})
	for i, r := range all {
		want := recs[i]
		want.Seq = r.Seq
		if !r.Time.Equal(want.Time) {
			t.Fatalf("record %d time %v, want %v", i, r.Time, want.Time)
		}
		want.Time = r.Time
		if r != want {
			t.Fatalf("record %d:\n got %+v\nwant %+v", i, r, want)
		}
		if i > 0 && r.Seq <= all[i-1].Seq {
			t.Fatalf("usage seq not increasing: %+v", all)
		}
	}
	yes, no := true, false
	cases := []struct {
		name string
		f    store.UsageFilter
		want []int // indexes into recs
	}{
		{"key", store.UsageFilter{KeyID: "key_a"}, []int{0, 1}},
		{"namespace", store.UsageFilter{Namespace: "acme"}, []int{2}},
		{"tool", store.UsageFilter{Tool: "search"}, []int{0, 2, 3}},
		{"allowed", store.UsageFilter{Allowed: &yes}, []int{0, 2}},
		{"denied", store.UsageFilter{Allowed: &no}, []int{1, 3}},
		{"since", store.UsageFilter{Since: T0.Add(2 * time.Minute)}, []int{2, 3}},
		{"until", store.UsageFilter{Until: T0.Add(time.Minute)}, []int{0}},
		{"after seq", store.UsageFilter{AfterSeq: all[1].Seq}, []int{2, 3}},
		{"limit", store.UsageFilter{Limit: 2}, []int{0, 1}},
		{"desc limit", store.UsageFilter{Desc: true, Limit: 3}, []int{3, 2, 1}},
		{"combined", store.UsageFilter{Tool: "search", Allowed: &yes, Namespace: "default"}, []int{0}},
	}
	for _, tc := range cases {
		got, err := f.st.Usage(f.ctx, tc.f)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(got) != len(tc.want) {
			t.Fatalf("%s: %d records, want %d: %+v", tc.name, len(got), len(tc.want), got)
		}
		for i, w := range tc.want {
			if got[i].Seq != all[w].Seq {
				t.Fatalf("%s: record %d is seq %d, want %d", tc.name, i, got[i].Seq, all[w].Seq)
			}
		}
	}

	// Prune by age: records before T0+2m go.
	n, err := f.st.PruneUsage(f.ctx, T0.Add(2*time.Minute), 0)
	if err != nil || n != 2 {
		t.Fatalf("prune usage by age: %d, %v", n, err)
	}
	// Prune by count: keep the newest of the 2 left.
	if n, err = f.st.PruneUsage(f.ctx, time.Time{}, 1); err != nil || n != 1 {
		t.Fatalf("prune usage by count: %d, %v", n, err)
	}
	left, err := f.st.Usage(f.ctx, store.UsageFilter{})
	if err != nil || len(left) != 1 || left[0].Seq != all[3].Seq {
		t.Fatalf("usage after prune: %+v %v", left, err)
	}
	// Nothing to do is not an error.
	if n, err = f.st.PruneUsage(f.ctx, T0, 5); err != nil || n != 0 {
		t.Fatalf("prune usage, nothing to prune: %d, %v", n, err)
	}
	// Pruning everything old (a store may keep the newest record to keep
	// its seqs going) leaves later records with higher seqs.
	if _, err := f.st.PruneUsage(f.ctx, T0.Add(time.Hour), 0); err != nil {
		t.Fatalf("prune all usage: %v", err)
	}
	f.st.AppendUsage(store.UsageRecord{Time: T0.Add(time.Hour), KeyID: "key_a", Method: "tools/call", Tool: "late", Allowed: true})
	eventually(t, "usage after prune", func() error {
		got, err := f.st.Usage(f.ctx, store.UsageFilter{Tool: "late"})
		if err == nil && (len(got) != 1 || got[0].Seq <= all[3].Seq) {
			err = fmt.Errorf("got %+v, want one record with seq > %d", got, all[3].Seq)
		}
		return err
	})
}

func testAudit(f *fixture) {
	t := f.t
	evs := []store.AuditEvent{
		{Time: T0, Type: "key.created", Actor: "admin_1", RequestID: "r1", KeyMask: "pg_aaaa...aaaa", Message: "created",
			Metadata: map[string]any{"credits": 100.0, "name": "alpha", "tags": map[string]any{"env": "prod"}}},
		{Time: T0.Add(time.Minute), Type: "key.revoked", Actor: "admin_2", Message: "revoked"},
		{Time: T0.Add(2 * time.Minute), Type: "gate.deny", Actor: "system", Message: "denied"},
		{Time: T0.Add(3 * time.Minute), Type: "key.created", Actor: "admin_2", Message: "created again"},
		{Time: T0.Add(4 * time.Minute), Type: "admin.auth_failed", Actor: "system"},
	}
	for _, e := range evs {
		f.st.AppendAudit(e)
	}
	var all []store.AuditEvent
	eventually(t, "audit visible", func() error {
		var err error
		all, err = f.st.Audit(f.ctx, store.AuditFilter{})
		if err == nil && len(all) != len(evs) {
			err = fmt.Errorf("%d events, want %d", len(all), len(evs))
		}
		return err
	})
	for i, e := range all {
		w := evs[i]
		if e.Type != w.Type || e.Actor != w.Actor || e.Message != w.Message || e.RequestID != w.RequestID ||
			e.KeyMask != w.KeyMask || !e.Time.Equal(w.Time) || len(e.Metadata) != len(w.Metadata) {
			t.Fatalf("event %d:\n got %+v\nwant %+v", i, e, w)
		}
	}
	if m := all[0].Metadata; m["credits"] != 100.0 || m["name"] != "alpha" || m["tags"].(map[string]any)["env"] != "prod" {
		t.Fatalf("metadata %#v", m)
	}
	cases := []struct {
		name string
		f    store.AuditFilter
		want []int
	}{
		{"types", store.AuditFilter{Types: []string{"key.created", "key.revoked"}}, []int{0, 1, 3}},
		{"actor", store.AuditFilter{Actor: "admin_2"}, []int{1, 3}},
		{"since", store.AuditFilter{Since: T0.Add(3 * time.Minute)}, []int{3, 4}},
		{"until", store.AuditFilter{Until: T0.Add(2 * time.Minute)}, []int{0, 1}},
		{"after seq", store.AuditFilter{AfterSeq: all[2].Seq}, []int{3, 4}},
		{"desc limit", store.AuditFilter{Desc: true, Limit: 2}, []int{4, 3}},
		{"type and actor", store.AuditFilter{Types: []string{"key.created"}, Actor: "admin_1"}, []int{0}},
	}
	for _, tc := range cases {
		got, err := f.st.Audit(f.ctx, tc.f)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(got) != len(tc.want) {
			t.Fatalf("%s: %d events, want %d", tc.name, len(got), len(tc.want))
		}
		for i, w := range tc.want {
			if got[i].Seq != all[w].Seq {
				t.Fatalf("%s: event %d is seq %d, want %d", tc.name, i, got[i].Seq, all[w].Seq)
			}
		}
	}

	// Prune by age: events before T0+2m go.
	n, err := f.st.PruneAudit(f.ctx, T0.Add(2*time.Minute), 0)
	if err != nil || n != 2 {
		t.Fatalf("prune by age: %d, %v", n, err)
	}
	// Prune by count: keep the newest 2 of the 3 left.
	n, err = f.st.PruneAudit(f.ctx, time.Time{}, 2)
	if err != nil || n != 1 {
		t.Fatalf("prune by count: %d, %v", n, err)
	}
	left, err := f.st.Audit(f.ctx, store.AuditFilter{})
	if err != nil || len(left) != 2 || left[0].Seq != all[3].Seq || left[1].Seq != all[4].Seq {
		t.Fatalf("after prune: %+v %v", left, err)
	}
	// Seqs keep increasing after a prune emptied the table.
	if n, err := f.st.PruneAudit(f.ctx, T0.Add(time.Hour), 0); err != nil || n != 2 {
		t.Fatalf("prune all: %d %v", n, err)
	}
	f.st.AppendAudit(store.AuditEvent{Time: T0.Add(time.Hour), Type: "key.created"})
	eventually(t, "event after prune", func() error {
		got, err := f.st.Audit(f.ctx, store.AuditFilter{})
		if err == nil && (len(got) != 1 || got[0].Seq <= all[4].Seq) {
			err = fmt.Errorf("got %+v, want one event with seq > %d", got, all[4].Seq)
		}
		return err
	})
}

func testAdminKeys(f *fixture) {
	t := f.t
	k := &store.AdminKey{ID: "adm_1", Hash: HashOf("admin-secret-1"), Prefix: "admin-s", Suffix: "et-1", Name: "ops",
		Role: store.RoleAdmin, CreatedAt: T0, CreatedBy: "bootstrap"}
	if err := f.st.CreateAdminKey(f.ctx, k); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "duplicate id", f.st.CreateAdminKey(f.ctx, &store.AdminKey{ID: "adm_1", Hash: HashOf("x"), Role: store.RoleViewer, CreatedAt: T0}),
		store.ErrAlreadyExists)
	wantErr(t, "duplicate hash", f.st.CreateAdminKey(f.ctx, &store.AdminKey{ID: "adm_2", Hash: k.Hash, Role: store.RoleViewer, CreatedAt: T0}),
		store.ErrAlreadyExists)
	k2 := &store.AdminKey{ID: "adm_3", Hash: HashOf("admin-secret-3"), Prefix: "admin-s", Suffix: "et-3", Role: store.RoleViewer,
		CreatedAt: T0.Add(time.Minute)}
	if err := f.st.CreateAdminKey(f.ctx, k2); err != nil {
		t.Fatal(err)
	}
	got, err := f.st.LookupAdminHash(f.ctx, k.Hash)
	if err != nil || got.ID != "adm_1" || got.Role != store.RoleAdmin || got.Name != "ops" || got.CreatedBy != "bootstrap" ||
		!got.CreatedAt.Equal(T0) || got.Prefix != "admin-s" || got.Suffix != "et-1" {
		t.Fatalf("LookupAdminHash: %+v %v", got, err)
	}
	_, err = f.st.LookupAdminHash(f.ctx, HashOf("nope"))
	wantErr(t, "unknown admin hash", err, store.ErrNotFound)
	list, err := f.st.ListAdminKeys(f.ctx)
	if err != nil || len(list) != 2 || list[0].ID != "adm_1" || list[1].ID != "adm_3" {
		t.Fatalf("ListAdminKeys: %+v %v", list, err)
	}

	boom := errors.New("boom")
	_, err = f.st.UpdateAdminKey(f.ctx, "adm_1", func(a *store.AdminKey) error { a.Role = store.RoleViewer; return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("failing updater: %v", err)
	}
	if got, _ := f.st.LookupAdminHash(f.ctx, k.Hash); got.Role != store.RoleAdmin {
		t.Fatal("failed update changed the key")
	}
	up, err := f.st.UpdateAdminKey(f.ctx, "adm_1", func(a *store.AdminKey) error {
		a.LastUsed = T0.Add(time.Hour)
		a.Role = store.RoleSuperAdmin
		return nil
	})
	if err != nil || up.Role != store.RoleSuperAdmin || !up.LastUsed.Equal(T0.Add(time.Hour)) {
		t.Fatalf("update: %+v %v", up, err)
	}
	if got, _ := f.st.LookupAdminHash(f.ctx, k.Hash); got.Role != store.RoleSuperAdmin || !got.LastUsed.Equal(T0.Add(time.Hour)) {
		t.Fatalf("after update: %+v", got)
	}
	up, err = f.st.UpdateAdminKey(f.ctx, "adm_3", func(a *store.AdminKey) error { a.Revoked = true; a.RevokedAt = T0; return nil })
	if err != nil || !up.Revoked {
		t.Fatalf("revoke admin key: %+v %v", up, err)
	}
	if got, _ := f.st.LookupAdminHash(f.ctx, k2.Hash); got == nil || !got.Revoked || !got.RevokedAt.Equal(T0) {
		t.Fatalf("revoked admin key: %+v", got)
	}
	_, err = f.st.UpdateAdminKey(f.ctx, "adm_missing", func(*store.AdminKey) error { return nil })
	wantErr(t, "update unknown admin key", err, store.ErrNotFound)
}

func testSettings(f *fixture) {
	t := f.t
	_, err := f.st.GetSetting(f.ctx, "maintenance")
	wantErr(t, "unset setting", err, store.ErrNotFound)
	if err := f.st.PutSetting(f.ctx, "maintenance", []byte(`{"enabled":true}`)); err != nil {
		t.Fatal(err)
	}
	if err := f.st.PutSetting(f.ctx, "templates", []byte(`[]`)); err != nil {
		t.Fatal(err)
	}
	if err := f.st.PutSetting(f.ctx, "maintenance", []byte(`{"enabled":false}`)); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"maintenance": `{"enabled":false}`, "templates": `[]`} {
		got, err := f.st.GetSetting(f.ctx, name)
		if err != nil || !bytes.Equal(got, []byte(want)) {
			t.Fatalf("GetSetting %s: %q %v", name, got, err)
		}
	}
	if err := f.st.PutSetting(f.ctx, "empty", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := f.st.GetSetting(f.ctx, "empty"); err != nil || len(got) != 0 {
		t.Fatalf("empty setting: %q %v", got, err)
	}
}
