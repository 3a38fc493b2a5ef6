package backup

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/internal/store"
)

var t0 = time.Date(2026, 3, 14, 12, 0, 0, 123456789, time.UTC)

func hashOf(s string) store.Hash { return sha256.Sum256([]byte(s)) }

// sample is a small snapshot with every kind of record and the fields
// most keys leave unset.
func sample() *store.Snapshot {
	rl := int64(30)
	k1 := &store.Key{ID: "key_0000000000000001", Hash: hashOf("pg_one"), Prefix: "pg_one_", Suffix: "abcd", Name: "one",
		Namespace: "default", Alias: "first", CreatedAt: t0, AllowedTools: []string{"search"}, DeniedTools: []string{"rm"},
		IPAllowlist:   []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32")},
		SpendingLimit: 500, Quota: &store.Quota{DailyCalls: 10}, RateLimitPerMin: &rl, Tags: map[string]string{"team": "a=b"},
		Group: "gold"}
	k2 := &store.Key{ID: "key_0000000000000002", Hash: hashOf("pg_two"), Prefix: "pg_two_", Suffix: "efgh", Name: "two \"quoted\" \u2028",
		Namespace: "acme", CreatedAt: t0, Revoked: true, RevokedAt: t0.Add(time.Hour), Suspended: true}
	return &store.Snapshot{
		TakenAt: t0,
		Keys: []store.KeyState{
			{Key: k1, Account: store.Account{Balance: 95, Spent: 5, Calls: 1, LastUsedAt: t0, Day: 20260314, DailyCalls: 1,
				DailyCredits: 5, Month: 202603, MonthlyCalls: 1, MonthlyCredits: 5}},
			{Key: k2, Account: store.Account{Balance: 7}},
		},
		Ledger: []store.Entry{
			{Seq: 1, Time: t0, KeyID: k1.ID, Kind: store.EntryGrant, Delta: 100, BalanceAfter: 100, Actor: "ak_x...1234"},
			{Seq: 2, Time: t0, KeyID: k2.ID, Kind: store.EntryGrant, Delta: 7, BalanceAfter: 7},
			{Seq: 5, Time: t0, KeyID: k1.ID, Kind: store.EntryCharge, Delta: -5, BalanceAfter: 95, Tool: "search", CallID: "c1",
				RequestID: "req_1", Actor: "gateway"},
		},
		AdminKeys: []*store.AdminKey{{ID: "adm_1", Hash: hashOf("ak_1"), Prefix: "ak_1", Suffix: "zzzz", Name: "root",
			Role: store.RoleSuperAdmin, CreatedAt: t0, CreatedBy: "cli"}},
		Settings: []store.Setting{{Name: "maintenance", Value: []byte(`{"enabled":false}`)}},
		Audit: []store.AuditEvent{{Seq: 3, Time: t0, Type: "key.created", Actor: "ak_x...1234", KeyMask: "pg_one_...abcd",
			Message: "Key created: one", Metadata: map[string]any{"keyId": k1.ID, "credits": float64(100)}}},
	}
}

func encode(t *testing.T, s *store.Snapshot) ([]byte, *Info) {
	t.Helper()
	var buf bytes.Buffer
	info, err := Encode(&buf, s, Meta{ServerVersion: "1.2.3", Store: "sqlite"})
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return buf.Bytes(), info
}

func TestRoundTrip(t *testing.T) {
	want := sample()
	b, info := encode(t, want)
	if !json.Valid(b) {
		t.Fatalf("not JSON:\n%s", b)
	}
	got, ginfo, err := Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("Decode: %v\n%s", err, b)
	}
	if ginfo.Checksum != info.Checksum || !strings.HasPrefix(info.Checksum, "sha256:") {
		t.Fatalf("checksum %q, encoded %q", ginfo.Checksum, info.Checksum)
	}
	if ginfo.Stats != info.Stats || info.Stats.Keys != 2 || info.Stats.LastSeq != 5 || info.Stats.TotalBalance != 102 {
		t.Fatalf("stats %+v / %+v", ginfo.Stats, info.Stats)
	}
	if ginfo.ServerVersion != "1.2.3" || ginfo.Store != "sqlite" || !ginfo.CreatedAt.Equal(t0) {
		t.Fatalf("info %+v", ginfo)
	}
	if !reflect.DeepEqual(got, want) {
		gj, _ := json.MarshalIndent(got, "", " ")
		wj, _ := json.MarshalIndent(want, "", " ")
		t.Fatalf("round trip differs:\n got %s\nwant %s", gj, wj)
	}
}

// TestChecksumIsRFC8785 recomputes the checksum independently: the
// RFC 8785 form of the file's data member, via a generic decode.
func TestChecksumIsRFC8785(t *testing.T) {
	b, info := encode(t, sample())
	var doc struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	c, err := canonicalJSON(doc.Data)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(c)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != info.Checksum {
		t.Fatalf("checksum of the canonical data %s, file says %s", got, info.Checksum)
	}
}

func TestCanonicalJSON(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{"b":1,"a":[true,null,"x"]}`, `{"a":[true,null,"x"],"b":1}`},
		{`{ "z" : { "y":2, "x":1 } }`, `{"z":{"x":1,"y":2}}`},
		{`"\u0041\u00e9\n\u001f\u2028/"`, "\"Aé\\n\\u001f\u2028/\""},
		{`[1.0, 1e3, -0, 0.000001, 1e21, 123456789012]`, `[1,1000,0,0.000001,1e+21,123456789012]`},
		{`{"\u20ac":1,"\r":2,"1":3}`, "{\"\\r\":2,\"1\":3,\"€\":1}"},
	}
	for _, tc := range cases {
		got, err := canonicalJSON([]byte(tc.in))
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if string(got) != tc.want {
			t.Errorf("canonical(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestReindentedFileVerifies: whitespace and member order are not part of
// the checksum.
func TestReindentedFileVerifies(t *testing.T) {
	b, _ := encode(t, sample())
	var generic map[string]any
	if err := json.Unmarshal(b, &generic); err != nil {
		t.Fatal(err)
	}
	pretty, err := json.MarshalIndent(generic, "", "    ") // sorted members, other indentation
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Decode(bytes.NewReader(pretty)); err != nil {
		t.Fatalf("re-indented file: %v", err)
	}
}

func TestDecodeRefuses(t *testing.T) {
	good, _ := encode(t, sample())
	edit := func(old, new string) func() []byte {
		return func() []byte {
			if !bytes.Contains(good, []byte(old)) {
				t.Fatalf("sample has no %q", old)
			}
			return bytes.Replace(good, []byte(old), []byte(new), 1)
		}
	}
	cases := []struct {
		name string
		file func() []byte
		want string
	}{
		{"changed balance", edit(`"balance":95`, `"balance":96`), "checksum mismatch"},
		{"changed name", edit(`"name":"one"`, `"name":"One"`), "checksum mismatch"},
		{"bad checksum", edit(`"checksum": "sha256:`, `"checksum": "sha256:00`), "checksum mismatch"},
		{"newer version", edit(`"version": 1`, `"version": 2`), "newer paygate"},
		{"zero version", edit(`"version": 1`, `"version": 0`), "version 0"},
		{"other format", edit(`"format": "paygate-backup"`, `"format": "paygate-mcp"`), "format"},
		{"unknown field", edit(`"balance":95`, `"balance":95,"bonus":1`), "unknown field"},
		{"wrong type", edit(`"balance":95`, `"balance":"95"`), "must be a JSON number"},
		{"truncated", func() []byte { return good[:len(good)/2] }, "ends early"},
		{"not json", func() []byte { return []byte("hello") }, "not a paygate backup"},
		{"trailing data", func() []byte { return append(append([]byte{}, good...), []byte("{}")...) }, "extra data"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			snap, _, err := Decode(bytes.NewReader(tc.file()))
			if err == nil || snap != nil {
				t.Fatalf("accepted")
			}
			if !errors.Is(err, ErrInvalid) || !errors.Is(err, store.ErrInvalid) {
				t.Fatalf("error %v does not match ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// TestDecodeValidatesRecords: a file whose checksum is right but whose
// records are not (written by a buggy tool) is refused too.
func TestDecodeValidatesRecords(t *testing.T) {
	cases := []struct {
		name string
		mod  func(s *store.Snapshot)
		want string
	}{
		{"ledger does not reconcile", func(s *store.Snapshot) { s.Keys[0].Account.Balance = 96 }, "ledger lines sum to 95"},
		{"balanceAfter wrong", func(s *store.Snapshot) { s.Ledger[2].BalanceAfter = 90 }, "balanceAfter 90"},
		{"duplicate key id", func(s *store.Snapshot) { s.Keys[1].Key.ID = s.Keys[0].Key.ID }, "appears twice"},
		{"duplicate hash", func(s *store.Snapshot) { s.Keys[1].Key.Hash = s.Keys[0].Key.Hash }, "same secret hash"},
		{"unknown kind", func(s *store.Snapshot) { s.Ledger[0].Kind = "gift" }, "unknown kind"},
		{"entry for unknown key", func(s *store.Snapshot) { s.Ledger[1].KeyID = "key_nope" }, "not in the snapshot"},
		{"seq order", func(s *store.Snapshot) { s.Ledger[1].Seq = 9 }, "increasing"},
		{"bad role", func(s *store.Snapshot) { s.AdminKeys[0].Role = "root" }, "unknown role"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := sample()
			tc.mod(s)
			b, _ := encode(t, s)
			_, _, err := Decode(bytes.NewReader(b))
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestBadHashField(t *testing.T) {
	good, _ := encode(t, sample())
	var generic map[string]any
	if err := json.Unmarshal(good, &generic); err != nil {
		t.Fatal(err)
	}
	// Edit the hash and recompute the checksum, as a tool that does not
	// know the format might: the field check still refuses it.
	data := generic["data"].(map[string]any)
	data["keys"].([]any)[0].(map[string]any)["hash"] = "xyz"
	raw, _ := json.Marshal(data)
	c, err := canonicalJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(c)
	generic["checksum"] = "sha256:" + hex.EncodeToString(sum[:])
	b, _ := json.Marshal(generic)
	_, _, err = Decode(bytes.NewReader(b))
	if err == nil || !strings.Contains(err.Error(), "data.keys[0].hash: must be 64 hex digits") {
		t.Fatalf("error %v", err)
	}
}
